"""End to end over HTTP (starlette TestClient): URLs made by Cloudinary's Python SDK, headers, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import pyvips
from cloudinary.utils import cloudinary_url
from starlette.types import Message

from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, metric


def sdk(public_id: str, **options: Any) -> str:
    """The path part of the URL pycloudinary builds for ``public_id``."""
    url, _ = cloudinary_url(public_id, cloud_name="demo", secure=False, cname="testserver", **options)
    return str(url).removeprefix("http://testserver")


def decoded(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


def test_original_and_scaled_from_sdk_urls(client: Any) -> None:
    original = client.get(sdk("docs/road"))
    assert original.status_code == 200, original.headers.get("x-cld-error")
    assert original.headers["content-type"] == "image/jpeg"
    assert (decoded(original.content).width, decoded(original.content).height) == (640, 427)
    assert original.headers["access-control-allow-origin"] == "*"
    assert original.headers["access-control-expose-headers"] == \
        "X-Cld-Error,Content-Length,Content-Range,Accept-Ranges"
    # The SDK adds v1 to ids with folders: not this original's version (the time it was written), so
    # not immutable (the file may be replaced); its own version is.
    assert original.headers["cache-control"] == "public, max-age=3600"
    version = int((SAMPLES / "docs" / "road.jpg").stat().st_mtime)
    own = client.get(f"/demo/image/upload/v{version}/docs/road.jpg")
    assert own.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "vary" not in original.headers

    scaled = client.get(sdk("docs/road", width=400, crop="scale", force_version=False))
    assert scaled.status_code == 200
    assert decoded(scaled.content).width == 400
    assert scaled.headers["cache-control"] == "public, max-age=3600"


def test_an_original_asked_as_it_is_is_its_own_bytes(make_client: ClientFactory, tmp_path: Path) -> None:
    """No transformation, its own format or none named: the stored file, as Cloudinary delivers an
    original (metadata and animation kept, nothing decoded); anything else is rendered."""
    originals = tmp_path / "originals"
    (originals / "docs").mkdir(parents=True)
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    (originals / "docs" / "road.jpg").write_bytes(road)
    client = make_client(originals=originals)
    for path in ("/image/upload/docs/road.jpg", "/image/upload/docs/road", "/image/upload/v1/docs/road.jpg",
                 "/image/upload/docs/road.jpeg"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200 and answer.content == road, path
        assert answer.headers["content-type"] == "image/jpeg"
    for path in ("/image/upload/docs/road.png", "/image/upload/q_auto/docs/road.jpg",
                 "/image/upload/f_auto/docs/road.jpg", "/image/upload/a_ignore/docs/road.jpg"):  # fmt: skip
        answer = client.get(path, headers={"Accept": "image/webp"})
        assert answer.status_code == 200 and answer.content != road, path
    frames = [pyvips.Image.black(8, 8).copy(interpretation="srgb") + i * 80 for i in range(3)]
    animated = pyvips.Image.arrayjoin([f.bandjoin([f, f]) for f in frames], across=1).cast("uchar")
    animated = animated.copy()
    animated.set_type(pyvips.GValue.gint_type, "page-height", 8)
    animated.set_type(pyvips.GValue.array_int_type, "delay", [100, 100, 100])
    (originals / "anim.gif").write_bytes(animated.gifsave_buffer())
    served = client.get("/image/upload/anim.gif")
    assert served.status_code == 200
    assert pyvips.Image.new_from_buffer(served.content, "", n=-1).get("n-pages") == 3  # still animated


def test_a_delivery_dpr_in_its_own_component(client: Any) -> None:
    """Cloudinary's URL-gen SDKs write dpr as its own (delivery) component; the reference's example:
    c_scale,h_300/dpr_2.0 is 600 px high. pycloudinary writes the same chain for this transformation."""
    path = sdk("docs/road", transformation=[{"crop": "scale", "height": 300}, {"dpr": "2.0"}])
    assert "/c_scale,h_300/dpr_2.0/" in path
    response = client.get(path)
    assert response.status_code == 200, response.headers.get("x-cld-error")
    assert decoded(response.content).height == 600
    together = client.get(sdk("docs/road", crop="scale", height=300, dpr="2.0"))
    assert decoded(together.content).height == 600
    alone = client.get(sdk("docs/road", dpr="2.0"))
    assert alone.status_code == 400 and "dpr_2.0: dpr_ needs w_ or h_" in alone.headers["x-cld-error"]


def test_a_delivery_dpr_scales_every_length(client: Any) -> None:
    """url-gen's delivery dpr multiplies the radius, the border and the text too (Cloudinary adjusts what
    the ratio concerns): the image is the one with every length doubled. Beyond a bound: a 400."""
    chain = "c_scale,w_150/l_text:Arial_12:Hi/fl_layer_apply,g_north_west,x_4,y_4/bo_2px_solid_red,r_8"
    at_dpr = client.get(f"/image/upload/{chain}/dpr_2.0/docs/road.png")
    doubled = client.get(
        "/image/upload/c_scale,w_300/l_text:Arial_24:Hi/fl_layer_apply,g_north_west,x_8,y_8/"
        "bo_4px_solid_red,r_16/docs/road.png"
    )
    assert at_dpr.status_code == doubled.status_code == 200
    assert at_dpr.content == doubled.content and decoded(at_dpr.content).width == 308
    too_thick = client.get("/image/upload/c_scale,w_150/bo_900px_solid_red/dpr_2.0/docs/road.png")
    assert too_thick.status_code == 400
    assert "border width 900 times dpr_2.0 is 1800" in too_thick.headers["x-cld-error"]


def test_format_from_extension_and_f_auto(client: Any) -> None:
    png = client.get(sdk("docs/road", width=100, crop="scale", format="png"))
    assert png.headers["content-type"] == "image/png"
    auto = sdk("docs/road", width=100, crop="scale", fetch_format="auto")
    webp = client.get(auto, headers={"Accept": "image/webp,*/*"})
    assert webp.status_code == 200
    assert webp.headers["content-type"] == "image/webp"
    assert webp.headers["vary"] == "Accept"
    plain = client.get(auto, headers={"Accept": "*/*"})
    assert plain.headers["content-type"] in ("image/jpeg", "image/png")
    assert plain.headers["etag"] != webp.headers["etag"]


def test_output_flags_and_auto_media_types_are_their_own_derivatives(client: Any) -> None:
    """fl_lossy, fl_keep_iptc, a_auto_right and f_auto:animated change the bytes: each its own cache entry,
    none served the bytes of the URL without it."""
    plain_png = client.get("/image/upload/c_scale,w_120/docs/road.png")
    lossy = client.get("/image/upload/c_scale,fl_lossy,w_120/docs/road.png")
    assert lossy.status_code == 200 and len(lossy.content) < len(plain_png.content)
    assert decoded(lossy.content).get("palette")
    plain = client.get("/image/upload/c_fill,h_90,w_60/docs/road.jpg")
    turned = client.get("/image/upload/a_auto_right,c_fill,h_90,w_60/docs/road.jpg")
    assert turned.status_code == 200 and turned.content != plain.content
    assert (decoded(turned.content).width, decoded(turned.content).height) == (60, 90)
    url = "/image/upload/c_scale,w_60/f_auto:animated/docs/road.jpg"
    animated = client.get(url, headers={"Accept": "*/*"})
    assert animated.headers["content-type"] == "image/gif" and animated.headers["vary"] == "Accept"
    webp = client.get(url, headers={"Accept": "image/avif,image/webp"})
    assert webp.headers["content-type"] == "image/webp"
    refused = client.get("/image/upload/fl_keep_iptc/q_auto/docs/road.jpg")
    assert refused.status_code == 400 and "fl_keep_iptc" in refused.headers["x-cld-error"]


def test_etag_304_head_and_cache_hits(client: Any) -> None:
    url = sdk("docs/rmv_bgd/router_orig", width=200, crop="scale")
    first = client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith('W/')
    hits = metric(client, "cutout_cache_hits_total")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert "content-length" not in again.headers
    assert metric(client, "cutout_cache_hits_total") == hits + 1
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)


@pytest.mark.parametrize("fast", [False, True], ids=["full path", "fast path"])
def test_a_range_of_a_derivative_is_a_206_of_those_bytes(client: Any, fast: bool) -> None:
    """A resumed download or a CDN fetching a piece: one byte range is a 206 of exactly those bytes, on the
    full path and on the in-memory fast path alike; none of them there is a 416; the rest is the 200."""
    url = f"/demo/image/upload/c_scale,w_{120 + fast}/docs/road"
    whole = client.get(url)
    if fast:  # the second request makes it hot: later ones are answered before Starlette
        client.get(url)
        assert client.app.state.service.hot(url, "*/*") is not None  # httpx sends Accept: */*
    body, size, etag = whole.content, len(whole.content), whole.headers["etag"]
    assert whole.headers["accept-ranges"] == "bytes"
    for asked, first, last in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-50", size - 50,
                               size - 1), ("bytes=10-999999", 10, size - 1), ("bytes=-999999", 0, size - 1)):
        part = client.get(url, headers={"Range": asked})
        assert part.status_code == 206, asked
        assert part.content == body[first : last + 1], asked
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", asked
        assert int(part.headers["content-length"]) == last - first + 1
        assert part.headers["etag"] == etag and part.headers["content-type"] == "image/jpeg"
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.content == b""
    assert beyond.headers["content-range"] == f"bytes */{size}"
    # Not one well-formed byte range: ignored, as RFC 9110 allows; so are HEAD's and another version's.
    for ignored in ("bytes=5-2", "bytes=0-1,5-9", "items=0-1", "bytes=abc", "bytes=-"):
        answer = client.get(url, headers={"Range": ignored})
        assert answer.status_code == 200 and answer.content == body, ignored
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}).content == body
    matching = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert matching.status_code == 206 and matching.content == body[:10]
    head = client.head(url, headers={"Range": "bytes=0-9"})
    assert head.status_code == 200 and int(head.headers["content-length"]) == size
    # The client already holds this version: If-None-Match comes first (RFC 9110 13.2.2).
    assert client.get(url, headers={"Range": "bytes=0-9", "If-None-Match": etag}).status_code == 304
    # A range never changes what later requests get.
    assert client.get(url).content == body


def test_equivalent_parameter_orders_share_one_cache_entry(client: Any) -> None:
    client.get("/demo/image/upload/w_300,c_scale/docs/road.jpg")
    hits = metric(client, "cutout_cache_hits_total")
    response = client.get("/demo/image/upload/c_scale,w_300/docs/road.jpg")
    assert response.status_code == 200
    assert metric(client, "cutout_cache_hits_total") == hits + 1


def test_zero_opacity_is_its_own_derivative(client: Any) -> None:
    """o_0 makes the image fully transparent: not the original's bytes, and not the cached bytes of the
    same URL without it (o_0 was left out of the cache key as if it were no value at all)."""
    plain = client.get("/image/upload/c_scale,w_30/docs/road.png")
    assert plain.status_code == 200
    for path in ("/image/upload/o_0,c_scale,w_30/docs/road.png",
                 "/image/upload/c_scale,w_30/o_0/docs/road.png"):  # fmt: skip
        clear = client.get(path)
        assert clear.status_code == 200 and clear.content != plain.content, path
        image = decoded(clear.content)
        assert (image.width, image.bands, image[3].max()) == (30, 4, 0), path
    original = client.get("/image/upload/docs/road.jpg").content
    assert client.get("/image/upload/o_0/docs/road.jpg").content != original


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/demo/image/upload/w_abc/docs/road", 400, "w"),
        ("/demo/image/upload/zz_1/v1/docs/road", 400, "zz"),
        ("/demo/image/upload/docs/nope", 404, "Resource not found - docs/nope"),
        ("/demo/image/upload/u_docs:nope/fl_layer_apply/docs/road", 404, "docs/nope"),
        ("/demo/image/upload/v1/docs/%2E%2E/%2E%2E/pyproject", 400, "public id"),
        ("/demo/image/upload/v1/..%2F..%2Fpyproject", 400, "public id"),
        ("/demo/video/upload/docs/road", 400, "image/upload"),
        # Decoded newlines still reach the delivery route (Starlette's path convertor stops at them).
        ("/image/upload/e_%0A/docs/road", 400, "e_%0A"),
        ("/image/upload/w_10/a%0Ab.jpg", 400, "public id"),
        ("/demo/image/upload/c_scale,w_50/docs/road%0A.jpg", 400, "public id"),
        ("/favicon.ico", 404, "Not found: /favicon.ico"),
        ("/demo/favicon.ico", 400, "Invalid delivery path"),
    ],
)
def test_client_errors(client: Any, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert message in unquote(response.headers["x-cld-error"])
    assert response.text.strip() == unquote(response.headers["x-cld-error"]) or status == 404
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("public_id", "quoted"),
    [("caf%C3%A9", "caf%C3%A9"), ("100%25", "100%25"), ("%E6%97%A5", "%E6%97%A5"), ("a%2525b", "a%2525b")],
)
def test_the_error_header_is_utf8_percent_encoding_of_the_body(
    client: Any, public_id: str, quoted: str
) -> None:
    """X-Cld-Error escapes '%' too and writes UTF-8 (é was Latin-1 %E9, 日 a '?', and a literal '%' was
    left as it was, so "%E9" in the header could be either): unquote() gives the body's text back."""
    response = client.get(f"/image/upload/docs/{public_id}.jpg")
    assert response.status_code == 404
    header = response.headers["x-cld-error"]
    assert header == f"Resource not found - docs/{quoted}"
    assert unquote(header) == response.text.strip() == f"Resource not found - docs/{unquote(public_id)}"


def test_a_400_shows_the_id_as_written_and_escapes_what_cannot_be_seen(client: Any) -> None:
    """A message quotes the client's text as written (héllo, not h\\xe9llo: the body is UTF-8, the header
    its percent-encoding), while a newline or an ANSI escape stays a visible escape in both."""
    response = client.get("/image/upload/w_10/h%C3%A9llo/%2E%2E/x.jpg")
    assert response.status_code == 400
    assert response.text.strip() == (
        "Invalid public id \"héllo/../x\": folder names must not be empty, '.' or '..'"
    )
    assert response.headers["x-cld-error"].isascii()
    assert unquote(response.headers["x-cld-error"]) == response.text.strip()
    hidden = client.get("/image/upload/w_10/h%C3%A9%0A%1B%5B31m.jpg")
    assert hidden.status_code == 400
    assert 'public id "hé\\n\\x1b[31m"' in hidden.text
    assert "\n" not in hidden.text.strip() and "\x1b" not in hidden.text
    assert unquote(hidden.headers["x-cld-error"]) == hidden.text.strip()


def test_a_public_id_is_found_in_either_unicode_form(make_client: ClientFactory, tmp_path: Path) -> None:
    """café composed (NFC: %C3%A9) and decomposed (NFD: e + U+0301, %CC%81) look alike and mean the same:
    either URL finds either file, as a layer too; the id as written wins when both are stored. A 404 for
    a decomposed id says so (it looked identical to the composed id's)."""
    originals = tmp_path / "originals"
    originals.mkdir()
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    (originals / "cafe\u0301.jpg").write_bytes(road)  # stored decomposed (a macOS file name)
    (originals / "th\u00e9.jpg").write_bytes(road)  # stored composed
    client = make_client(originals=originals)
    for path in ("caf%C3%A9.jpg", "cafe%CC%81.jpg", "th%C3%A9.jpg", "the%CC%81.jpg"):
        answer = client.get(f"/image/upload/c_scale,w_40/{path}")
        assert answer.status_code == 200, (path, answer.headers.get("x-cld-error"))
    layered = client.get("/image/upload/l_caf%C3%A9,w_20/fl_layer_apply/the%CC%81.jpg")
    assert layered.status_code == 200, layered.headers.get("x-cld-error")
    small = pyvips.Image.new_from_buffer(road, "").thumbnail_image(30).jpegsave_buffer()
    (originals / "cafe\u0301.jpg").unlink()
    (originals / "caf\u00e9.jpg").write_bytes(small)
    (originals / "cafe\u0301.jpg").write_bytes(road)
    assert decoded(client.get("/image/upload/caf%C3%A9.jpg").content).width == 30
    assert decoded(client.get("/image/upload/cafe%CC%81.jpg").content).width == 640
    composed, decomposed = (client.get(f"/image/upload/{p}.jpg") for p in ("na%C3%AFve", "nai%CC%88ve"))
    assert (composed.status_code, decomposed.status_code) == (404, 404)
    assert composed.text.strip() == "Resource not found - na\u00efve"
    assert decomposed.text.strip() == (
        "Resource not found - nai\u0308ve (written in decomposed Unicode, NFD: nai\\u0308ve; no original "
        "has this id in either form)"
    )


@pytest.mark.parametrize("path", ["/", "/favicon.ico", "/robots.txt"])
def test_what_browsers_and_crawlers_ask_for_is_a_plain_404(client: Any, path: str) -> None:
    """Not a 400 (no mistake in the URL language): a short text 404, GET and HEAD alike; the server's own
    routes beside them still answer."""
    for response in (client.get(path), client.head(path)):
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["x-cld-error"] == f"Not found: {path} (this server is an image origin; " \
            "see /healthz)"
        assert response.headers["content-type"].startswith("text/plain")
    assert client.get(path).text.strip() == client.get(path).headers["x-cld-error"]
    assert client.head(path).content == b""
    assert client.post(path).status_code == 405
    assert client.get("/healthz").status_code == 200
    assert client.get("/image/upload/c_scale,w_20/docs/road.jpg").status_code == 200


def test_every_delivery_answer_says_nosniff(client: Any) -> None:
    """Images, 304s, hits from memory (the fast path) and text/plain errors alike."""
    url = "/image/upload/c_scale,w_30/docs/road.jpg"
    answers = [client.get(url), client.get(url), client.get(url)]  # rendered, from disk, from memory
    answers.append(client.get(url, headers={"If-None-Match": answers[0].headers["etag"]}))
    answers += [client.get("/image/upload/w_abc/docs/road"), client.get("/image/upload/docs/nope")]
    answers.append(client.post("/image/upload/docs/road"))  # starlette's own 405, in the error model
    assert [a.status_code for a in answers] == [200, 200, 200, 304, 400, 404, 405]
    for answer in answers:
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], answer.status_code


def test_unrouted_requests_answer_in_the_error_model(client: Any) -> None:
    post = client.post("/demo/image/upload/docs/road")
    # Every method the path takes: its OPTIONS (a preflight, 204) is another route than its GET.
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/demo/image/upload/docs/road").status_code == 204
    assert post.headers["x-cld-error"].startswith("Method POST not allowed on /demo/image/upload/docs/road")
    assert "/healthz" in post.headers["x-cld-error"] and post.text.strip() == post.headers["x-cld-error"]
    assert client.delete("/metrics").status_code == 405
    assert client.delete("/metrics").headers["allow"] == "GET, HEAD, OPTIONS"
    # A request target that is not a path (``OPTIONS *``) matches no route at all.
    status, headers = asgi_call(client, "OPTIONS", "*")
    assert status == 404
    assert headers["x-cld-error"].startswith("No route for '*': delivery URLs are GET or HEAD")


def asgi_call(client: Any, method: str, path: str) -> tuple[int, dict[str, str]]:
    """Straight to the ASGI app: the test client cannot send a target that does not start with '/'."""
    started: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        started.extend([message] if message["type"] == "http.response.start" else [])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver")], "server": ("testserver", 80),
             "state": dict(client.app_state)}
    client.portal.call(client.app, scope, receive, send)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in started[0]["headers"]}
    return started[0]["status"], headers


def _originals(tmp_path: Path) -> Path:
    root = tmp_path / "originals"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "road.jpg").write_bytes((SAMPLES / "docs" / "road.jpg").read_bytes())
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG at all" * 10)
    (tmp_path / "secret.jpg").write_bytes((SAMPLES / "docs" / "road.jpg").read_bytes())
    os.symlink(tmp_path / "secret.jpg", root / "escape.jpg")
    return root


def test_undecodable_too_large_and_symlinks_out(make_client: ClientFactory, tmp_path: Path) -> None:
    client = make_client(originals=_originals(tmp_path), max_pixels=100_000)
    broken = client.get("/demo/image/upload/c_scale,w_10/broken")
    assert broken.status_code == 422, broken.text
    large = client.get("/demo/image/upload/c_scale,w_10/docs/road")
    assert large.status_code == 413, large.text
    escape = client.get("/demo/image/upload/escape")
    assert escape.status_code == 404


def test_cloud_name_is_checked_when_configured(make_client: ClientFactory) -> None:
    client = make_client(cloud_name="demo")
    assert client.get("/demo/image/upload/docs/road").status_code == 200
    assert client.get("/image/upload/docs/road").status_code == 200
    other = client.get("/other/image/upload/docs/road")
    assert other.status_code == 404 and "other" in other.headers["x-cld-error"]


def test_signed_urls(make_client: ClientFactory) -> None:
    client = make_client(api_secret="abcd")
    for options in ({}, {"long_url_signature": True}, {"signature_algorithm": "sha256"}):
        url = sdk("docs/road", width=120, crop="scale", sign_url=True, api_secret="abcd", **options)
        assert "/s--" in url
        assert client.get(url).status_code == 200, url
    forged = sdk("docs/road", width=121, crop="scale", sign_url=True, api_secret="wrong")
    response = client.get(forged)
    assert response.status_code == 401 and "signature" in response.headers["x-cld-error"].lower()


def test_seo_suffix_urls_are_the_upload_urls_they_alias(make_client: ClientFactory) -> None:
    """/images/.../<public_id>/<suffix>.<ext> (pycloudinary's url_suffix) delivers what /image/upload/
    .../<public_id>.<ext> does: the same bytes and etag, signed the same (the suffix is not signed, so any
    suffix passes), and a strict server's refusal is the same."""
    client = make_client(api_secret="abcd")
    plain = client.get("/demo/image/upload/c_scale,w_40/v1/docs/road.jpg")
    for suffix in ("nice-road.jpg", "another%20name.jpg"):
        seo = client.get(f"/demo/images/c_scale,w_40/v1/docs/road/{suffix}")
        assert seo.status_code == 200, seo.headers.get("x-cld-error")
        assert seo.content == plain.content and seo.headers["etag"] == plain.headers["etag"]
        assert client.head(f"/images/c_scale,w_40/v1/docs/road/{suffix}").status_code == 200
    assert client.get("/images/docs/road/seaside.png").headers["content-type"] == "image/png"
    missing = client.get("/demo/images/docs/nope/seaside.jpg")
    assert missing.status_code == 404 and missing.headers["x-cld-error"] == "Resource not found - docs/nope"
    signed = sdk("docs/road", width=77, crop="scale", format="jpg", url_suffix="seaside", sign_url=True,
                 api_secret="abcd")  # fmt: skip
    assert "/demo/images/s--" in signed and signed.endswith("/docs/road/seaside.jpg")
    strict = make_client(strict=True, api_secret="abcd")
    assert strict.get(signed).status_code == 200
    assert strict.get(signed.replace("/seaside.jpg", "/other.jpg")).status_code == 200
    assert strict.get(signed.replace("w_77", "w_78")).status_code == 401
    assert strict.get("/demo/images/c_scale,w_77/docs/road/seaside.jpg").status_code == 401


def test_strict_mode(make_client: ClientFactory, tmp_path: Path) -> None:
    named = tmp_path / "named.toml"
    named.write_text('thumb = "c_fill,h_100,w_100"\n')
    from cutout.settings import load_settings

    loaded = load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(named)})
    client = make_client(strict=True, api_secret="abcd", named=loaded.named,
                         allowed_transformations=("w_50,c_scale",))
    blocked = client.get("/demo/image/upload/c_scale,w_77/docs/road")
    assert blocked.status_code == 401
    assert blocked.headers["x-cld-error"] == "Transformation c_scale,w_77 is not allowed"
    assert client.get("/demo/image/upload/docs/road").status_code == 200  # the original itself
    assert client.get("/demo/image/upload/c_scale,w_50/docs/road").status_code == 200  # allow-list, any order
    thumb = client.get("/demo/image/upload/t_thumb/docs/road")
    assert thumb.status_code == 200 and decoded(thumb.content).width == 100
    # a format change, an automatic quality, and both after a named transformation: no signature needed
    for served in ("f_png", "f_auto", "q_auto:eco", "t_thumb/f_auto/q_auto", "t_thumb/f_auto,q_auto"):
        assert client.get(f"/demo/image/upload/{served}/docs/road").status_code == 200, served
    for refused in ("q_80", "t_thumb/c_scale,w_20", "f_auto,w_20"):
        assert client.get(f"/demo/image/upload/{refused}/docs/road").status_code == 401, refused
    signed = sdk("docs/road", width=77, crop="scale", sign_url=True, api_secret="abcd")
    assert client.get(signed).status_code == 200


def test_unexpected_errors_are_generic_500s_and_the_server_stays_up(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transform

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("internal detail that must not leak")

    monkeypatch.setattr(transform, "render", broken)
    response = client.get("/demo/image/upload/c_scale,w_33/docs/road")
    assert response.status_code == 500
    assert response.headers["x-cld-error"] == "Internal error"
    assert "detail" not in response.text
    assert response.headers["cache-control"] == "no-store"
    monkeypatch.undo()
    assert client.get("/demo/image/upload/c_scale,w_34/docs/road").status_code == 200


def test_health_ready_and_metrics(client: Any, make_client: ClientFactory, stub: EllipseSegmenter) -> None:
    assert client.get("/healthz").text == "ok\n"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.text == f"ready: background removal with model {stub.model_id}\n"
    client.get("/demo/image/upload/docs/road")
    body = client.get("/metrics").text
    for name in ("cutout_requests_total", "cutout_render_seconds", "cutout_inference_total",
                 "cutout_inference_seconds", "cutout_cache_hits_total", "cutout_cache_misses_total",
                 "cutout_queue_depth", "cutout_claims_active"):
        assert name in body
    no_model = make_client(segmenter=None)
    ready = no_model.get("/readyz")
    assert ready.status_code == 503 and "model" in ready.text
    response = no_model.get("/demo/image/upload/e_background_removal/docs/road")
    assert response.status_code == 501
    assert "Background removal is not available" in response.headers["x-cld-error"]
    turned_off = make_client(segmenter=None, background_removal=False).get("/readyz")
    assert turned_off.status_code == 200 and "background removal off" in turned_off.text


def test_hot_hits_answer_like_the_full_path(client: Any) -> None:
    """The first request goes through Starlette; repeats are answered by the in-memory fast path."""
    url = "/demo/image/upload/c_scale,w_90/f_auto/docs/road"
    accept = {"Accept": "image/webp,*/*"}
    full = client.get(url, headers=accept)
    fast = client.get(url, headers=accept)
    service = client.app.state.service
    assert service.hot(url, accept["Accept"]) is not None
    assert fast.content == full.content
    names = ("content-type", "content-length", "etag", "cache-control", "vary", "access-control-allow-origin",
             "access-control-expose-headers")
    assert {n: fast.headers.get(n) for n in names} == {n: full.headers.get(n) for n in names}
    # Later hits reuse the encoded headers; they still count, and 304 and HEAD still apply.
    answered = metric(client, 'cutout_requests_total{status="200"}')
    again = client.get(url, headers=accept)
    assert again.content == full.content
    assert {n: again.headers.get(n) for n in names} == {n: full.headers.get(n) for n in names}
    assert metric(client, 'cutout_requests_total{status="200"}') == answered + 1
    cached = client.get(url, headers={**accept, "If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    assert "content-length" not in cached.headers  # RFC 9110 8.6: none, or the 200's; as the full path
    head = client.head(url, headers=accept)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]


def test_names_too_long_for_the_file_system_are_404(client: Any) -> None:
    """ENAMETOOLONG from the file system is a missing original (404, cacheable), not a 500."""
    for path, message in [
        ("/image/upload/" + "a" * 253, "Resource not found - aaaa"),
        ("/image/upload/" + "%C3%A9" * 200 + ".jpg", "Resource not found - "),
        ("/image/upload/l_" + "b" * 253 + "/fl_layer_apply/docs/road.jpg", "referenced image bbbb"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, (path[:40], response.status_code)
        assert message in response.headers["x-cld-error"]
        assert response.headers["cache-control"] == "public, max-age=60"


def test_a_named_replica_names_itself_on_every_answer(make_client: ClientFactory) -> None:
    """CUTOUT_REPLICA_NAME: on the fast path's hits, the app's answers and errors alike."""
    named = make_client(replica_name="replica-7")
    url = "/demo/image/upload/c_scale,w_50/docs/road"
    for response in (named.get(url), named.get(url), named.get("/demo/image/upload/docs/none"),
                     named.get("/healthz")):
        assert response.headers["x-cutout-replica"] == "replica-7", response.status_code
    assert "x-cutout-replica" not in make_client().get(url).headers


def test_a_browsers_preflight_of_a_delivery_url_is_answered(client: Any) -> None:
    """A cross-site ``fetch`` of an image with a header of its own asks first (OPTIONS): allowed, any
    header that is a header name; the image itself is then readable by the page (its CORS headers)."""
    url = "/image/upload/c_scale,w_30/docs/road.jpg"
    asked = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "x-requested-with, accept"}  # fmt: skip
    answer = client.options(url, headers=asked)
    assert answer.status_code == 204 and answer.content == b""
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert answer.headers["access-control-allow-headers"] == "x-requested-with, accept"
    bad = client.options(url, headers={**asked, "Access-Control-Request-Headers": "x-a, (y)"})
    assert bad.status_code == 204 and "access-control-allow-headers" not in bad.headers
    plain = client.options(url)
    assert plain.status_code == 204 and plain.headers["allow"] == "GET, HEAD, OPTIONS"
    image = client.get(url, headers={"Origin": "https://shop.example", "X-Requested-With": "fetch"})
    assert image.status_code == 200 and image.headers["access-control-allow-origin"] == "*"
