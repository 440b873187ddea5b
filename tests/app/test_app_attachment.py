"""fl_attachment[:<name>]: the same image as a download (Content-Disposition), over HTTP and as a header."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from cloudinary.utils import cloudinary_url
from starlette.testclient import TestClient

from cutout.disposition import content_disposition
from tests.app.helpers import SAMPLES

ROAD = SAMPLES / "docs" / "road.jpg"


def sdk(public_id: str, **options: Any) -> str:
    url, _ = cloudinary_url(public_id, cloud_name="demo", secure=False, cname="testserver", **options)
    return str(url).removeprefix("http://testserver")


@pytest.mark.parametrize(
    ("stem", "extension", "header"),
    [
        ("road", "jpg", 'attachment; filename="road.jpg"'),
        ("my photo", "webp", 'attachment; filename="my photo.webp"'),
        ('say "hi"; x=1', "png", 'attachment; filename="say \\"hi\\"; x=1.png"'),
        ("back\\slash", "png", 'attachment; filename="back\\\\slash.png"'),
        ("café", "jpg", "attachment; filename=\"cafe.jpg\"; filename*=UTF-8''caf%C3%A9.jpg"),
        ("写真", "png", "attachment; filename=\"__.png\"; filename*=UTF-8''%E5%86%99%E7%9C%9F.png"),
        ("100%", "gif", "attachment; filename=\"100_.gif\"; filename*=UTF-8''100%25.gif"),
        # Never a second header line, whatever the name (URLs cannot ask for one: defence in depth).
        ("a\r\nSet-Cookie: x", "jpg", 'attachment; filename="a__Set-Cookie: x.jpg"'),
    ],
)
def test_content_disposition(stem: str, extension: str, header: str) -> None:
    assert content_disposition(stem, extension) == header
    assert header.isascii() and "\r" not in header and "\n" not in header


def test_an_attachment_is_the_same_image_named_after_the_public_id(client: TestClient) -> None:
    url = sdk("docs/road", flags="attachment")
    assert url == "/demo/image/upload/fl_attachment/v1/docs/road"
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="road.jpg"'
    assert answer.content == ROAD.read_bytes()  # nothing else asked: the original as stored
    assert answer.headers["content-type"] == "image/jpeg"


def test_a_named_attachment_takes_the_delivered_formats_extension(client: TestClient) -> None:
    url = sdk("docs/road", flags="attachment:my_photo", width=50, crop="scale", format="webp")
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="my_photo.webp"'
    auto = client.get("/image/upload/fl_attachment:caf%C3%A9/c_scale,w_50/f_auto/docs/road.jpg",
                      headers={"Accept": "image/avif,image/webp,*/*"})  # fmt: skip
    assert auto.headers["content-disposition"] == (
        "attachment; filename=\"cafe.avif\"; filename*=UTF-8''caf%C3%A9.avif"
    )
    assert auto.headers["vary"] == "Accept"


def test_the_cache_never_mixes_the_headers(client: TestClient) -> None:
    """One image, one cache entry, two answers: the plain URL never gets Content-Disposition and the
    attachment always does, whichever was asked first and however hot (memory, the fast path)."""
    plain = "/image/upload/c_scale,w_64/docs/road.jpg"
    download = "/image/upload/c_scale,fl_attachment,w_64/docs/road.jpg"
    named = "/image/upload/c_scale,fl_attachment:x,w_64/docs/road.jpg"
    for _ in range(3):
        for url, header in ((plain, None), (download, 'attachment; filename="road.jpg"'),
                            (named, 'attachment; filename="x.jpg"')):  # fmt: skip
            answer = client.get(url)
            assert answer.status_code == 200
            assert answer.headers.get("content-disposition") == header, url
            head = client.head(url)
            assert head.headers.get("content-disposition") == header, url
    # The same bytes (one entry), and a revalidation of either is a 304.
    first, second = client.get(plain), client.get(download)
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert client.get(download, headers={"If-None-Match": first.headers["etag"]}).status_code == 304


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "/image/upload/fl_attachment:a%0D%0ASet-Cookie:%20x/docs/road.jpg",
            "Invalid transformation parameter - fl_attachment:a%0D%0ASet-Cookie:%20x: the attachment's file "
            "name must not contain control characters, '/' or '\\'",
        ),
        (
            "/image/upload/fl_attachment:%2E%2E%2Fx/docs/road.jpg",
            "Invalid transformation parameter - fl_attachment:%2E%2E%2Fx: the attachment's file name must "
            "not contain control characters, '/' or '\\'",
        ),
        (
            "/image/upload/fl_attachment:%FF/docs/road.jpg",
            "Invalid transformation parameter - fl_attachment:%FF: the attachment's file name is not valid "
            "UTF-8 once percent-decoded",
        ),
        (
            "/image/upload/fl_attachment:/docs/road.jpg",
            'Invalid transformation syntax at column 15 of "fl_attachment:": missing value after '
            '"fl_attachment:"',
        ),
        (
            "/image/upload/u_docs:road/fl_attachment/fl_layer_apply/docs/road.jpg",
            "Invalid transformation: fl_attachment applies to the delivered image, not inside a layer",
        ),
    ],
)
def test_a_bad_attachment_is_a_400_naming_it(client: TestClient, url: str, message: str) -> None:
    answer = client.get(url)
    # X-Cld-Error percent-encodes '%' too: unquote() gives the message back.
    assert (answer.status_code, unquote(answer.headers["x-cld-error"])) == (400, message)
    assert "content-disposition" not in answer.headers


def test_a_placeholder_download_is_named_after_the_requested_id(client: TestClient) -> None:
    answer = client.get("/image/upload/d_docs:road/fl_attachment/c_scale,w_40/shop/nobody.png")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="nobody.png"'
    assert answer.headers["x-cld-error"] == (
        "Resource not found - shop/nobody (default image docs/road delivered)"
    )


def test_strict_mode_serves_a_download_only_when_signed_or_allowed_as_written(make_client: Any) -> None:
    """Cloudinary's strict mode matches a transformation's whole string: an allowed c_scale,w_64 does not
    allow its download, nor does anything allow a bare fl_attachment, unless signed or allowed itself."""
    allowed_transformations = ("c_scale,w_64", "c_scale,fl_attachment:x,w_48")
    client = make_client(strict=True, api_secret="abcd", allowed_transformations=allowed_transformations)
    bare = client.get("/image/upload/fl_attachment/docs/road.jpg")
    assert bare.status_code == 401
    assert bare.headers["x-cld-error"] == "Transformation fl_attachment is not allowed"
    assert client.get("/image/upload/c_scale,w_64/docs/road.jpg").status_code == 200
    assert client.get("/image/upload/c_scale,fl_attachment:x,w_64/docs/road.jpg").status_code == 401
    allowed = client.get("/image/upload/c_scale,fl_attachment:x,w_48/docs/road.jpg")
    assert allowed.status_code == 200
    assert allowed.headers["content-disposition"] == 'attachment; filename="x.jpg"'
    assert client.get("/image/upload/c_scale,fl_attachment:y,w_48/docs/road.jpg").status_code == 401
    signed = sdk("docs/road", flags="attachment", sign_url=True, api_secret="abcd", format="jpg")
    answer = client.get(signed)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="road.jpg"'
    # A bad name is the client's 400 before strict mode's 401.
    assert client.get("/image/upload/fl_attachment:a%0D%0Ab/docs/road.jpg").status_code == 400
