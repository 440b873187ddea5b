"""d_ on /image/fetch/: a remote image that cannot be downloaded (404, another error, unreachable) is a
missing original, and the default image stands in for it as on upload URLs (tests/app/
test_app_default_image.py): 200, transformed, X-Cld-Error, briefly cached, never the fetched image's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cloudinary.utils
import pytest
import pyvips
from starlette.testclient import TestClient

from tests.api.conftest import road
from tests.app.helpers import ClientFactory, metric
from tests.fetch.servers import LocalServer, answer, serving

DEFAULT = "(default image docs/road delivered)"


@pytest.fixture
def origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """Listed before the client: the app reads the fetch policy when it starts. Unknown paths answer 404."""
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW", "127.0.0.2")
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    with serving("127.0.0.2") as server:
        yield server


def sdk(remote: str, **options: Any) -> str:
    url, _ = cloudinary.utils.cloudinary_url(remote, type="fetch", cloud_name="demo", **options)
    return str(url).split("res.cloudinary.com", 1)[1]


def size(content: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(content, "")
    return image.width, image.height


def test_a_remote_that_answers_404_delivers_the_default_transformed(
    origin: LocalServer, api: TestClient
) -> None:
    url = sdk(origin.url("/gone.jpg"), default_image="docs:road.jpg", width=100, crop="scale")
    assert url.startswith("/demo/image/fetch/c_scale,d_docs:road.jpg,w_100/http")
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["x-cld-error"] == f"127.0.0.2 answered 404 Not Found {DEFAULT}"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["content-type"] == "image/jpeg"  # the default's format: none asked
    assert size(response.content) == (100, 67)
    # The default's own derivative: the same bytes (a cache hit) as the default asked for itself.
    hits = metric(api, "cutout_cache_hits_total")
    own = api.get("/demo/image/upload/c_scale,w_100/docs/road")
    assert own.content == response.content and "x-cld-error" not in own.headers
    assert metric(api, "cutout_cache_hits_total") == hits + 1


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (answer(500, b"oops", "text/plain"), "127.0.0.2 answered 500 Internal Server Error"),
        (answer(403, b"no", "text/plain"), "127.0.0.2 answered 403 Forbidden"),
        (answer(301, b"", "text/plain", {"Location": "/loop.jpg"}), "Redirect loop"),
    ],
)
def test_any_failed_download_delivers_the_default(
    origin: LocalServer, api: TestClient, route: Any, reason: str
) -> None:
    origin.routes["/loop.jpg"] = route
    response = api.get(f"/image/fetch/d_docs:road/c_scale,w_60/{origin.url('/loop.jpg')}")
    assert response.status_code == 200, response.text
    assert response.headers["x-cld-error"].startswith(reason)
    assert response.headers["x-cld-error"].endswith(DEFAULT)
    assert size(response.content) == (60, 40)


def test_an_unreachable_remote_delivers_the_default(
    make_api: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW", "127.0.0.2")
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    with serving("127.0.0.2") as closed:
        remote = closed.url("/a.jpg")
    api = make_api()  # the server is gone: its port refuses connections
    response = api.get(f"/image/fetch/d_docs:road/{remote}")
    assert response.status_code == 200, response.text
    assert response.headers["x-cld-error"].startswith("Could not download from 127.0.0.2: connection failed")
    assert response.headers["x-cld-error"].endswith(DEFAULT)
    assert response.content == road()  # nothing else asked: the default as stored


def test_the_remote_image_is_served_once_it_is_there(origin: LocalServer, make_api: ClientFactory) -> None:
    """The placeholder is cached as the default's derivative, never under the fetched URL: once the remote
    answers, the next request fetches and serves its image."""
    api = make_api(max_age=30)
    url = f"/image/fetch/d_docs:road/c_scale,w_50/{origin.url('/late.jpg')}"
    placeholder = api.get(url)
    assert placeholder.headers["x-cld-error"].endswith(DEFAULT)
    assert placeholder.headers["cache-control"] == "public, max-age=30"  # CUTOUT_MAX_AGE when shorter
    assert api.get(url).headers["x-cld-error"].endswith(DEFAULT)  # asked again each time
    origin.routes["/late.jpg"] = answer(200, _photo(), "image/jpeg")
    real = api.get(url)
    assert real.status_code == 200 and "x-cld-error" not in real.headers
    assert real.content != placeholder.content and size(real.content) == (50, 25)
    assert real.headers["cache-control"] == "public, max-age=30"
    assert origin.paths() == ["/late.jpg"] * 3


def _photo() -> bytes:
    image = pyvips.Image.black(200, 100, bands=3) + [40, 160, 90]
    return bytes(image.cast("uchar").jpegsave_buffer())


def test_without_a_default_or_with_a_missing_one_the_failure_is_the_answer(
    origin: LocalServer, api: TestClient
) -> None:
    remote = origin.url("/gone.jpg")
    plain = api.get(f"/image/fetch/c_scale,w_60/{remote}")
    assert plain.status_code == 400 and plain.text == "127.0.0.2 answered 404 Not Found\n"
    missing = api.get(f"/image/fetch/d_docs:nobody.png/c_scale,w_60/{remote}")
    assert missing.status_code == 400 and missing.headers["x-cld-error"] == "127.0.0.2 answered 404 Not Found"


def test_an_image_that_is_there_but_refused_is_not_replaced(origin: LocalServer, api: TestClient) -> None:
    """Only a download that failed stands for a missing image: a page instead of an image (415), or a URL
    that may not be fetched (403), answers as without d_."""
    origin.routes["/page.jpg"] = answer(200, b"<html>soft 404</html>", "text/html")
    page = api.get(f"/image/fetch/d_docs:road/{origin.url('/page.jpg')}")
    assert page.status_code == 415
    other = api.get("/image/fetch/d_docs:road/https://example.org/a.jpg")
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("d_%2E%2E:etc:passwd", "folder names must not be empty, '.' or '..'"),
        ("d_docs::road", 'missing value after "d_docs:"'),
        ("l_docs:road,d_docs:road/fl_layer_apply", "d_ names the default of the delivered image"),
    ],
)
def test_a_bad_default_is_a_400_before_anything_is_fetched(
    origin: LocalServer, api: TestClient, transformation: str, message: str
) -> None:
    response = api.get(f"/image/fetch/{transformation}/{origin.url('/gone.jpg')}")
    assert response.status_code == 400 and message in response.text
    assert origin.paths() == []


def test_strict_mode_wants_the_default_signed(origin: LocalServer, make_api: ClientFactory) -> None:
    api = make_api(api_secret="fetch-secret", strict=True)
    remote = origin.url("/gone.jpg")
    unsigned = api.get(f"/image/fetch/d_docs:road/{remote}")
    assert unsigned.status_code == 401 and origin.paths() == []  # refused before fetching
    signed = sdk(remote, default_image="docs:road", sign_url=True, api_secret="fetch-secret")
    response = api.get(signed)
    assert response.status_code == 200 and response.headers["x-cld-error"].endswith(DEFAULT)


def test_a_download_of_the_default_is_named_after_the_remote_file(
    origin: LocalServer, api: TestClient
) -> None:
    """The default stands in for the fetched image: a download (fl_attachment without a name) is still
    named after the remote file, as an upload URL's is after its public id, not after a hash of the URL."""
    response = api.get(f"/image/fetch/d_docs:road.jpg,fl_attachment/{origin.url('/gone.jpg')}")
    assert response.status_code == 200, response.text
    assert response.headers["x-cld-error"].endswith(DEFAULT)
    assert response.headers["content-disposition"] == 'attachment; filename="gone.jpg"'
