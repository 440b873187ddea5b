"""POST /v1/remove-background end to end over HTTP with the ellipse segmenter: every input form, every
option, and the model run once per image whichever way it comes (the API and delivery URLs included)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.api.conftest import finished, noise_png, road
from tests.app.helpers import ClientFactory, EllipseSegmenter, wait_for_200
from tests.fetch.servers import LocalServer, answer, serving

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}


def image(response_content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(response_content, "")


def uploads(settings: Settings) -> list[Path]:
    # Kept in a bounded folder beside the originals' records (cache/transient.py), made with its first.
    folder = Path(settings.originals) / ".cutout" / "transient" / "api-uploads"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def origin(  # list it before ``api``: the app reads the fetch policy when it starts
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LocalServer]:
    """An image server on 127.0.0.2, the one private address the fetch policy lets through."""
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW", "*")
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    with serving("127.0.0.2") as server:
        server.routes["/road.jpg"] = answer(200, road(), "image/jpeg")
        server.routes["/page"] = answer(200, b"<html></html>", "text/html")
        yield server


def test_raw_body_gives_the_cutout_with_its_description_in_headers(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    out = image(response.content)
    assert (out.width, out.height, out.bands) == (640, 427, 4)
    assert response.headers["x-width"] == "640" and response.headers["x-height"] == "427"
    assert response.headers["x-confidence"] == "0.9"
    # The ellipse covers 80 % of each side, centred: the box lies inside the image and matches it.
    left, top = int(response.headers["x-foreground-left"]), int(response.headers["x-foreground-top"])
    width, height = int(response.headers["x-foreground-width"]), int(response.headers["x-foreground-height"])
    assert abs(left - 64) <= 2 and abs(top - 43) <= 2 and abs(width - 512) <= 3 and abs(height - 342) <= 3
    assert out.extract_band(3).getpoint(2, 2)[0] == 0 and out.extract_band(3).getpoint(320, 213)[0] == 255


def test_every_input_form_is_the_same_image_stored_once_and_segmented_once(
    origin: LocalServer, api: TestClient, api_settings: Settings, stub: EllipseSegmenter
) -> None:
    data = road()
    encoded = base64.b64encode(data).decode()
    answers = [
        api.post(URL, content=data, headers={"Content-Type": "application/octet-stream"}),
        api.post(URL, files={"image_file": ("road.jpg", data, "image/jpeg")}),
        api.post(URL, data={"image_file_b64": encoded}),
        api.post(URL, json={"image_file_b64": "data:image/jpeg;base64," + encoded}),
        api.post(URL, json={"image_url": origin.url("/road.jpg")}),
    ]
    bodies = {a.content for a in answers if a.status_code == 200}
    assert [a.status_code for a in answers] == [200] * 5
    assert len(bodies) == 1
    assert stub.calls == 1
    assert len(uploads(api_settings)) == 1


def test_public_id_and_the_delivery_url_share_one_mask(api: TestClient, stub: EllipseSegmenter) -> None:
    response = api.post(URL, json={"public_id": "docs/road"})
    assert response.status_code == 200, response.text
    delivered = wait_for_200(api, "/image/upload/e_background_removal/docs/road.png")
    assert delivered.status_code == 200
    assert delivered.content == response.content
    assert stub.calls == 1


def test_an_upload_of_a_stored_original_reuses_its_mask(api: TestClient, stub: EllipseSegmenter) -> None:
    assert wait_for_200(api, "/image/upload/e_background_removal/docs/road.png").status_code == 200
    assert api.post(URL, content=road(), headers=JPEG).status_code == 200
    assert stub.calls == 1


def test_alpha_is_one_band_the_size_of_the_input(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"channels": "alpha"})
    assert response.status_code == 200, response.text
    out = image(response.content)
    assert (out.width, out.height, out.bands) == (640, 427, 1)
    assert out.getpoint(0, 0) == [0.0] and out.getpoint(320, 213) == [255.0]


def test_bg_color_fills_the_background_and_auto_picks_jpeg(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"bg_color": "#ff0000"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    red = image(response.content).getpoint(2, 2)
    assert red[0] > 240 and red[1] < 20 and red[2] < 20


@pytest.mark.parametrize("colour", ["ff0000", "red", "255,0,0", "255,0,0,1.0", "255,0,0,255", "#f00f"])
def test_bg_color_spellings(api: TestClient, colour: str) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"bg_color": colour, "format": "png"})
    assert response.status_code == 200, response.text
    assert image(response.content).getpoint(2, 2) in ([255.0, 0.0, 0.0], [255.0, 0.0, 0.0, 255.0])  # opaque


@pytest.mark.parametrize("colour", ["255,0,0,0.5", "255,0,0,128", "ff000080"])
def test_bg_color_alpha_scales(api: TestClient, colour: str) -> None:
    """r,g,b,a: with a decimal point a fraction (CSS's rgba), without one 0-255 (as the 8-digit hex)."""
    response = api.post(URL, content=road(), headers=JPEG, params={"bg_color": colour, "format": "png"})
    assert response.status_code == 200, response.text
    assert image(response.content).getpoint(2, 2) == [255.0, 0.0, 0.0, 128.0]


@pytest.mark.parametrize(
    ("colour", "words"),
    [
        ("255,0,0,1", "bg_color alpha 1 is ambiguous (opaque as a fraction, 1/255 as a whole number)"),
        ("255,0,0,01", "bg_color alpha 1 is ambiguous"),
        ("255,0,0,127.5", "bg_color alpha '127.5' has a decimal point, so it is a fraction from 0.0 to 1.0"),
    ],
)
def test_an_ambiguous_bg_color_alpha_is_a_400(api: TestClient, colour: str, words: str) -> None:
    # It was 1/255 (nearly transparent) for "1", where CSS's rgba means opaque.
    response = api.post(URL, content=road(), headers=JPEG, params={"bg_color": colour})
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["parameter"] == "bg_color" and words in error["detail"]


def test_crop_to_the_foreground_with_a_margin(api: TestClient) -> None:
    cropped = api.post(URL, content=road(), headers=JPEG, params={"crop": "true"})
    margin = api.post(URL, content=road(), headers=JPEG, params={"crop": "true", "crop_margin": "10"})
    assert cropped.status_code == margin.status_code == 200
    inner = image(cropped.content)
    outer = image(margin.content)
    assert (outer.width, outer.height) == (inner.width + 20, inner.height + 20)
    assert margin.headers["x-foreground-left"] == "10" and margin.headers["x-foreground-top"] == "10"
    assert abs(inner.width - 512) <= 3


def test_a_margin_past_the_output_limit_is_a_413_naming_crop_margin(make_api: ClientFactory) -> None:
    """The render's 413 names crop_margin (never the e_margin the caller did not write), the size it would
    make and the limit; a task's error says the same. A delivery URL's e_margin names e_margin."""
    api = make_api(max_pixels=300_000)
    wanted = "crop_margin makes the result too large: 1111x942 pixels (1.0 megapixels); the limit is 0.300"
    params = {"crop": "true", "crop_margin": "300"}
    response = api.post(URL, content=road(), headers=JPEG, params=params)
    assert response.status_code == 413, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "resolution_too_high" and error["parameter"] == "crop_margin"
    assert error["detail"].startswith(wanted)
    queued = api.post(URL, content=road(), headers=JPEG, params={**params, "async": "1"})
    task = finished(api, queued.headers["location"])
    assert task["error"]["code"] == "resolution_too_high" and task["error"]["message"].startswith(wanted)
    url = api.get("/image/upload/e_margin:300/docs/road.png")
    assert url.status_code == 413
    assert url.headers["x-cld-error"] == (
        "Result of e_margin:300 is too large: 1240x1027 pixels (1.3 megapixels); "
        "the limit is 0.300 megapixels"
    )


def test_size_and_max_megapixels_scale_down(api: TestClient) -> None:
    boxed = api.post(URL, content=road(), headers=JPEG, params={"size": "320x320"})
    assert (int(boxed.headers["x-width"]), int(boxed.headers["x-height"])) == (320, 214)
    small = api.post(URL, content=road(), headers=JPEG, params={"max_megapixels": "0.1"})
    assert int(small.headers["x-width"]) * int(small.headers["x-height"]) <= 100_000
    preview = api.post(URL, content=road(), headers=JPEG, params={"size": "preview"})
    assert int(preview.headers["x-width"]) * int(preview.headers["x-height"]) <= 250_000


def test_format_webp(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"format": "webp"})
    assert response.headers["content-type"] == "image/webp"


def test_an_animated_gif_is_cut_out_on_its_first_frame(api: TestClient) -> None:
    """As the hosted APIs do; a WebP result, which could hold an animation, too (the engine refuses a
    background removed on every frame)."""
    from tests.transform.transform_helpers import animation

    for fmt, kind in (("webp", "image/webp"), ("png", "image/png")):
        response = api.post(URL, content=animation("gif"), headers={"Content-Type": "image/gif"},
                            params={"format": fmt})  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == kind
        out = image(response.content)
        assert (out.width, out.height, out.bands, out.get_typeof("n-pages") and out.get("n-pages")) in (
            (160, 100, 4, 1),
            (160, 100, 4, 0),
        )


@pytest.mark.parametrize("encoding", ["base64", "data_uri"])
def test_json_output(api: TestClient, encoding: str) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"output": "json", "encoding": encoding})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("width", "height", "format", "confidence")} == {
        "width": 640, "height": 427, "format": "png", "confidence": 0.9,
    }  # fmt: skip
    text = body["image"]
    if encoding == "data_uri":
        assert text.startswith("data:image/png;base64,")
        text = text.partition(",")[2]
    data = base64.b64decode(text)
    assert body["bytes"] == len(data)
    assert set(body["foreground"]) == {"left", "top", "width", "height"}
    assert 0 < body["box"]["width"] <= 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channels", "rgb"),
        ("fine_edges", "maybe"),
        ("bg_color", "reddish"),
        ("bg_color", "300,0,0"),
        ("crop", "2"),
        ("crop_margin", "-5"),
        ("size", "huge"),
        ("max_megapixels", "0"),
        ("max_megapixels", "nan"),
        ("format", "gif"),
        ("output", "xml"),
        ("encoding", "hex"),
        ("async", "soon"),
        ("shadow", "azimuth_400"),
        ("shadow", "maybe"),
        ("roi", "1 2 3"),
        ("roi", "50 0 10 100"),
        ("roi", "0 0 101% 100%"),
        ("roi", "0 0 10em 10"),
        ("roi", "700 0 800 100"),  # outside the 640x427 image
        ("bg_image_url", ""),
        ("bg_image_file", "%%%not base64"),
        ("colour", "red"),
    ],
)
def test_a_bad_option_is_a_400_naming_it(api: TestClient, field: str, value: str) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={field: value})
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "invalid_parameter"
    assert error["parameter"] == field
    assert error["title"] and error["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"crop_margin": "10"},  # without crop
        {"channels": "alpha", "bg_color": "red"},
        {"channels": "alpha", "format": "jpg"},
        {"encoding": "base64"},  # without output=json
    ],
)
def test_options_that_do_not_go_together(api: TestClient, params: dict[str, str]) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params=params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_parameter"


def test_no_image_and_two_images(api: TestClient) -> None:
    missing = api.post(URL, json={"channels": "alpha"})
    assert missing.status_code == 400 and missing.json()["errors"][0]["code"] == "missing_source"
    two = api.post(URL, content=road(), headers=JPEG, params={"public_id": "docs/road"})
    assert two.status_code == 400 and two.json()["errors"][0]["code"] == "multiple_sources"


def test_image_file_as_text_is_refused_not_passed_over(api: TestClient) -> None:
    """image_file as a text field (a form field, a JSON string, the query) was read as no image at all: with
    another image, the answer was that one's cut-out; alone, "No image given"."""
    text = base64.b64encode(road()).decode()
    for kwargs in (
        {"data": {"image_file": text, "public_id": "docs/road"}},
        {"json": {"image_file": text, "public_id": "docs/road"}},
        {"json": {"image_file": text}},
        {"params": {"image_file": "x"}, "content": road(), "headers": JPEG},
    ):
        response = api.post(URL, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 400, (kwargs.keys(), response.text)
        error = response.json()["errors"][0]
        assert (error["code"], error["parameter"]) == ("invalid_parameter", "image_file")
        assert "image_file_b64" in error["detail"]
    assert api.post(URL, files={"image_file": ("road.jpg", road(), "image/jpeg")}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "invalid_file_type"),
        ({"content": b"not an image at all", "headers": JPEG}, 415, "invalid_file_type"),
        ({"content": b"\xff\xd8\xff" + b"\x00" * 100, "headers": JPEG}, 422, "failed_to_read_image"),
        ({"json": {"image_file_b64": "%%%not base64"}}, 400, "invalid_parameter"),
        ({"json": {"image_file_b64": "data:image/png,abc"}}, 400, "invalid_parameter"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400, "invalid_body"),
        ({"json": {"public_id": "docs/nothing"}}, 404, "not_found"),
        ({"json": {"public_id": "../etc/passwd"}}, 404, "not_found"),
        ({"json": {"image_url": "file:///etc/passwd"}}, 403, "forbidden_url"),
    ],
)
def test_bad_input_is_a_clear_error(
    api: TestClient, kwargs: dict[str, object], status: int, code: str
) -> None:
    response = api.post(URL, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code


def test_image_url_that_is_not_an_image(origin: LocalServer, api: TestClient) -> None:
    response = api.post(URL, json={"image_url": origin.url("/page")})
    assert response.status_code == 415
    assert response.json()["errors"][0]["parameter"] == "image_url"


def test_the_api_is_off_without_keys_or_open(make_api: ClientFactory) -> None:
    off = make_api(api_keys=())
    assert off.post(URL, content=road(), headers=JPEG).status_code == 404
    opened = make_api(api_keys=(), api_open=True)
    assert opened.post(URL, content=road(), headers=JPEG).status_code == 200


def test_no_model_is_501_and_nothing_is_stored(make_api: ClientFactory, api_settings: Settings) -> None:
    client = make_api(segmenter=None)
    response = client.post(URL, content=road(), headers=JPEG)
    assert response.status_code == 501
    assert response.json()["errors"][0]["code"] == "model_unavailable"
    assert uploads(api_settings) == []


def test_the_same_image_sent_at_once_many_times(api: TestClient, stub: EllipseSegmenter) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: api.post(URL, content=road(), headers=JPEG), range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers if a.status_code != 200]
    assert len({a.content for a in answers}) == 1
    assert stub.calls == 1


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 50), (3, 3)])
@pytest.mark.parametrize(
    "params", [{}, {"crop": "1"}, {"channels": "alpha"}, {"bg_color": "red", "crop": "1"}]
)
def test_tiny_images(api: TestClient, size: tuple[int, int], params: dict[str, str]) -> None:
    data = pyvips.Image.black(*size).new_from_image([10, 20, 30]).pngsave_buffer()
    response = api.post(URL, content=data, headers={"Content-Type": "image/png"}, params=params)
    assert response.status_code == 200, response.text
    box = [int(response.headers[f"x-foreground-{k}"]) for k in ("left", "top", "width", "height")]
    assert box[0] + box[2] <= int(response.headers["x-width"])
    assert box[1] + box[3] <= int(response.headers["x-height"])


def test_sent_images_live_in_a_bounded_store(make_api: ClientFactory, api_settings: Settings) -> None:
    """api-uploads/<sha256> is kept in a folder of the cache bounded by CUTOUT_API_UPLOAD_CACHE, least
    recently used out first, not among the originals for ever: a dropped one is a 404 (its delivery URL
    too) until it is sent again."""
    client = make_api(api_upload_cache=1 << 20)
    first, second = noise_png(1), noise_png(2)
    params = {"output": "json", "encoding": "url", "format": "png"}
    url = client.post(URL, content=first, headers=PNG, params=params).json()["image"]
    assert len(uploads(api_settings)) == 1
    assert client.post(URL, content=second, headers=PNG).status_code == 200
    assert len(uploads(api_settings)) == 1  # the first was dropped to make room
    public_id = "api-uploads/" + hashlib.sha256(first).hexdigest()
    gone = client.post(URL, data={"public_id": public_id})
    assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "not_found"
    assert client.get(url.split("testserver", 1)[1]).status_code == 404
    assert client.post(URL, content=first, headers=PNG).status_code == 200  # sent again: kept again
    assert client.post(URL, data={"public_id": public_id}).status_code == 200
    assert api_settings.originals is not None and not (api_settings.originals / "api-uploads").exists()
