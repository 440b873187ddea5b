"""remove.bg's POST /v1.0/removebg: every documented way to send an image and every option, its error
envelope and statuses, its key header; the ``removebg`` client from PyPI pointed at a live server; and
one real-model run checking pixels."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.adapters.conftest import (
    KEY,
    Live,
    beach,
    check_box,
    check_composite,
    check_mask,
    image,
    native_has,
    photo,
    road,
)
from tests.conftest import require
from tests.fetch.servers import LocalServer

URL = "/v1.0/removebg"
KEYED = {"X-Api-Key": KEY}
B64 = base64.b64encode(road()).decode()
ROI, SHADOW = native_has("roi", "0 0 50% 50%"), native_has("shadow")
BACKGROUND = native_has("bg_image_url", "https://example.org/bg.jpg")


def files() -> dict[str, Any]:
    return {"image_file": ("road.jpg", road(), "image/jpeg")}


#: (case, request keyword arguments, status, (image bands, format) or error code, hints header)
CASES: list[tuple[str, dict[str, Any], int, Any, str | None]] = [
    ("multipart default preview", {"files": files()}, 200, (4, "png"), None),
    ("form b64 full", {"data": {"image_file_b64": B64, "size": "full"}}, 200, (4, "png"), None),
    (
        "json b64 jpg colour",
        {"json": {"image_file_b64": B64, "bg_color": "ff0000", "format": "jpg"}},
        200,
        (3, "jpeg"),
        None,
    ),
    ("alpha channel", {"files": files(), "data": {"channels": "alpha"}}, 200, (1, "png"), None),
    (
        "crop with margin",
        {"files": files(), "data": {"crop": "true", "crop_margin": "10px 5%"}},
        200,
        (4, "png"),
        None,
    ),
    (
        "client defaults",
        {
            "files": files(),
            "data": {
                "size": "regular",
                "type": "auto",
                "type_level": "none",
                "roi": "0 0 100% 100%",
                "scale": "original",
                "position": "original",
                "add_shadow": "false",
                "crop": "false",
                "semitransparency": "true",
                "format": "auto",
                "channels": "rgba",
            },
        },
        200,
        (4, "png"),
        None,
    ),
    (
        "type is a hint",
        {"files": files(), "data": {"type": "car", "semitransparency": "false"}},
        200,
        (4, "png"),
        "type=car, semitransparency=false",
    ),
    ("webp", {"files": files(), "data": {"format": "webp"}}, 200, (4, "webp"), None),
    ("bad size", {"files": files(), "data": {"size": "huge"}}, 400, "invalid_parameter", None),
    ("bad type", {"files": files(), "data": {"type": "boat"}}, 400, "invalid_parameter", None),
    ("scale unsupported", {"files": files(), "data": {"scale": "50%"}}, 400, "invalid_parameter", None),
    (
        "position unsupported",
        {"files": files(), "data": {"position": "center"}},
        400,
        "invalid_parameter",
        None,
    ),
    (
        "margin without crop",
        {"files": files(), "data": {"crop_margin": "10px"}},
        400,
        "invalid_parameter",
        None,
    ),
    ("unknown field", {"files": files(), "data": {"colour": "red"}}, 400, "invalid_parameter", None),
    ("no image", {"data": {"size": "auto"}}, 400, "missing_source", None),
    ("two images", {"files": files(), "data": {"image_file_b64": B64}}, 400, "multiple_sources", None),
    (
        "not an image",
        {"files": {"image_file": ("a.txt", b"hello", "text/plain")}},
        400,
        "invalid_file_type",
        None,
    ),
    ("bad base64", {"data": {"image_file_b64": "%%%"}}, 400, "invalid_parameter", None),
    ("url fetching off", {"data": {"image_url": "https://example.org/a.jpg"}}, 400, "forbidden_url", None),
    (
        "zip without a colour image",
        {"files": files(), "data": {"format": "zip", "channels": "alpha"}},
        400,
        "invalid_parameter",
        None,
    ),
    # Until the HTTP API has them these are refused by name; after, remove.bg's syntax goes through.
    (
        "region of interest",
        {"files": files(), "data": {"roi": "10% 10% 90% 90%"}},
        200 if ROI else 400,
        (4, "png") if ROI else "invalid_parameter",
        None,
    ),
    (
        "shadow",
        {"files": files(), "data": {"add_shadow": "true"}},
        200 if SHADOW else 400,
        (4, "png") if SHADOW else "invalid_parameter",
        None,
    ),
    (
        "background image file",
        {"files": {**files(), "bg_image_file": ("beach.jpg", beach(), "image/jpeg")},
         "data": {"format": "jpg"}},
        200,
        (3, "jpeg"),
        None,
    ),
    (
        "background image url",
        {"data": {"image_file_b64": B64, "bg_image_url": "ORIGIN/bg.jpg", "format": "jpg"}},
        200 if BACKGROUND else 400,
        (3, "jpeg") if BACKGROUND else "invalid_parameter",
        None,
    ),
]


def test_the_native_api_has_every_option_remove_bg_maps_onto_it() -> None:
    """The cases above allow a refusal only while the HTTP API lacks an option; it has them all now, so
    each of them must be served."""
    assert ROI and SHADOW and BACKGROUND


@pytest.mark.parametrize(("case", "kwargs", "status", "expected", "hinted"), CASES, ids=[c[0] for c in CASES])
def test_requests(
    client: TestClient,
    origin: LocalServer,
    case: str,
    kwargs: dict[str, Any],
    status: int,
    expected: Any,
    hinted: str | None,
) -> None:
    if "data" in kwargs:
        kwargs = {
            **kwargs,
            "data": {k: v.replace("ORIGIN", origin.origin) for k, v in kwargs["data"].items()},
        }
    response = client.post(URL, headers=KEYED, **kwargs)
    assert response.status_code == status, response.text
    if status != 200:
        error = response.json()["errors"][0]
        assert error["code"] == expected and error["title"] and error["detail"]
        return
    bands, fmt = expected
    out = image(response.content)
    assert (out.bands, response.headers["content-type"]) == (bands, f"image/{fmt}")
    assert (out.width, out.height) == (int(response.headers["x-width"]), int(response.headers["x-height"]))
    check_box(
        *(int(response.headers[f"x-foreground-{k}"]) for k in ("left", "top", "width", "height")),
        out.width,
        out.height,
    )
    assert response.headers.get("x-cutout-ignored-hints") == hinted
    if "size" not in str(kwargs) or "regular" in str(kwargs):  # the default, preview: 0.25 MP at most
        assert out.width * out.height <= 250_000


def test_a_background_file_that_is_not_a_file(client: TestClient) -> None:
    """bg_image_file as a text field, or in a JSON body, was an "unknown parameter": it is remove.bg's."""
    for kwargs in ({"files": files(), "data": {"bg_image_file": "beach.jpg"}},
                   {"json": {"image_file_b64": B64, "bg_image_file": B64}}):  # fmt: skip
        refused = client.post(URL, headers=KEYED, **kwargs)
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert error["code"] == "invalid_parameter"
        assert error["detail"].startswith("bg_image_file must be a file part of a multipart body")


@pytest.mark.parametrize("field", ["image_url", "bg_image_url"])
def test_a_url_that_fails_is_named(client: TestClient, origin: LocalServer, field: str) -> None:
    """remove.bg's envelope has no parameter: a failed download's detail ("... answered 404 Not Found")
    did not say whether the image or the background failed."""
    sent = {"image_url": origin.url("/missing.jpg")} if field == "image_url" else {
        "image_file_b64": B64, "bg_image_url": origin.url("/missing.jpg")}  # fmt: skip
    refused = client.post(URL, headers=KEYED, data=sent)
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["code"] == "failed_image_download" and error["detail"].startswith(f"{field}: ")


def test_no_image_names_remove_bgs_fields(client: TestClient) -> None:
    refused = client.post(URL, headers=KEYED, data={"size": "auto"})
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["code"] == "missing_source"
    assert error["detail"] == "Send the image as image_file, image_file_b64 or image_url"


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 403), ({"X-Api-Key": "wrong"}, 403), ({"Authorization": f"Bearer {KEY}"}, 200), (KEYED, 200),
])  # fmt: skip
def test_auth(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = client.post(URL, headers=headers, files=files())
    assert response.status_code == status
    if status == 403:
        assert response.json()["errors"][0]["code"] == "auth_failed"


def test_json_answer_and_zip(client: TestClient) -> None:
    answer = client.post(URL, headers={**KEYED, "Accept": "application/json"}, files=files())
    data = answer.json()["data"]
    out = image(base64.b64decode(data["result_b64"]))
    check_box(
        data["foreground_left"],
        data["foreground_top"],
        data["foreground_width"],
        data["foreground_height"],
        out.width,
        out.height,
    )
    packed = client.post(URL, headers=KEYED, files=files(), data={"format": "zip", "bg_color": "blue"})
    assert packed.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(packed.content))
    assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    colour, alpha = image(archive.read("color.jpg")), image(archive.read("alpha.png"))
    assert (colour.bands, alpha.bands) == (3, 1) and (colour.width, colour.height) == (
        alpha.width,
        alpha.height,
    )


def test_chained_with_the_native_api(client: TestClient, stub: Any) -> None:
    """The same image through remove.bg's shape and then the native API: one segmentation."""
    data = image(road()).crop(0, 0, 300, 200).jpegsave_buffer()
    before = stub.calls
    first = client.post(URL, headers=KEYED, files={"image_file": ("a.jpg", data, "image/jpeg")})
    second = client.post(
        "/v1/remove-background", headers={**KEYED, "Content-Type": "image/jpeg"}, content=data
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert stub.calls == before + 1


def test_the_removebg_client(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``removebg`` package as its users call it, only its endpoint constant pointed at cutout."""
    try:
        from removebg import removebg as module
    except ImportError:
        require(False, "the removebg client is not installed (pip install -e '.[test]')")
        raise
    monkeypatch.setattr(module, "API_ENDPOINT", live.url + URL)
    source = tmp_path / "road.jpg"
    source.write_bytes(road())
    client = module.RemoveBg(KEY, str(tmp_path / "errors.log"))
    client.remove_background_from_img_file(str(source))
    written = image((tmp_path / "road.jpg_no_bg.png").read_bytes())
    assert written.bands == 4 and written.width * written.height <= 250_000
    client.remove_background_from_base64_img(
        B64, size="hd", new_file_name=str(tmp_path / "b64.png"), bg_color="green"
    )
    assert image((tmp_path / "b64.png").read_bytes()).bands == 3  # an opaque background: no alpha
    with pytest.raises(Exception, match="403"):
        module.RemoveBg("wrong", str(tmp_path / "errors.log")).remove_background_from_base64_img(B64)


@pytest.mark.parametrize("headers", [KEYED, {"Authorization": f"Bearer {KEY}"}])
def test_the_account_says_in_remove_bgs_shape_that_nothing_is_metered(
    client: TestClient, headers: dict[str, str]
) -> None:
    """remove.bg's clients check the balance before they send images (``credits.total > 0``,
    ``free_calls > 0``): it answered 400, which stopped them. Nothing is metered: a large constant."""
    answer = client.get("/v1.0/account", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    attributes = answer.json()["data"]["attributes"]
    credits, api = attributes["credits"], attributes["api"]
    assert set(credits) == {"total", "subscription", "payg", "enterprise"}
    assert set(api) == {"free_calls", "sizes"}
    assert credits["total"] == credits["subscription"] + credits["payg"] + credits["enterprise"]
    assert credits["total"] > 0 and api["free_calls"] > 0 and api["sizes"] == "all"
    client.post(URL, headers=KEYED, files=files())  # charges nothing: the balance does not move
    assert client.get("/v1.0/account", headers=headers).json() == answer.json()


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong"}])
def test_the_account_needs_the_key_as_the_other_routes(client: TestClient, headers: dict[str, str]) -> None:
    refused = client.get("/v1.0/account", headers=headers)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "auth_failed"


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    source = image(photo())
    sent = {"image_file": ("dog.jpg", photo(), "image/jpeg")}
    mask = httpx.post(
        real.url + URL, headers=KEYED, files=sent, data={"channels": "alpha", "size": "full"}, timeout=300
    )
    assert mask.status_code == 200, mask.text
    check_mask(mask.content, source.width, source.height)
    composite = httpx.post(
        real.url + URL, headers=KEYED, files=sent, timeout=300, data={"bg_color": "00ff00", "size": "full"}
    )
    check_composite(composite.content, (0, 255, 0))
    check_box(
        *(int(composite.headers[f"x-foreground-{k}"]) for k in ("left", "top", "width", "height")),
        source.width,
        source.height,
    )


def test_the_documented_samples(live: Live, tmp_path: Path) -> None:
    """remove.bg's own curl and Python (requests) samples, as its API page writes them, with the host
    replaced by the live server and the key by a valid one."""
    require(shutil.which("curl") is not None, "curl is not installed")
    (tmp_path / "file.jpg").write_bytes(road())
    host, endpoint = "https://api.remove.bg", live.url
    command = (
        "curl -H 'X-API-Key: INSERT_YOUR_API_KEY_HERE' -F 'image_file=@/path/to/file.jpg' -F 'size=auto' "
        "-f https://api.remove.bg/v1.0/removebg -o no-bg.png"
    )
    command = command.replace(host, endpoint).replace("INSERT_YOUR_API_KEY_HERE", KEY)
    subprocess.run(["bash", "-c", command.replace("/path/to/", "")], cwd=tmp_path, check=True, timeout=60)
    assert image((tmp_path / "no-bg.png").read_bytes()).bands == 4
    import requests

    with open(tmp_path / "file.jpg", "rb") as photo_file:
        response = requests.post(
            f"{endpoint}/v1.0/removebg",
            files={"image_file": photo_file},
            data={"size": "auto"},
            headers={"X-Api-Key": KEY},
            timeout=60,
        )
    assert response.status_code == requests.codes.ok
    assert image(response.content).bands == 4


def test_rate_limited(limited: TestClient) -> None:
    assert limited.post(URL, headers=KEYED, files=files()).status_code == 200
    again = limited.post(URL, headers=KEYED, files=files())
    assert (again.status_code, again.json()["errors"][0]["code"]) == (429, "rate_limited")
    assert int(again.headers["retry-after"]) > 0


def test_no_model_and_a_slow_result(modelless: TestClient, tmp_path: Path) -> None:
    none = modelless.post(URL, headers=KEYED, files=files())
    assert (none.status_code, none.json()["errors"][0]["code"]) == (503, "model_unavailable")
    from cutout.app import create_app
    from tests.adapters.conftest import settings_in
    from tests.app.helpers import EllipseSegmenter

    slow = EllipseSegmenter(delay=1.0)
    app = create_app(settings_in(tmp_path, api_wait_seconds=0.1), segmenter=slow, load_model=False)
    with TestClient(app) as client:
        waited = client.post(URL, headers=KEYED, files=files())
        assert waited.status_code == 503 and waited.headers["retry-after"]  # no task to hand back
        deadline = time.monotonic() + 30  # the job went on: a retry finds it (and its box's mask)
        while (retry := client.post(URL, headers=KEYED, files=files())).status_code == 503:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert retry.status_code == 200 and slow.calls == 1


def test_nothing_to_cut_out(client: TestClient, answered: list[bool]) -> None:
    """An image with no foreground (the stand-in finds none in one pixel) is remove.bg's 400
    ``unknown_foreground``, its body as remove.bg sends it, in every answer form, and on a repeat too
    (which the ASGI front would otherwise answer from memory: it hands it to the route)."""
    pixel = image(road()).crop(0, 0, 1, 1).pngsave_buffer()
    expected = {"errors": [{
        "title": "Could not identify foreground in image. For details and recommendations see "
                 "https://www.remove.bg/supported-images.",
        "code": "unknown_foreground",
    }]}  # fmt: skip
    sent = {"image_file": ("dot.png", pixel, "image/png")}
    for headers, data in (({}, {}), ({}, {}), ({"Accept": "application/json"}, {}), ({}, {"format": "zip"}),
                          ({}, {"channels": "alpha"})):  # fmt: skip
        response = client.post(URL, headers={**KEYED, **headers}, files=sent, data=data)
        assert (response.status_code, response.json()) == (400, expected), (headers, data)
    assert not any(answered)


def test_zip_colours_recombine_with_the_alpha_into_the_cut_out(client: TestClient) -> None:
    """color.jpg is the cut-out's foreground colours, opaque (not flattened on white): color x alpha
    gives the PNG cut-out back at the soft edges (the preview's downscale softens the stand-in's mask),
    within JPEG's error, with no light fringe."""
    import numpy as np

    cut = client.post(URL, headers=KEYED, files=files())
    packed = client.post(URL, headers=KEYED, files=files(), data={"format": "zip"})
    assert (cut.status_code, packed.status_code) == (200, 200)
    archive = zipfile.ZipFile(io.BytesIO(packed.content))
    colour = image(archive.read("color.jpg")).numpy().astype(float)
    alpha = image(archive.read("alpha.png")).numpy().astype(float) / 255
    rgba = image(cut.content).numpy().astype(float)
    assert colour.shape == rgba[..., :3].shape and np.array_equal(alpha, rgba[..., 3] / 255)
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert soft.sum() > 50  # the edges this is about
    recombined, expected = colour * alpha[..., None], rgba[..., :3] * alpha[..., None]
    assert np.abs(recombined - expected)[soft].mean() < 4
    assert (recombined - expected)[soft].mean() < 2  # no fringe: not lighter on average


@pytest.mark.parametrize(("sent", "clamped"), [
    ("600px", "500px"), ("4000px", "500px"), ("80%", "50%"), ("700", "500"), ("10px 90%", "10px,50%"),
    ("500px 50%", "500px,50%"), ("1" + "0" * 5000 + "px", "500px"), ("ten", "ten"),
])  # fmt: skip
def test_crop_margin_is_clamped_as_remove_bg_clamps_it(sent: str, clamped: str) -> None:
    from cutout.adapters.removebg import clamped_margin

    assert clamped_margin(sent) == clamped


def test_a_crop_margin_past_remove_bgs_bounds_is_clamped_not_refused(client: TestClient) -> None:
    """remove.bg: "The maximum margin that can be added on each side is 50% of the subject dimensions or
    500 pixels". 4000px was cutout's 400 (the result too large), 80% a larger margin than remove.bg's."""
    sizes = {}
    for margin in ("500px", "4000px", "50%", "80%"):
        sent = {"image_file_b64": B64, "size": "full", "crop": "true", "crop_margin": margin}
        response = client.post(URL, headers=KEYED, data=sent)
        assert response.status_code == 200, response.text
        sizes[margin] = (response.headers["x-width"], response.headers["x-height"])
    assert sizes["4000px"] == sizes["500px"] and sizes["80%"] == sizes["50%"]
    bad = {"image_file_b64": B64, "crop": "true", "crop_margin": "ten"}
    refused = client.post(URL, headers=KEYED, data=bad)
    assert refused.status_code == 400 and "crop_margin" in refused.json()["errors"][0]["detail"]


def test_a_json_null_is_a_field_not_given(client: TestClient) -> None:
    """remove.bg's generated clients send null for an optional field they do not set: it is the field's
    default (size preview, format auto...), where it was a 400 "must be a string, number or boolean".
    shadow_type is refused with a value, but null asks for nothing."""
    nulls = {name: None for name in ("size", "type", "type_level", "format", "roi", "crop", "crop_margin",
                                     "scale", "position", "channels", "add_shadow", "semitransparency",
                                     "bg_color", "bg_image_url", "shadow_type", "shadow_opacity")}
    response = client.post(URL, headers=KEYED, json={"image_file_b64": B64, **nulls})
    assert response.status_code == 200, response.text
    assert int(response.headers["x-width"]) * int(response.headers["x-height"]) <= 250_000  # preview
    assert "x-cutout-ignored-hints" not in response.headers
    for body, said in (({"image_url": None}, "image_url is null"),
                       ({"image_file_b64": B64, "sizee": None}, "unknown parameter 'sizee'")):  # fmt: skip
        refused = client.post(URL, headers=KEYED, json=body)
        assert refused.status_code == 400
        assert said in refused.json()["errors"][0]["detail"]


def test_a_misspelt_field_names_the_one_it_is_close_to(client: TestClient) -> None:
    """As the native API does (cutout.api.errors.unknown_parameter), with remove.bg's own field names."""
    refused = client.post(URL, headers=KEYED, data={"image_file_b64": B64, "bg_colour": "red"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["detail"] == "unknown parameter 'bg_colour' (did you mean 'bg_color'?)"
