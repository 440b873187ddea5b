"""The options built onto the engine's operations after the first cut: a background image (file, URL or
public id, cover-fitted under the cut-out), shadow, roi, task_id chaining and encoding=url; each bad
value a 400 naming it, and one model run for every option of one image (by /metrics)."""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.api.conftest import damaged_png, finished, road
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, metric
from tests.fetch.servers import LocalServer, answer, serving

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}
BAD = "invalid_parameter"


def image(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


def beach() -> bytes:
    return (SAMPLES / "docs" / "bg_beach.jpg").read_bytes()


def solid_png(rgb: list[int], width: int = 50, height: int = 200) -> bytes:
    data: bytes = pyvips.Image.black(width, height).new_from_image(rgb).cast("uchar").pngsave_buffer()
    return data


@pytest.fixture
def origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:  # before ``api``: read at start
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW", "*")
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    with serving("127.0.0.2") as server:
        server.routes["/green.png"] = answer(200, solid_png([0, 200, 0]), "image/png")
        yield server


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` over a few bytes of pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(bytes(4096)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pixels + chunk(b"IEND", b"")


def test_a_background_image_by_file_is_cover_fitted_under_the_cutout(api: TestClient) -> None:
    # A tall green image under a wide photo: cover-fitting scales it to the width and crops its height.
    files = {"image_file": ("road.jpg", road(), "image/jpeg"),
             "bg_image_file": ("bg.png", solid_png([0, 200, 0]), "image/png")}  # fmt: skip
    response = api.post(URL, files=files)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"  # auto: the background is opaque
    out = image(response.content)
    assert (out.width, out.height, out.bands) == (640, 427, 3)
    corner = out.getpoint(3, 3)
    assert corner[0] < 30 and corner[1] > 170 and corner[2] < 30  # the background everywhere outside
    centre = image(road()).getpoint(320, 213)
    assert all(abs(a - b) < 25 for a, b in zip(out.getpoint(320, 213), centre, strict=True))


def test_background_by_url_by_public_id_and_as_base64_are_one_derivative(
    origin: LocalServer, api: TestClient, api_settings: Settings, stub: EllipseSegmenter
) -> None:
    green = solid_png([0, 200, 0])
    by_url = api.post(URL, content=road(), headers=JPEG, params={"bg_image_url": origin.url("/green.png")})
    by_b64 = api.post(URL, json={"public_id": "docs/road", "bg_image_file": base64.b64encode(green).decode()})
    assert by_url.status_code == by_b64.status_code == 200, (by_url.text, by_b64.text)
    assert by_url.content == by_b64.content  # the background was stored once, by content
    folder = Path(api_settings.originals) / ".cutout" / "transient" / "api-uploads"
    stored = sorted(p.stem for p in folder.iterdir())
    assert len(stored) == 2  # the photo and the background
    beach_bg = api.post(URL, content=road(), headers=JPEG, params={"bg_public_id": "docs/bg_beach"})
    assert beach_bg.status_code == 200
    assert stub.calls == 1


def test_a_transparent_background_image_keeps_png(api: TestClient) -> None:
    half = pyvips.Image.black(40, 40).new_from_image([255, 0, 0, 100]).cast("uchar").pngsave_buffer()
    files = {"image_file": ("road.jpg", road(), "image/jpeg"), "bg_image_file": ("bg.png", half, "image/png")}
    response = api.post(URL, files=files)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert image(response.content).getpoint(3, 3)[3] == 100


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "parameter"),
    [
        ({"params": {"bg_public_id": "docs/nothing"}}, 404, "not_found", "bg_public_id"),
        ({"params": {"bg_public_id": "docs/road,x"}}, 404, "not_found", "bg_public_id"),
        ({"params": {"bg_public_id": "docs/road", "bg_color": "red"}}, 400, BAD, "bg_public_id"),
        ({"params": {"bg_public_id": "docs/road", "bg_image_url": "https://example.org/a.jpg"}},
         400, "invalid_parameter", "bg_image_url"),
        ({"params": {"bg_public_id": "docs/road", "channels": "alpha"}}, 400, BAD, "bg_public_id"),
        ({"params": {"bg_image_url": "file:///etc/passwd"}}, 403, "forbidden_url", "bg_image_url"),
        ({"params": {"bg_image_file": base64.b64encode(b"not an image").decode()}},
         415, "invalid_file_type", "bg_image_file"),
        ({"params": {"shadow": "1", "channels": "alpha"}}, 400, "invalid_parameter", "shadow"),
        # A background refused by its header or its end names the background, not "the image".
        ({"params": {"bg_image_file": base64.b64encode(_png_header(60000, 60000)).decode()}},
         413, "resolution_too_high", "bg_image_file"),
        ({"params": {"bg_image_file": base64.b64encode(road()[:3000]).decode()}},
         422, "failed_to_read_image", "bg_image_file"),
    ],
)  # fmt: skip
def test_bad_backgrounds_and_shadows(
    api: TestClient, kwargs: dict[str, Any], status: int, code: str, parameter: str
) -> None:
    response = api.post(URL, content=road(), headers=JPEG, **kwargs)
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert (error["code"], error["parameter"]) == (code, parameter)
    if code in ("resolution_too_high", "failed_to_read_image", "invalid_file_type"):
        assert parameter in error["detail"], error  # the vendors' envelopes carry no parameter


def test_a_background_file_part_that_is_empty_or_a_stray_file(api: TestClient) -> None:
    empty = api.post(URL, files={"image_file": ("r.jpg", road(), "image/jpeg"), "bg_image_file": ("b", b"")})
    assert empty.status_code == 400 and empty.json()["errors"][0]["parameter"] == "bg_image_file"
    stray = api.post(URL, files={"image_file": ("r.jpg", road(), "image/jpeg"), "other": ("o", b"x")})
    assert stray.status_code == 400 and stray.json()["errors"][0]["parameter"] == "other"


def test_shadow_darkens_below_the_cutout(api: TestClient) -> None:
    params = {"bg_color": "white", "format": "png"}
    plain = image(api.post(URL, content=road(), headers=JPEG, params=params).content)
    shaded = api.post(URL, content=road(), headers=JPEG, params={**params, "shadow": "true"})
    custom = api.post(URL, content=road(), headers=JPEG, params={**params, "shadow": "azimuth_90;spread_10"})
    assert shaded.status_code == custom.status_code == 200, shaded.text
    assert shaded.content != custom.content
    out = image(shaded.content)
    # e_dropshadow's default light (azimuth 215) casts it up and to the right: just above the ellipse
    # (centre 320, top edge ~43) the white turns grey; the corner stays white.
    assert plain.getpoint(330, 35)[0] == 255 and out.getpoint(330, 35)[0] < 200
    assert out.getpoint(3, 3)[:3] == [255.0, 255.0, 255.0]
    # The box is still the foreground's, not the shadow's.
    assert shaded.headers["x-foreground-width"] == plain_header(api, "x-foreground-width")


def plain_header(api: TestClient, name: str) -> str:
    return str(api.post(URL, content=road(), headers=JPEG).headers[name])


def test_roi_is_laid_on_the_upright_image(api: TestClient) -> None:
    """A photo stored sideways with EXIF orientation 6 (stored 427x640, shown 640x427): the region's
    percentages are of the image as shown, as the engine renders it."""
    sideways = pyvips.Image.new_from_buffer(road(), "").rot270().copy()
    sideways.set_type(pyvips.GValue.gint_type, "orientation", 6)
    data = sideways.jpegsave_buffer(keep="exif")
    response = api.post(URL, content=data, headers=JPEG, params={"roi": "0 0 50% 50%"})
    assert response.status_code == 200, response.text
    assert (response.headers["x-width"], response.headers["x-height"]) == ("640", "427")
    box = {k: int(response.headers[f"x-foreground-{k}"]) for k in ("left", "top", "width", "height")}
    assert box["left"] + box["width"] == 320 and abs(box["top"] + box["height"] - 214) <= 1


def test_roi_limits_the_foreground_and_its_box(api: TestClient, stub: EllipseSegmenter) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"roi": "0% 0% 50% 100%"})
    assert response.status_code == 200, response.text
    out = image(response.content)
    assert (out.width, out.height) == (640, 427)
    assert out.getpoint(250, 213)[3] == 255 and out.getpoint(400, 213)[3] == 0
    left, width = int(response.headers["x-foreground-left"]), int(response.headers["x-foreground-width"])
    assert left + width == 320
    # Written in pixels it is the same region, the same derivative; with crop, cropped to it.
    same = api.post(URL, content=road(), headers=JPEG, params={"roi": "0,0,320,427"})
    assert same.content == response.content
    cropped = api.post(URL, content=road(), headers=JPEG, params={"roi": "0 0 50% 100%", "crop": "1"})
    assert int(cropped.headers["x-width"]) == width
    assert stub.calls == 1


def settled(client: TestClient, name: str, quiet: float = 0.5, timeout: float = 5.0) -> float:
    """The metric once it has stopped moving: the counter is process-wide, and a job an earlier test
    left behind may still be finishing."""
    deadline = time.monotonic() + timeout
    value = metric(client, name)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = metric(client, name)
        if again == value:
            break
        value = again
    return value


def test_every_option_of_one_image_is_one_model_run(
    origin: LocalServer, api: TestClient, stub: EllipseSegmenter
) -> None:
    before = settled(api, "cutout_inference_total")
    variants: list[dict[str, str]] = [
        {}, {"channels": "alpha"}, {"bg_color": "red"}, {"crop": "1", "crop_margin": "5%"},
        {"shadow": "1"}, {"roi": "10% 10% 90% 90%"}, {"bg_image_url": origin.url("/green.png")},
        {"bg_public_id": "docs/bg_beach", "shadow": "1", "size": "320x320"}, {"format": "webp"},
        {"output": "json", "encoding": "url"}, {"max_megapixels": "0.1", "roi": "0 0 100 100"},
    ]  # fmt: skip
    for params in variants:
        response = api.post(URL, content=road(), headers=JPEG, params=params)
        assert response.status_code == 200, (params, response.text)
    assert stub.calls == 1
    assert metric(api, "cutout_inference_total") - before == 1


def test_encoding_url_is_the_delivery_url_of_the_same_bytes(api: TestClient) -> None:
    params = {"output": "json", "encoding": "url", "bg_color": "red", "crop": "1"}
    body = api.post(URL, content=road(), headers=JPEG, params=params).json()
    assert body["encoding"] == "url"
    url = httpx.URL(body["image"])
    assert url.path.startswith("/image/upload/e_background_removal/")
    binary = api.post(URL, content=road(), headers=JPEG, params={"bg_color": "red", "crop": "1"})
    got = api.get(url.raw_path.decode())  # a delivery URL: no key needed

    assert got.status_code == 200 and got.content == binary.content
    assert body["bytes"] == len(binary.content)


def test_encoding_url_is_signed_in_strict_mode(make_api: ClientFactory) -> None:
    strict = make_api(strict=True, api_secret="s3cret")
    body = strict.post(URL, content=road(), headers=JPEG, params={"output": "json", "encoding": "url"}).json()
    path = httpx.URL(body["image"]).raw_path.decode()
    assert path.startswith("/image/upload/s--")
    assert strict.get(path).status_code == 200
    unsigned = path.replace(path.split("/")[3] + "/", "")
    assert strict.get(unsigned).status_code == 401
    no_secret = make_api(strict=True)
    refused = no_secret.post(URL, content=road(), headers=JPEG, params={"output": "json", "encoding": "url"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["parameter"] == "encoding"


def test_encoding_url_starts_at_the_public_url(make_api: ClientFactory) -> None:
    """Behind a proxy or a CDN, CUTOUT_PUBLIC_URL is where clients reach delivery (as the Upload API's
    url and secure_url): the sync answer, its repeat and a task's result all point there."""
    client = make_api(public_url="https://images.example.org/media/")
    params = {"output": "json", "encoding": "url"}
    sync = [client.post(URL, content=road(), headers=JPEG, params=params).json()["image"] for _ in "12"]
    location = client.post(URL, content=road(), headers=JPEG, params={**params, "async": "1"}).headers[
        "location"
    ]
    assert finished(client, location)["status"] == "success"
    task = client.get(location + "/result").json()["image"]
    assert sync[0] == sync[1] == task
    assert sync[0].startswith("https://images.example.org/media/image/upload/e_background_removal/")
    path = "/" + sync[0].split("/media/", 1)[1]
    assert client.get(path).status_code == 200


def test_encoding_url_of_a_task_result(api: TestClient) -> None:
    params = {"async": "1", "output": "json", "encoding": "url", "format": "webp"}
    location = api.post(URL, content=road(), headers=JPEG, params=params).headers["location"]
    assert finished(api, location)["status"] == "success"
    body = api.get(location + "/result").json()
    got = api.get(httpx.URL(body["image"]).raw_path.decode())
    assert got.status_code == 200 and got.headers["content-type"] == "image/webp"


def test_task_id_chains_onto_an_earlier_result(api: TestClient, make_api: ClientFactory) -> None:
    first = api.post(URL, content=road(), headers=JPEG, params={"async": "1", "crop": "1"})
    task_id = first.json()["task_id"]
    assert finished(api, first.headers["location"])["status"] == "success"
    cropped = image(api.get(first.headers["location"] + "/result").content)
    chained = api.post(URL, json={"task_id": task_id, "bg_color": "white", "format": "png"})
    assert chained.status_code == 200, chained.text
    out = image(chained.content)
    assert (out.width, out.height, out.bands) == (cropped.width, cropped.height, 3)
    assert out.getpoint(1, 1) == [255.0, 255.0, 255.0]  # transparent corners of the crop: white now


def test_task_id_that_is_unknown_unfinished_or_failed(make_api: ClientFactory) -> None:
    client = make_api(segmenter=EllipseSegmenter(delay=1.5))
    unknown = client.post(URL, json={"task_id": "tsk_nothing"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["parameter"] == "task_id"
    slow = client.post(URL, content=road(), headers=JPEG, params={"async": "1"}).json()["task_id"]
    running = client.post(URL, json={"task_id": slow})
    assert running.status_code == 409 and running.headers["retry-after"] == "1"
    assert running.json()["errors"][0]["code"] == "task_not_finished"
    broken = client.post(URL, content=damaged_png(), headers=PNG, params={"async": "1"})
    assert finished(client, broken.headers["location"])["status"] == "error"
    failed = client.post(URL, json={"task_id": broken.json()["task_id"]})
    assert failed.status_code == 400 and failed.json()["errors"][0]["parameter"] == "task_id"
    both = client.post(URL, json={"task_id": slow, "public_id": "docs/road"})
    assert both.status_code == 400 and both.json()["errors"][0]["code"] == "multiple_sources"


def test_a_background_url_that_fails_names_bg_image_url(origin: LocalServer, api: TestClient) -> None:
    missing = api.post(URL, content=road(), headers=JPEG, params={"bg_image_url": origin.url("/none.png")})
    assert missing.status_code == 400, missing.text
    assert missing.json()["errors"][0]["code"] == "failed_image_download"
    assert missing.json()["errors"][0]["parameter"] == "bg_image_url"


def test_an_image_url_is_downloaded_once_and_shared_with_fetch_urls(
    origin: LocalServer, api: TestClient, stub: EllipseSegmenter
) -> None:
    """image_url and bg_image_url go through the store of /image/fetch/: one download per URL (until
    CUTOUT_FETCH_TTL), the same original a fetch URL of that URL renders."""
    origin.routes["/road.jpg"] = answer(200, road(), "image/jpeg")
    url = origin.url("/road.jpg")
    for params in ({}, {"channels": "alpha"}, {"bg_image_url": origin.url("/green.png")}):
        response = api.post(URL, json={"image_url": url, **params})
        assert response.status_code == 200, response.text
    again = api.post(URL, json={"image_url": url, "bg_image_url": origin.url("/green.png"), "shadow": "1"})
    assert again.status_code == 200
    assert origin.paths().count("/road.jpg") == 1 and origin.paths().count("/green.png") == 1
    fetched = api.get(f"/image/fetch/e_background_removal/f_png/{url}")
    assert fetched.status_code in (200, 423)  # rendered from the stored copy: no new download
    assert origin.paths().count("/road.jpg") == 1
    assert stub.calls == 1


def test_crop_margin_takes_commas_or_spaces() -> None:
    """As roi does, and as remove.bg writes it ("10px 20px")."""
    from cutout.api.errors import ApiError
    from cutout.api.options import parse_options, transformation

    for text in ("10,20", "10px 20px", " 10 , 20px "):
        options = parse_options({"crop": "true", "crop_margin": text})
        assert "e_margin:10:20" in transformation(options, 640, 480), text
    with pytest.raises(ApiError, match="1, 2 or 4 values"):
        parse_options({"crop": "true", "crop_margin": "1 2 3"})


def test_an_unknown_parameter_names_the_known_one_it_is_close_to(api: TestClient) -> None:
    """A typo is pointed at; a name like none of them is only refused."""
    said = {}
    for name in ("chanels", "bg_colour", "zzz"):
        response = api.post(URL, data={"public_id": "docs/road", name: "alpha"})
        assert response.status_code == 400
        [error] = response.json()["errors"]
        said[name] = (error["parameter"], error["detail"])
    assert said == {
        "chanels": ("chanels", "unknown parameter 'chanels' (did you mean 'channels'?)"),
        "bg_colour": ("bg_colour", "unknown parameter 'bg_colour' (did you mean 'bg_color'?)"),
        "zzz": ("zzz", "unknown parameter 'zzz'"),
    }
    # A null under a misspelt name (JSON) is refused the same way.
    nulled = api.post(URL, json={"public_id": "docs/road", "webhok_url": None}).json()["errors"][0]
    assert nulled["detail"] == "unknown parameter 'webhok_url' (did you mean 'webhook_url'?)"


def test_a_size_past_the_engines_limit_names_size(api: TestClient) -> None:
    """``size=16385x1`` was the engine's 400 about ``w_16385``, with no ``parameter``: the option the
    client sent is named, with its limit."""
    for size in ("16385x1", "1x20000", "99999x99999"):
        response = api.post("/v1/remove-background", params={"public_id": "docs/road", "size": size})
        assert response.status_code == 400, size
        error = response.json()["errors"][0]
        assert (error["code"], error["parameter"]) == ("invalid_parameter", "size"), error
        assert "16384" in error["detail"] and "w_" not in error["detail"], error
    scaled = api.post("/v1/remove-background", params={"public_id": "docs/road", "size": "16384x16384"})
    assert scaled.status_code == 200 and scaled.headers["x-width"] == "640"


def test_a_fully_transparent_bg_color_is_the_plain_cutout(api: TestClient) -> None:
    """The cut-out over a colour with alpha 0 is the cut-out itself (remove.bg's ``00000000``, rembg's
    ``0,0,0,0``): the same image as without bg_color, where it was the engine's 400 about ``b_rgb:00000000``
    with no ``parameter``."""
    plain = api.post("/v1/remove-background", params={"public_id": "docs/road"})
    assert plain.status_code == 200
    for colour in ("00000000", "#0000", "0,0,0,0", "255,0,0,0.0"):
        response = api.post("/v1/remove-background", params={"public_id": "docs/road", "bg_color": colour})
        assert response.status_code == 200, (colour, response.text[:300])
        assert response.headers["content-type"] == "image/png" and response.content == plain.content, colour
    as_jpeg = api.post("/v1/remove-background", params={"public_id": "docs/road", "bg_color": "0000",
                                                         "format": "jpg"})  # fmt: skip
    assert as_jpeg.status_code == 200 and as_jpeg.headers["content-type"] == "image/jpeg"


def test_size_preview_and_max_megapixels_are_one_or_the_other() -> None:
    """``size=preview`` is ``max_megapixels=0.25``: with both, the one given last won and the other was
    dropped without a word (a 200 of 1 MP for ``size=preview&max_megapixels=1``)."""
    from cutout.api.errors import ApiError
    from cutout.api.options import parse_options

    for fields in ({"size": "preview", "max_megapixels": "1"}, {"max_megapixels": "1", "size": "preview"}):
        with pytest.raises(ApiError, match="size=preview .* or max_megapixels, not both") as caught:
            parse_options(fields)
        assert caught.value.parameter == "max_megapixels"
    for size in ("full", "auto"):  # the original's size, limited: the two agree
        assert parse_options({"size": size, "max_megapixels": "1"}).max_megapixels == 1.0
    assert parse_options({"size": "preview"}).max_megapixels == 0.25


def test_a_json_null_is_an_option_not_given(api: TestClient) -> None:
    """null for an option (an SDK's unset field) was a 400 "must be a string, number or boolean": it is
    the option's default, so the answer is the request's without it."""
    plain = api.post(URL, json={"public_id": "docs/road", "output": "json"}).json()
    nulls = {name: None for name in ("bg_color", "crop", "crop_margin", "size", "max_megapixels", "format",
                                     "shadow", "roi", "async", "webhook_url", "encoding", "image_url")}
    nulled = api.post(URL, json={"public_id": "docs/road", "output": "json", **nulls})
    assert nulled.status_code == 200, nulled.text
    assert {k: v for k, v in nulled.json().items() if k != "image"} == {
        k: v for k, v in plain.items() if k != "image"
    }
    assert nulled.json()["image"] == plain["image"]


@pytest.mark.parametrize(("body", "code", "parameter", "said"), [
    ({"public_id": None}, "missing_source", "public_id", "public_id is null"),
    ({"image_url": None, "crop": True}, "missing_source", "image_url", "image_url is null"),
    ({"public_id": "docs/road", "colour": None}, "invalid_parameter", "colour", "unknown parameter 'colour'"),
    ({"public_id": "docs/road", "crop": [True]}, "invalid_parameter", "crop", "must be a string"),
])  # fmt: skip
def test_a_null_image_or_an_unknown_null_is_a_400_naming_it(
    api: TestClient, body: dict[str, Any], code: str, parameter: str, said: str
) -> None:
    response = api.post(URL, json=body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["parameter"]) == (code, parameter) and said in error["detail"]
