"""Azure Image Analysis 4.0 segmentation (seed 004): both modes by URL, raw bytes and multipart, every
error of the seed's list that applies (content type, size, format, URL, query), the subscription key,
a chained request, the documented sample request, and one real-model run checking pixels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.adapters import azure
from tests.adapters.conftest import KEY, Live, check_mask, image, photo, road
from tests.conftest import require
from tests.fetch.servers import LocalServer

PATH = "/computervision/imageanalysis:segment"
KEYED = {"Ocp-Apim-Subscription-Key": KEY}
OCTET = {**KEYED, "Content-Type": "application/octet-stream"}


def query(mode: str = "backgroundRemoval", **more: str) -> dict[str, str]:
    return {"api-version": "2023-02-01-preview", "mode": mode, **more}


def tiny() -> bytes:
    return pyvips.Image.black(40, 40).jpegsave_buffer()


#: (case, query, request keyword arguments, status, bands of the PNG or (code, inner code))
CASES: list[tuple[str, dict[str, str], dict[str, Any], int, Any]] = [
    ("removal, bytes", query(), {"headers": OCTET, "content": road()}, 200, 4),
    ("matting, bytes", query("foregroundMatting"), {"headers": OCTET, "content": road()}, 200, 1),
    ("removal, url", query(), {"headers": KEYED, "json": {"url": "ORIGIN/road.jpg"}}, 200, 4),
    (
        "matting, url, single quotes",
        query("foregroundMatting"),
        {"headers": {**KEYED, "Content-Type": "application/json"}, "content": b"{'url':'ORIGIN/road.jpg'}"},
        200,
        1,
    ),
    (
        "removal, multipart",
        query(),
        {"headers": KEYED, "files": {"image": ("r.jpg", road(), "image/jpeg")}},
        200,
        4,
    ),
    (
        "no mode",
        {"api-version": "2023-02-01-preview"},
        {"headers": OCTET, "content": road()},
        400,
        ("InvalidRequest", "NotSupportedVisualFeature"),
    ),
    (
        "bad mode",
        query("caption"),
        {"headers": OCTET, "content": road()},
        400,
        ("InvalidRequest", "NotSupportedVisualFeature"),
    ),
    (
        "bad api-version",
        query(**{"api-version": "2024-02-01"}),
        {"headers": OCTET, "content": road()},
        400,
        ("InvalidRequest", "InvalidApiVersion"),
    ),
    (
        "content type",
        query(),
        {"headers": {**KEYED, "Content-Type": "image/jpeg"}, "content": road()},
        400,
        ("InvalidRequest", None),
    ),
    ("empty body", query(), {"headers": OCTET, "content": b""}, 400, ("InvalidRequest", None)),
    (
        "not an image",
        query(),
        {"headers": OCTET, "content": b"hello"},
        400,
        ("InvalidRequest", "InvalidImageFormat"),
    ),
    (
        "too small",
        query(),
        {"headers": OCTET, "content": tiny()},
        400,
        ("InvalidRequest", "InvalidImageDimension"),
    ),
    (
        "url not allowed",
        query(),
        {"headers": KEYED, "json": {"url": "http://169.254.169.254/x"}},
        400,
        ("InvalidRequest", "InvalidImageUrl"),
    ),
    (
        "url not an image",
        query(),
        {"headers": KEYED, "json": {"url": "ORIGIN/text.txt"}},
        400,
        ("InvalidRequest", "InvalidImageFormat"),
    ),
    (
        "bad json",
        query(),
        {"headers": KEYED, "json": {"uri": "x"}},
        400,
        ("InvalidRequest", "InvalidArgument"),
    ),
    (
        "too large",
        query(),
        {"headers": OCTET, "content": bytes(21_000_000)},
        400,
        ("InvalidRequest", None),
    ),
]


@pytest.mark.parametrize(("case", "params", "kwargs", "status", "expected"), CASES, ids=[c[0] for c in CASES])
def test_segment(
    client: TestClient,
    origin: LocalServer,
    case: str,
    params: dict[str, str],
    kwargs: dict[str, Any],
    status: int,
    expected: Any,
) -> None:
    if "json" in kwargs:
        kwargs = {
            **kwargs,
            "json": {k: v.replace("ORIGIN", origin.origin) for k, v in kwargs["json"].items()},
        }
    if isinstance(kwargs.get("content"), bytes) and b"ORIGIN" in kwargs["content"]:
        kwargs = {**kwargs, "content": kwargs["content"].replace(b"ORIGIN", origin.origin.encode())}
    response = client.post(PATH, params=params, **kwargs)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.headers["content-type"] == "image/png"
        out = image(response.content)
        assert (out.bands, out.width, out.height) == (expected, 640, 427)
        return
    error = response.json()["error"]
    assert error["code"] == expected[0] and error["message"]
    assert error.get("innererror", {}).get("code") == expected[1]


def test_key(client: TestClient) -> None:
    for headers in ({}, {"Ocp-Apim-Subscription-Key": "wrong"}):
        headers = {**headers, "Content-Type": "application/octet-stream"}
        refused = client.post(PATH, params=query(), headers=headers, content=road())
        assert refused.status_code == 401
        assert refused.json()["error"]["message"].startswith("Access denied due to invalid subscription key")


def test_a_query_name_twice_is_refused(client: TestClient) -> None:
    """mode twice was the last one (a one-band matte for a client that also asked backgroundRemoval)."""
    params = [("api-version", "2023-02-01-preview"), ("mode", "backgroundRemoval"),
              ("mode", "foregroundMatting")]  # fmt: skip
    refused = client.post(PATH, params=params, headers=OCTET, content=road())
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "InvalidRequest"
    assert error["innererror"] == {"code": "InvalidArgument", "message": "mode is given more than once"}


@pytest.mark.parametrize(("params", "said"), [
    ({"mode": "backgroundRemoval"}, "api-version is missing"),
    ({"mode": "backgroundRemoval", "api-version": "2024-02-01"}, "api-version '2024-02-01' is not supported"),
])  # fmt: skip
def test_the_api_version_error_names_what_was_sent(
    client: TestClient, params: dict[str, str], said: str
) -> None:
    """An absent api-version was "api-version None is not supported" (Python's None)."""
    response = client.post(PATH, params=params, headers=OCTET, content=road())
    assert response.status_code == 400
    assert response.json()["error"]["innererror"] == {"code": "InvalidApiVersion", "message": said}


def test_a_null_url_is_named_as_required(client: TestClient) -> None:
    """Azure's one field is required: {"url": null} was told "Expected one field, url, a string"."""
    response = client.post(PATH, params=query(), headers=KEYED, json={"url": None})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["innererror"] == {"code": "InvalidArgument", "message": "url is null: it is required (the "
                                   "image's URL)"}  # fmt: skip


@pytest.mark.parametrize("url", ["", "not a url", "road.jpg"])
def test_a_malformed_url_is_the_documented_badly_formatted_error(client: TestClient, url: str) -> None:
    """The seed: "InvalidRequest - Image URL is badly formatted or not accessible". A URL without a scheme
    was answered with the native message alone, no inner error."""
    response = client.post(PATH, params=query(), headers={**KEYED, "Content-Type": "application/json"},
                           json={"url": url})  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    documented = "Image URL is badly formatted or not accessible."
    assert (error["code"], error["message"]) == ("InvalidRequest", documented)
    assert error["innererror"]["code"] == "InvalidImageUrl" and error["innererror"]["message"]


def test_a_body_past_the_limit_names_azures_limit(client: TestClient) -> None:
    """A body past the limit with its multipart allowance named that allowance's 21037056 bytes."""
    headers = {**OCTET, "Content-Length": str(30 * 1024 * 1024)}
    refused = client.post(PATH, params=query(), headers=headers, content=b"x")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "The image size is not allowed to be zero or larger than 20971520 bytes."
    )


def test_sixteen_megapixels_at_most(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """backgroundRemoval is capped (16 MP; shown here with a cap the road photo passes, as a 20 MP photo
    costs half a minute on a loaded machine), foregroundMatting keeps the input's size."""
    assert azure.MODES["backgroundRemoval"]["max_megapixels"] == "16"
    monkeypatch.setitem(
        azure.MODES, "backgroundRemoval", {**azure.MODES["backgroundRemoval"], "max_megapixels": "0.1"}
    )
    removal = image(client.post(PATH, params=query(), headers=OCTET, content=road()).content)
    matte = image(client.post(PATH, params=query("foregroundMatting"), headers=OCTET, content=road()).content)
    assert (
        removal.width * removal.height <= 100_000 and abs(removal.width / removal.height - 640 / 427) < 0.01
    )
    assert (matte.width, matte.height) == (640, 427)


def test_chained_matte_then_removal(client: TestClient, stub: Any) -> None:
    data = image(road()).crop(20, 20, 400, 300).jpegsave_buffer()
    calls = stub.calls
    matte = image(client.post(PATH, params=query("foregroundMatting"), headers=OCTET, content=data).content)
    cutout = image(client.post(PATH, params=query(), headers=OCTET, content=data).content)
    assert stub.calls == calls + 1 and (matte - cutout[3]).abs().max() == 0


def test_the_documented_request(live: Live, origin: LocalServer, tmp_path: Path) -> None:
    """Microsoft's curl call as its how-to writes it, with the endpoint and image URL made local."""
    require(shutil.which("curl") is not None, "curl is not installed")
    command = [
        "curl",
        "-H",
        f"Ocp-Apim-Subscription-Key: {KEY}",
        "-H",
        "Content-Type: application/json",
        f"{live.url}{PATH}?api-version=2023-02-01-preview&mode=backgroundRemoval",
        "-d",
        "{'url':'" + origin.url("/road.jpg") + "'}",
        "-o",
        "out.png",
        "-s",
        "-S",
        "-f",
    ]
    subprocess.run(command, cwd=tmp_path, check=True, timeout=60)
    assert image((tmp_path / "out.png").read_bytes()).bands == 4


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    source = image(photo())
    matte = httpx.post(
        real.url + PATH, params=query("foregroundMatting"), headers=OCTET, content=photo(), timeout=300
    )
    check_mask(matte.content, source.width, source.height)
    cutout = image(
        httpx.post(real.url + PATH, params=query(), headers=OCTET, content=photo(), timeout=300).content
    )
    assert cutout.bands == 4 and (image(matte.content) - cutout[3]).abs().max() == 0


def test_rate_limited(limited: TestClient) -> None:
    assert limited.post(PATH, params=query(), headers=OCTET, content=road()).status_code == 200
    again = limited.post(PATH, params=query(), headers=OCTET, content=road())
    assert (again.status_code, again.json()["error"]["code"]) == (429, "429")
    assert int(again.headers["retry-after"]) > 0


def test_no_model(modelless: TestClient) -> None:
    none = modelless.post(PATH, params=query(), headers=OCTET, content=road())
    assert (none.status_code, none.json()["error"]["code"]) == (501, "InternalServerError")
