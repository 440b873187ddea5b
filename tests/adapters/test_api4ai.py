"""API4AI (seed 001): version, modes and results for every mode and source, the 200 + ``failure`` answers
for bad images, the 413 and 422 errors, X-RapidAPI-Key, the seed's own curl commands run as written
against a live server (only the host changed), and one real-model run checking pixels."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.adapters.api4ai import modes
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

URL = "/v1/results"
KEYED = {"X-RapidAPI-Key": KEY}
SHADOW = "fg-image-shadow" in modes()
BACKGROUND = native_has("bg_image_url", "https://example.org/bg.jpg")


def big() -> bytes:
    return pyvips.Image.black(4100, 20).jpegsave_buffer()


def webp() -> bytes:
    return image(road()).webpsave_buffer()


def img(data: bytes | None = None, name: str = "img.jpg", kind: str = "image/jpeg") -> dict[str, Any]:
    return {"image": (name, road() if data is None else data, kind)}


#: (case, query, files, data, status, (result code, entity name, bands) or the error text)
CASES: list[tuple[str, dict[str, str], dict[str, Any], dict[str, str], int, Any]] = [
    ("default mode", {}, img(), {}, 200, ("ok", "general-fg-image", 4)),
    ("fg-mask", {"mode": "fg-mask"}, img(), {}, 200, ("ok", "general-fg-mask", 1)),
    (
        "fg-image-shadow",
        {"mode": "fg-image-shadow"},
        img(),
        {},
        200 if SHADOW else 422,
        ("ok", "general-fg-image-shadow", 4) if SHADOW else "shadow",
    ),
    ("url", {}, {}, {"url": "ORIGIN/road.jpg"}, 200, ("ok", "general-fg-image", 4)),
    (
        "png in",
        {},
        img(image(road()).pngsave_buffer(), "a.png", "image/png"),
        {},
        200,
        ("ok", "general-fg-image", 4),
    ),
    (
        "webp is not accepted",
        {},
        img(webp(), "a.webp", "image/webp"),
        {},
        200,
        ("failure", "Can not load image.", 0),
    ),
    (
        "text is not an image",
        {},
        img(b"hello", "file.txt", "text/plain"),
        {},
        200,
        ("failure", "Can not load image.", 0),
    ),
    ("corrupt jpeg", {}, img(road()[:400]), {}, 200, ("failure", "Can not load image.", 0)),
    (
        "too large a resolution",
        {},
        img(big(), "24mpx.jpg"),
        {},
        200,
        ("failure", "Resolution is too big: 4100x20. Max allowed resolution: 4096x4096.", 0),
    ),
    ("url not an image", {}, {}, {"url": "ORIGIN/text.txt"}, 200, ("failure", "Can not load image.", 0)),
    (
        "mask ignores a background",
        {"mode": "fg-mask"},
        {**img(), "image-bg": ("bg.jpg", beach(), "image/jpeg")},
        {},
        200,
        ("ok", "general-fg-mask", 1),
    ),
    ("missing image", {}, {}, {}, 422, "Missing image or url field."),
    ("both image and url", {}, img(), {"url": "ORIGIN/road.jpg"}, 422, "not both"),
    ("unknown mode", {"mode": "fg"}, img(), {}, 422, "mode must be one of"),
    ("unknown field", {}, img(), {"size": "1"}, 422, "unknown field"),
    # Until the HTTP API has background images these are refused by name (422), after, composed.
    (
        "url background",
        {},
        img(),
        {"url-bg": "ORIGIN/bg.jpg"},
        200 if BACKGROUND else 422,
        ("ok", "general-fg-image", None) if BACKGROUND else "bg_image_url",
    ),
    (
        "file background",
        {},
        {**img(), "image-bg": ("bg.jpg", beach(), "image/jpeg")},
        {},
        200 if BACKGROUND else 422,
        ("ok", "general-fg-image", None) if BACKGROUND else "bg_public_id",
    ),
]


@pytest.mark.parametrize(("case", "query", "files", "data", "status", "expected"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_results(
    client: TestClient,
    origin: LocalServer,
    case: str,
    query: dict[str, str],
    files: dict[str, Any],
    data: dict[str, str],
    status: int,
    expected: Any,
) -> None:
    data = {k: v.replace("ORIGIN", origin.origin) for k, v in data.items()}
    response = client.post(URL, headers=KEYED, params=query, files=files or None, data=data or None)
    assert response.status_code == status, response.text
    if status != 200:
        assert expected in response.json()["detail"]
        return
    result = response.json()["results"][0]
    code, name, bands = expected
    assert result["status"]["code"] == code
    sent = files["image"][1] if files else None
    if sent is not None:
        assert result["md5"] == __import__("hashlib").md5(sent).hexdigest()
        assert result["name"] == files["image"][0]
    if code == "failure":
        assert result["status"]["message"].startswith(name) and result["entities"] == []
        return
    picture, objects = result["entities"]
    assert (picture["name"], picture["format"], picture["representation"]) == (name, "PNG", "base64")
    out = image(base64.b64decode(picture["image"]))
    assert (out.width, out.height) == (result["width"], result["height"])
    assert bands is None or out.bands == bands  # None: a background image, composed as the API does
    [found] = objects["objects"]
    check_box(*found["box"], 1.0, 1.0)
    assert found["entities"][0]["classes"] == {"opaque-content": 1}
    ignored = "image-bg" if "image-bg" in files and query.get("mode") == "fg-mask" else None
    assert response.headers.get("x-cutout-ignored-hints") == ignored


def test_the_native_api_has_the_background_and_shadow_api4ai_maps_onto_it(client: TestClient) -> None:
    """The cases above allow a refusal only while the HTTP API lacked background images; it has them now."""
    assert BACKGROUND
    assert "fg-image-shadow" in client.get("/v1/modes", headers=KEYED).json()


def test_version_modes_and_keys(client: TestClient) -> None:
    assert client.get("/v1/version", headers=KEYED).text == "v1.3.0"
    assert client.get("/v1/modes", headers=KEYED).json() == modes()
    assert {"fg-image", "fg-mask"} <= set(modes())
    for headers in ({}, {"X-RapidAPI-Key": "wrong"}):
        refused = client.post(URL, headers=headers, files=img())
        assert refused.status_code == 401 and refused.json()["message"]
    assert client.get("/v1/modes", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    # The native API's routes next to these are untouched.
    assert (
        client.get("/v1/tasks/tsk_none", headers={"X-Api-Key": KEY}).json()["errors"][0]["code"]
        == "not_found"
    )


def test_mode_twice_is_refused(client: TestClient) -> None:
    """mode=fg-image&mode=fg-mask answered the mask: the first mode was dropped unseen."""
    response = client.post(f"{URL}?mode=fg-image&mode=fg-mask", headers=KEYED, files=img())
    assert response.status_code == 422 and response.json()["detail"] == "mode is given more than once"


@pytest.mark.parametrize("url", ["http://[::1", "http://[example.com]/a.jpg"])
def test_a_url_that_does_not_parse(client: TestClient, url: str) -> None:
    """urlsplit raises on an unclosed IPv6 bracket: naming the result after the URL's file was a 500."""
    response = client.post(URL, headers=KEYED, data={"url": url})
    assert response.status_code == 422 and "URL" in response.json()["detail"]


@pytest.mark.parametrize("background", ["image-bg", "url-bg"])
def test_a_background_that_cannot_be_loaded_is_named_as_the_background(
    client: TestClient, origin: LocalServer, background: str
) -> None:
    """A bad background was "Can not load image." (read as the image's own fault), and an image-bg's
    failure was reported under the background's file name and md5, not the image's."""
    if background == "image-bg":
        sent = {"files": {**img(), "image-bg": ("bg.txt", b"not an image", "text/plain")}}
    else:
        sent = {"files": img(), "data": {"url-bg": origin.url("/text.txt")}}
    response = client.post(URL, headers=KEYED, **sent)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["status"]["code"], result["name"]) == ("failure", "img.jpg")
    assert result["md5"] == hashlib.md5(road(), usedforsecurity=False).hexdigest()
    assert result["status"]["message"].startswith(f"Can not load background image ({background}).")


def test_request_too_large(client: TestClient) -> None:
    response = client.post(URL, headers={**KEYED, "Content-Length": str(33 * 1024 * 1024)}, content=b"x")
    assert response.status_code == 413 and "Request Entity Too Large" in response.text


def test_chained_mask_after_image(client: TestClient, stub: Any) -> None:
    data = image(road()).crop(5, 5, 300, 300).jpegsave_buffer()
    before = stub.calls
    first = client.post(URL, headers=KEYED, files=img(data)).json()["results"][0]
    second = client.post(URL, headers=KEYED, files=img(data), params={"mode": "fg-mask"}).json()["results"][0]
    assert stub.calls == before + 1
    assert first["entities"][1] == second["entities"][1]  # the same box


def test_the_seeds_curl_commands(live: Live, origin: LocalServer, tmp_path: Path) -> None:
    """The seed's examples as written, with the RapidAPI host replaced by the live server."""
    require(shutil.which("curl") is not None, "curl is not installed")
    (tmp_path / "img.jpg").write_bytes(road())
    (tmp_path / "bg.png").write_bytes(image(beach()).pngsave_buffer())
    host = "https://background-removal4.p.rapidapi.com"
    commands = [
        f"curl -X 'GET' '{host}/v1/version' -H 'X-RapidAPI-Key: ...'",
        f"curl -X 'GET' '{host}/v1/modes' -H 'X-RapidAPI-Key: ...'",
        f"curl -X 'POST' '{host}/v1/results' -H 'X-RapidAPI-Key: ...' -F 'image=@img.jpg'",
        f"curl -X 'POST' '{host}/v1/results?mode=fg-mask' -H 'X-RapidAPI-Key: ...' -F 'image=@img.jpg'",
        f"curl -X 'POST' '{host}/v1/results' -H 'X-RapidAPI-Key: ...' -F 'url={origin.url('/road.jpg')}'",
    ]
    answers = []
    for command in commands:
        command = command.replace(host, live.url).replace("X-RapidAPI-Key: ...", f"X-RapidAPI-Key: {KEY}")
        done = subprocess.run(["bash", "-c", command + " -s -S -f"], cwd=tmp_path, capture_output=True,
                              timeout=60, check=True)  # fmt: skip
        answers.append(done.stdout)
    assert answers[0] == b"v1.3.0"
    assert json.loads(answers[1]) == modes()
    for answer in answers[2:]:
        assert json.loads(answer)["results"][0]["status"] == {"code": "ok", "message": "Success"}


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    source = image(photo())
    sent = {"image": ("dog.jpg", photo(), "image/jpeg")}
    mask = httpx.post(real.url + URL, headers=KEYED, files=sent, params={"mode": "fg-mask"}, timeout=300)
    result = mask.json()["results"][0]
    picture, objects = result["entities"]
    check_mask(base64.b64decode(picture["image"]), source.width, source.height)
    check_box(*objects["objects"][0]["box"], 1.0, 1.0)
    solid = pyvips.Image.black(64, 64).new_from_image([255, 0, 255]).copy(interpretation="srgb")
    with_bg = httpx.post(
        real.url + URL,
        headers=KEYED,
        timeout=300,
        files={**sent, "image-bg": ("bg.png", solid.pngsave_buffer(), "image/png")},
    )
    if with_bg.status_code == 422:  # the native API has no background images yet: refused by name
        assert "bg_" in with_bg.json()["detail"]
        return
    check_composite(base64.b64decode(with_bg.json()["results"][0]["entities"][0]["image"]), (255, 0, 255))


def test_rate_limited(limited: TestClient) -> None:
    assert limited.post(URL, headers=KEYED, files=img()).status_code == 200
    again = limited.post(URL, headers=KEYED, files=img())
    assert again.status_code == 429 and again.json()["message"] and int(again.headers["retry-after"]) > 0


def test_no_model(modelless: TestClient) -> None:
    none = modelless.post(URL, headers=KEYED, files=img())
    assert none.status_code == 501 and "model" in none.json()["detail"]
