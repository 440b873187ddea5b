"""d_<public_id>: a default image delivered, transformed, for a missing original (over HTTP, real app)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import pyvips
from cloudinary.utils import cloudinary_url
from starlette.testclient import TestClient

from cutout.cli import main
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, metric, wait_for_200

ROAD = SAMPLES / "docs" / "road.jpg"
WARNING = "Resource not found - nobody (default image docs/road delivered)"


def sdk(public_id: str, **options: Any) -> str:
    url, _ = cloudinary_url(public_id, cloud_name="demo", secure=False, cname="testserver", **options)
    return str(url).removeprefix("http://testserver")


def size(content: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(content, "")
    return image.width, image.height


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    """A writable copy of the samples, so that a missing original can arrive during a test."""
    folder = tmp_path / "originals"
    shutil.copytree(SAMPLES, folder)
    return folder


@pytest.fixture
def client(make_client: ClientFactory, originals: Path) -> TestClient:
    return make_client(originals=originals)


def test_a_missing_original_is_the_default_transformed(client: TestClient) -> None:
    url = sdk("nobody", default_image="docs:road.jpg", width=100, crop="scale")
    assert url == "/demo/image/upload/c_scale,d_docs:road.jpg,w_100/nobody"
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["x-cld-error"] == WARNING
    assert answer.headers["cache-control"] == "public, max-age=60"  # not CUTOUT_MAX_AGE's 3600
    assert answer.headers["content-type"] == "image/jpeg"  # the default's format: no extension asked
    assert size(answer.content) == (100, 67)
    # It is the default's own derivative: one cache entry for it and every missing id.
    hits = metric(client, "cutout_cache_hits_total")
    own = client.get("/demo/image/upload/c_scale,w_100/docs/road")
    assert own.content == answer.content and own.headers["etag"] == answer.headers["etag"]
    assert "x-cld-error" not in own.headers and own.headers["cache-control"] == "public, max-age=3600"
    other = client.get("/demo/image/upload/c_scale,d_docs:road.jpg,w_100/somebody/else")
    assert other.content == answer.content
    assert other.headers["x-cld-error"] == WARNING.replace("nobody", "somebody/else")
    assert metric(client, "cutout_cache_hits_total") == hits + 2


def test_the_default_is_found_by_public_id_and_served_as_stored(client: TestClient) -> None:
    """``d_docs:road.png``: Cloudinary writes the default's extension; it is found as an original is, in
    whatever format it is stored. With nothing else asked, its bytes are delivered as stored."""
    for default in ("docs:road.png", "docs:road.jpg", "docs:road"):
        answer = client.get(f"/image/upload/d_{default}/nobody")
        assert answer.status_code == 200 and answer.content == ROAD.read_bytes(), default
        assert answer.headers["x-cld-error"] == WARNING
    as_png = client.get("/image/upload/d_docs:road.jpg/nobody.png")  # the URL's extension picks the format
    assert as_png.headers["content-type"] == "image/png" and size(as_png.content) == (640, 427)


def test_an_existing_original_ignores_the_default(client: TestClient) -> None:
    answer = client.get("/image/upload/d_docs:road.jpg/c_scale,w_80/docs/rmv_bgd/router_orig.jpg")
    plain = client.get("/image/upload/c_scale,w_80/docs/rmv_bgd/router_orig.jpg")
    assert answer.status_code == 200 and "x-cld-error" not in answer.headers
    assert answer.content == plain.content
    assert answer.headers["cache-control"] == "public, max-age=3600"


def test_a_missing_default_is_the_originals_404(client: TestClient) -> None:
    answer = client.get("/image/upload/d_docs:placeholders:avatar.png/c_scale,w_80/nobody.jpg")
    assert answer.status_code == 404
    assert answer.headers["x-cld-error"] == "Resource not found - nobody"
    # A missing layer stays a 404 too: d_ stands in for the requested original only.
    layered = client.get("/image/upload/d_docs:road/l_nope/fl_layer_apply/nobody.jpg")
    assert layered.status_code == 404
    assert layered.headers["x-cld-error"] == "Unknown or invalid referenced image nope of type upload"


def test_a_placeholder_is_never_immutable_nor_cached_longer_than_max_age(
    make_client: ClientFactory, originals: Path
) -> None:
    client = make_client(originals=originals, max_age=30)
    version = int(ROAD.stat().st_mtime)  # the version the default has: still not the URL's image
    answer = client.get(f"/image/upload/d_docs:road/v{version}/nobody.jpg")
    assert answer.status_code == 200 and answer.headers["x-cld-error"] == WARNING
    assert answer.headers["cache-control"] == "public, max-age=30"


def test_the_original_uploaded_later_is_served_at_once(client: TestClient, originals: Path) -> None:
    url = "/image/upload/d_docs:road.jpg/c_fill,h_60,w_60/nobody.jpg"
    for _ in range(3):  # rendered, then from memory (and the fast path)
        placeholder = client.get(url)
        assert placeholder.headers["x-cld-error"] == WARNING
    shutil.copy(originals / "docs" / "rmv_bgd" / "router_orig.jpg", originals / "nobody.jpg")
    real = client.get(url)
    assert real.status_code == 200 and "x-cld-error" not in real.headers
    assert real.content != placeholder.content and real.headers["etag"] != placeholder.headers["etag"]
    assert real.headers["cache-control"] == "public, max-age=3600"
    assert client.get(url).content == real.content
    # Gone again: the placeholder again (from the cache), not the deleted original.
    (originals / "nobody.jpg").unlink()
    again = client.get(url)
    assert again.headers["x-cld-error"] == WARNING and again.content == placeholder.content


def test_d_anywhere_outside_layers_means_the_same(client: TestClient) -> None:
    urls = [
        "/image/upload/c_scale,d_docs:road,w_60/nobody.jpg",
        "/image/upload/c_scale,w_60/d_docs:road/nobody.jpg",
        "/image/upload/d_docs:road.jpg/c_scale,w_60/nobody.jpg",
    ]
    answers = [client.get(url) for url in urls]
    assert all(a.status_code == 200 and a.headers["x-cld-error"] == WARNING for a in answers)
    assert len({a.content for a in answers}) == 1 and size(answers[0].content) == (60, 40)
    inside = client.get("/image/upload/l_docs:road,d_docs:road/fl_layer_apply/nobody.jpg")
    assert inside.status_code == 400
    assert "d_ names the default of the delivered image" in inside.headers["x-cld-error"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "/image/upload/d_%2E%2E:%2E%2E:etc:passwd/nobody.jpg",
            "Invalid transformation parameter - d_%2E%2E:%2E%2E:etc:passwd: Invalid default image public id "
            "\"%2E%2E:%2E%2E:etc:passwd\": folder names must not be empty, '.' or '..'",
        ),
        (
            "/image/upload/d_/nobody.jpg",
            'Invalid transformation syntax at column 3 of "d_": missing value after "d_"',
        ),
        (
            "/image/upload/d_docs::road.png/nobody.jpg",
            'Invalid transformation syntax at column 8 of "d_docs::road.png": missing value after "d_docs:"',
        ),
    ],
)
def test_a_bad_default_is_a_400_naming_it(client: TestClient, url: str, message: str) -> None:
    answer = client.get(url)
    # X-Cld-Error percent-encodes '%' too: unquote() gives the message back.
    assert (answer.status_code, unquote(answer.headers["x-cld-error"])) == (400, message)


def test_signed_urls_and_strict_mode(make_client: ClientFactory, originals: Path) -> None:
    client = make_client(originals=originals, api_secret="abcd", strict=True)
    signed = sdk("nobody", default_image="docs:road.jpg", width=90, crop="scale", sign_url=True,
                 api_secret="abcd")  # fmt: skip
    answer = client.get(signed)
    assert answer.status_code == 200 and size(answer.content) == (90, 60)
    assert answer.headers["x-cld-error"] == WARNING
    assert client.get(signed.replace("w_90", "w_91")).status_code == 401  # the signature covers d_
    # Strict mode, unsigned: d_ is a transformation like any other (Cloudinary's strict mode lets only
    # signed, eager, allowed or named transformations through), even alone.
    alone = client.get("/image/upload/d_docs:road.jpg/nobody")
    assert alone.status_code == 401
    assert alone.headers["x-cld-error"] == "Transformation d_docs:road.jpg is not allowed"
    refused = client.get("/image/upload/d_docs:road.jpg/c_scale,w_91/nobody")
    assert refused.status_code == 401
    assert refused.headers["x-cld-error"] == "Transformation d_docs:road.jpg/c_scale,w_91 is not allowed"
    # Nor does d_ ride along with what is free (t_, f_, q_auto) or with an allowed transformation.
    assert client.get("/image/upload/d_docs:road.jpg/f_auto/q_auto/nobody").status_code == 401
    assert client.get("/image/upload/f_png/nobody").status_code == 404  # free, and no default: the 404


def test_strict_mode_allows_a_default_image_allowed_as_written(
    make_client: ClientFactory, originals: Path
) -> None:
    client = make_client(originals=originals, strict=True,
                         allowed_transformations=("c_scale,w_90", "c_scale,d_docs:road,w_80"))  # fmt: skip
    assert client.get("/image/upload/c_scale,w_90/docs/road").status_code == 200
    assert client.get("/image/upload/d_docs:road/c_scale,w_90/nobody").status_code == 401
    allowed = client.get("/image/upload/c_scale,d_docs:road.jpg,w_80/nobody")  # the same, canonically
    assert allowed.status_code == 200 and allowed.headers["x-cld-error"] == WARNING
    other = client.get("/image/upload/c_scale,d_docs:rmv_bgd:router_orig,w_80/nobody")
    assert other.status_code == 401


def test_background_removal_of_a_placeholder_is_the_defaults(
    client: TestClient, stub: EllipseSegmenter
) -> None:
    url = "/image/upload/d_docs:rmv_bgd:router_orig.jpg/e_background_removal/nobody.png"
    first = client.get(url)
    assert first.status_code == 423 and "retry-after" in first.headers
    done = wait_for_200(client, url)
    assert done.status_code == 200
    assert done.headers["x-cld-error"] == WARNING.replace("docs/road", "docs/rmv_bgd/router_orig")
    assert pyvips.Image.new_from_buffer(done.content, "").bands == 4
    # The default's own cut-out is the same entry: no second model run, no 423.
    own = client.get("/image/upload/e_background_removal/docs/rmv_bgd/router_orig.png")
    assert own.status_code == 200 and own.content == done.content
    assert stub.calls == 1


def test_eager_makes_the_placeholder_for_the_server(
    make_client: ClientFactory, originals: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "eager.txt"
    lines.write_text("d_docs:road.jpg/c_scale,w_70 nobody\n")
    cache_dir = tmp_path / "eager-cache"
    code = main(["eager", str(lines), "--originals", str(originals), "--cache-dir", str(cache_dir)])
    assert code == 0, capsys.readouterr().err
    client = make_client(originals=originals, cache_dir=cache_dir, strict=True)
    hits = metric(client, "cutout_cache_hits_total")
    answer = client.get("/image/upload/d_docs:road.jpg/c_scale,w_70/nobody")
    assert answer.status_code == 200 and answer.headers["x-cld-error"] == WARNING
    assert metric(client, "cutout_cache_hits_total") == hits + 1


def test_an_upload_through_the_upload_api_replaces_the_placeholder(
    make_client: ClientFactory, originals: Path
) -> None:
    """The SDK's URL for an asset not uploaded yet names a version it will not have; once uploaded, the
    URL with the asset's version is the asset, immutable; destroyed, the placeholder is back."""
    key, secret = "key-1", "secret-1"
    client = make_client(originals=originals, upload=True, api_key=key, api_secret=secret)
    url = "/demo/image/upload/d_docs:road/c_scale,w_50/v{}/shop/nobody.jpg"
    before = client.get(url.format(1))
    assert before.headers["x-cld-error"] == WARNING.replace("nobody", "shop/nobody")
    assert before.headers["cache-control"] == "public, max-age=60"
    router = (SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg").read_bytes()
    uploaded = client.post("/v1_1/demo/image/upload", data={"public_id": "shop/nobody"}, auth=(key, secret),
                           files={"file": ("router.jpg", router)})  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    after = client.get(url.format(uploaded.json()["version"]))
    assert after.status_code == 200 and "x-cld-error" not in after.headers
    assert after.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert after.content != before.content
    destroyed = client.post("/v1_1/demo/image/destroy", data={"public_id": "shop/nobody"}, auth=(key, secret))
    assert destroyed.status_code == 200 and destroyed.json() == {"result": "ok"}
    again = client.get(url.format(uploaded.json()["version"]))
    assert again.headers["x-cld-error"] == before.headers["x-cld-error"] and again.content == before.content
