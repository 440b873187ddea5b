"""/image/fetch/ over HTTP: the fetched image is an original like an upload (transformations, background
removal, one mask per content shared with the API), revalidated with its validators after
CUTOUT_FETCH_TTL, and refused when fetching is off or the URL is not allowed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.remote import split_fetch_path
from tests.api.conftest import noise_png, road
from tests.app.helpers import ClientFactory, EllipseSegmenter, wait_for_200
from tests.fetch.servers import LocalServer, RecordingHandler, answer, send, serving

ETAG = '"road-1"'


def road_route(handler: RecordingHandler) -> None:
    if handler.headers.get("If-None-Match") == ETAG:
        send(handler, 304, b"", None, {"ETag": ETAG})
    else:
        send(handler, 200, road(), "image/jpeg", {"ETag": ETAG})


@pytest.fixture
def origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """List it before the client: the app reads the fetch policy when it starts."""
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW", "127.0.0.2")
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    with serving("127.0.0.2") as server:
        server.routes["/road.jpg"] = road_route
        yield server


def test_split() -> None:
    assert split_fetch_path("/image/fetch/https://a.org/x.jpg") == ("", "", "https://a.org/x.jpg")
    assert split_fetch_path("/image/fetch/w_10/e_grayscale/https:/a.org/x.jpg?v=1") == (
        "", "w_10/e_grayscale", "https://a.org/x.jpg?v=1",
    )  # fmt: skip
    assert split_fetch_path("/image/fetch/https%3A%2F%2Fa.org%2Fx.jpg") == ("", "", "https://a.org/x.jpg")
    assert split_fetch_path("/image/upload/docs/road.jpg") is None


def test_fetch_with_transformations(origin: LocalServer, api: TestClient) -> None:
    response = api.get(f"/image/fetch/c_scale,w_100/{origin.url('/road.jpg')}")
    assert response.status_code == 200, response.text
    out = pyvips.Image.new_from_buffer(response.content, "")
    assert out.width == 100 and response.headers["content-type"] == "image/jpeg"
    again = api.get(f"/demo/image/fetch/c_scale,w_100/{origin.url('/road.jpg')}")
    assert again.content == response.content
    assert origin.paths() == ["/road.jpg"]  # within CUTOUT_FETCH_TTL: fetched once


def test_fetch_with_background_removal_shares_the_mask_with_the_api(
    origin: LocalServer, api: TestClient, stub: EllipseSegmenter
) -> None:
    cut = wait_for_200(api, f"/image/fetch/e_background_removal/f_png/{origin.url('/road.jpg')}")
    assert cut.status_code == 200 and pyvips.Image.new_from_buffer(cut.content, "").bands == 4
    assert (
        api.post("/v1/remove-background", content=road(), headers={"Content-Type": "image/jpeg"}).status_code
        == 200
    )
    assert stub.calls == 1


def test_revalidated_after_the_ttl(origin: LocalServer, make_api: ClientFactory) -> None:
    client = make_api(fetch_ttl=0.0)
    url = f"/image/fetch/c_scale,w_50/{origin.url('/road.jpg')}"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    assert len(origin.seen) == 2
    assert origin.seen[1].headers.get("if-none-match") == ETAG


def test_fetch_is_off_without_an_allow_list(api: TestClient) -> None:
    response = api.get("/image/fetch/https://example.org/a.jpg")
    assert response.status_code == 404
    assert "CUTOUT_FETCH_ALLOW" in response.headers["x-cld-error"]


def test_a_host_not_allowed_and_a_private_address(origin: LocalServer, api: TestClient) -> None:
    other = api.get("/image/fetch/https://example.org/a.jpg")
    assert other.status_code == 403
    octal = api.get("/image/fetch/http://0177.0.0.1/a.jpg")  # not a URL at all: the client's 400
    assert octal.status_code == 400 and octal.text.startswith("Not a valid URL")
    as_api = api.post("/v1/remove-background", json={"image_url": "http://0177.0.0.1/a.jpg"})
    error = as_api.json()["errors"][0]
    assert (as_api.status_code, error["code"], error["parameter"]) == (400, "invalid_parameter", "image_url")
    assert api.get("/image/fetch/w_10").status_code == 400


def test_fetch_urls_signed_by_the_sdk(origin: LocalServer, make_api: ClientFactory) -> None:
    """The SDKs sign a fetch URL's transformation and remote URL as the path writes them: such a URL is
    served, in strict mode too; a wrong signature, or one for another remote URL, is a 401."""
    import cloudinary.utils

    remote = origin.url("/road.jpg")
    api = make_api(api_secret="fetch-secret", strict=True)

    def signed(transformation: dict[str, object], url: str = remote, secret: str = "fetch-secret") -> str:
        made, _ = cloudinary.utils.cloudinary_url(url, type="fetch", sign_url=True, cloud_name="demo",
                                                  api_secret=secret, **transformation)  # fmt: skip
        return str(made).split("res.cloudinary.com", 1)[1]

    path = signed({"width": 60, "crop": "scale"})
    assert "/s--" in path and "/c_scale,w_60/" in path
    response = api.get(path)
    assert response.status_code == 200, response.text
    assert pyvips.Image.new_from_buffer(response.content, "").width == 60
    assert api.get(signed({})).status_code == 200  # signed with no transformation
    unsigned = api.get(re.sub(r"/s--[^/]+--/", "/", path))
    assert unsigned.status_code == 401 and "not allowed" in unsigned.text  # strict mode
    wrong = api.get(signed({"width": 60, "crop": "scale"}, secret="other"))
    assert wrong.status_code == 401 and "Invalid signature" in wrong.text
    other = signed({"width": 60, "crop": "scale"}).replace("road.jpg", "road.jpg%3Fx%3D1")
    assert api.get(other).status_code == 401  # the signature is for another remote URL
    variables = signed({"raw_transformation": "$w_50/c_scale,w_$w"})
    assert "/$w_50/c_scale,w_$w/" in variables and api.get(variables).status_code == 200
    proxied = api.get(variables.replace("$", "%24"))  # a proxy's encoding: the same request, signed
    assert proxied.status_code == 200, proxied.text
    assert pyvips.Image.new_from_buffer(proxied.content, "").width == 50
    assert api.get(variables.replace("$w_50", "%24w_51")).status_code == 401


def test_a_fetch_url_refused_anyway_fetches_nothing(origin: LocalServer, make_api: ClientFactory) -> None:
    """Strict mode asks an unsigned fetch URL what it asks an upload URL (named, allowed or format-only
    transformations), before the image is fetched: it was fetched and stored first, then refused. A bad
    transformation or another cloud name is refused before any fetch too."""
    remote = origin.url("/road.jpg")
    strict = make_api(api_secret="fetch-secret", strict=True, cloud_name="demo",
                      allowed_transformations=("c_scale,w_40",))  # fmt: skip
    refused = strict.get(f"/image/fetch/e_grayscale/{remote}")
    assert refused.status_code == 401 and "unsigned fetch URL in strict mode" in refused.text
    assert strict.get(f"/image/fetch/w_abc/{remote}").status_code == 400
    assert strict.get(f"/other/image/fetch/c_scale,w_40/{remote}").status_code == 404
    assert origin.paths() == []  # nothing fetched, so nothing stored
    for allowed in ("c_scale,w_40/", "f_auto,q_auto/", ""):
        assert strict.get(f"/image/fetch/{allowed}{remote}").status_code == 200, allowed
    assert len(origin.paths()) == 1
    loose = make_api()
    assert loose.get(f"/image/fetch/w_abc/{remote}").status_code == 400
    assert len(origin.paths()) == 1


def test_fetched_images_live_in_a_bounded_store(origin: LocalServer, make_api: ClientFactory) -> None:
    """Not among the originals for ever: in a folder of the cache bounded by CUTOUT_FETCH_CACHE, least
    recently used out first; an image dropped from it is fetched again when next asked."""
    origin.routes["/a.png"] = answer(200, noise_png(1), "image/png")
    origin.routes["/b.png"] = answer(200, noise_png(2), "image/png")
    client = make_api(fetch_cache=1 << 20)
    settings = client.app.state.service.settings  # type: ignore[attr-defined]
    kept = Path(settings.originals) / ".cutout" / "transient" / "fetched"
    for name in ("a", "b", "a"):
        response = client.get(f"/image/fetch/c_scale,w_10/{origin.url(f'/{name}.png')}")
        assert response.status_code == 200, response.text
        assert len(list(kept.iterdir())) == 1  # the other one was dropped to make room
    assert origin.paths() == ["/a.png", "/b.png", "/a.png"]  # a, dropped for b, was fetched again
    assert not (Path(settings.originals) / "fetched").exists()


def test_the_query_string_is_ignored_as_on_cloudinary(origin: LocalServer, make_api: ClientFactory) -> None:
    """A fetch URL's query string (a cache-busting ``?v=2``, @cloudinary/url-gen's ``_a``) is no part of it,
    as on Cloudinary: the remote URL is fetched without it, and a signature of the path still holds. A
    remote URL's own query goes escaped into the path, as the SDKs write it."""
    from grammar.signature import sign

    api = make_api(api_secret="fetch-secret", strict=True)
    remote = origin.url("/road.jpg")
    signature = sign(f"c_scale,w_60/{remote}", "fetch-secret")
    for query in ("", "?v=2", "?_a=BAMAABDE0&v=3"):
        answer = api.get(f"/image/fetch/s--{signature}--/c_scale,w_60/{remote}{query}")
        assert answer.status_code == 200, (query, answer.text)
    escaped = sign(f"c_scale,w_60/{remote}%3Ftoken%3Dabc", "fetch-secret")
    assert api.get(f"/image/fetch/s--{escaped}--/c_scale,w_60/{remote}%3Ftoken%3Dabc").status_code == 200
    assert origin.paths() == ["/road.jpg", "/road.jpg?token=abc"]


def test_a_fetch_url_is_parsed_and_compiled_once(
    origin: LocalServer, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks made before fetching parse and compile the URL; the delivery after uses that result."""
    import transform
    from cutout import resolve

    calls: list[str] = []
    compile_plan, parse_path = transform.compile_plan, resolve.parse_path

    def counted_compile(*args: object, **kwargs: object) -> object:
        calls.append("compile")
        return compile_plan(*args, **kwargs)  # type: ignore[arg-type]

    def counted_parse(path: str) -> object:
        calls.append("parse")
        return parse_path(path)

    monkeypatch.setattr(transform, "compile_plan", counted_compile)
    monkeypatch.setattr(resolve, "parse_path", counted_parse)
    response = api.get(f"/image/fetch/c_scale,w_70/{origin.url('/road.jpg')}")
    assert response.status_code == 200 and pyvips.Image.new_from_buffer(response.content, "").width == 70
    assert calls == ["parse", "compile"]


def test_a_download_is_named_after_the_remote_file(origin: LocalServer, api: TestClient) -> None:
    """fl_attachment without a name: the remote file's name (its URL's last segment, without extension),
    as Cloudinary names a fetched asset by its URL, not the content hash the copy is stored under. Two
    URLs of one image (one stored original, one memoised preparation) keep their own names."""
    origin.routes["/photos/copy.of.road.jpg"] = road_route
    origin.routes["/"] = road_route
    cases = [
        (origin.url("/road.jpg"), "road"),
        (origin.url("/photos/copy.of.road.jpg") + "%3Fsize%3D2", "copy.of.road"),  # its own query escaped
        (origin.url("/road.jpg"), "road"),  # again, after the copy's memo of the same original
        (origin.url("/"), "image"),  # no file name in the URL
    ]
    for remote, name in cases:
        answer = api.get(f"/image/fetch/c_scale,fl_attachment,w_40/{remote}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-disposition"] == f'attachment; filename="{name}.jpg"', remote
    named = api.get(f"/image/fetch/fl_attachment:mine/{origin.url('/road.jpg')}")
    assert named.headers["content-disposition"] == 'attachment; filename="mine.jpg"'
    plain = api.get(f"/image/fetch/c_scale,w_40/{origin.url('/road.jpg')}")
    assert plain.status_code == 200 and "content-disposition" not in plain.headers


def test_download_names() -> None:
    from cutout.remote import download_name

    assert download_name("https://a.org/x/caf%C3%A9.large.jpg?size=2") == "café.large"
    assert download_name("https://a.org/x/photo") == "photo"
    assert download_name("https://a.org/") == download_name("https://a.org") == "image"
    assert download_name("https://a.org/x/.png") == download_name("https://a.org/x/...jpg") == "image"
    assert download_name("https://a.org/x/a%2Fb%5Cc%0D%0A.jpg") == "a_b_c__"  # never a folder nor a header
    assert download_name(f"https://a.org/{'n' * 300}.jpg") == "n" * 200
