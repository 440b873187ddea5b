"""rembg's server API (``rembg s``): GET /api/remove?url= and POST /api/remove with a ``file`` part, its
options where rembg reads them (form on POST, query on GET; bgc and extras always in the query), its 422
validation shape, the key, a chained request, and one real-model run checking pixels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, Live, check_composite, check_mask, image, photo, road
from tests.conftest import require
from tests.fetch.servers import LocalServer

URL = "/api/remove"
KEYED = {"X-Api-Key": KEY}


def files() -> dict[str, Any]:
    return {"file": ("road.jpg", road(), "image/jpeg")}


#: (case, method, request keyword arguments (a url=None is replaced by the origin's), status,
#: bands of the PNG or the parameter a 422 names, hints header)
CASES: list[tuple[str, str, dict[str, Any], int, Any, str | None]] = [
    ("post file", "POST", {"files": files()}, 200, 4, None),
    ("post only mask", "POST", {"files": files(), "data": {"om": "true"}}, 200, 1, None),
    (
        "post alpha matting",
        "POST",
        {"files": files(), "data": {"a": "true", "af": "240", "ab": "10", "ae": "10"}},
        200,
        4,
        None,
    ),
    (
        "post thresholds are hints",
        "POST",
        {"files": files(), "data": {"a": "true", "af": "200", "ppm": "true", "model": "isnet-general-use"}},
        200,
        4,
        "model=isnet-general-use, af=200, ppm=true",
    ),
    # rembg answers RGBA whatever the background: an opaque one too (its clients unpack four channels).
    ("post background colour", "POST", {"files": files(), "params": {"bgc": "255,0,0,255"}}, 200, 4, None),
    ("post background colour again", "POST", {"files": files(), "params": {"bgc": "255,0,0,255"}}, 200, 4,
     None),  # fmt: skip
    ("get background colour", "GET", {"params": {"url": None, "bgc": "0,0,255,255"}}, 200, 4, None),
    ("get translucent background", "GET", {"params": {"url": None, "bgc": "0,0,255,128"}}, 200, 4, None),
    # rembg's own bgc=0,0,0,0: the cut-out over nothing is the cut-out (was the engine's b_ 400, a 422).
    ("get transparent background", "GET", {"params": {"url": None, "bgc": "0,0,0,0"}}, 200, 4, None),
    ("get url", "GET", {"params": {"url": None}}, 200, 4, None),
    ("get url mask", "GET", {"params": {"url": None, "om": "true", "extras": "{}"}}, 200, 1, "extras"),
    ("bad threshold", "POST", {"files": files(), "data": {"af": "300"}}, 422, "af", None),
    ("bad model", "POST", {"files": files(), "data": {"model": "nope"}}, 422, "model", None),
    ("bad bgc", "GET", {"params": {"url": None, "bgc": "red"}}, 422, "bgc", None),
    # str.isdigit() takes '²' and int() refuses 4300+ digits: both were a 500.
    ("superscript bgc", "GET", {"params": {"url": None, "bgc": "1,1,1,²"}}, 422, "bgc", None),
    ("huge bgc", "GET", {"params": {"url": None, "bgc": "1,1,1," + "9" * 5000}}, 422, "bgc", None),
    ("huge erode size", "GET", {"params": {"url": None, "ae": "9" * 5000}}, 422, "ae", None),
    ("zero-padded erode size", "GET", {"params": {"url": None, "ae": "0" * 5000 + "7"}}, 200, 4, "ae=7"),
    ("superscript threshold", "POST", {"files": files(), "data": {"af": "²"}}, 422, "af", None),
    ("form field in the query", "POST", {"files": files(), "params": {"om": "true"}}, 422, "om", None),
    ("no file", "POST", {"data": {"a": "true"}}, 422, "file", None),
    ("no url", "GET", {}, 422, "url", None),
    ("unknown option", "GET", {"params": {"url": None, "size": "1"}}, 422, "size", None),
]


@pytest.mark.parametrize(("case", "method", "kwargs", "status", "expected", "hinted"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_requests(
    client: TestClient,
    origin: LocalServer,
    case: str,
    method: str,
    kwargs: dict[str, Any],
    status: int,
    expected: Any,
    hinted: str | None,
) -> None:
    if kwargs.get("params", {}).get("url", "") is None:
        kwargs = {**kwargs, "params": {**kwargs["params"], "url": origin.url("/road.jpg")}}
    response = client.request(method, URL, headers=KEYED, **kwargs)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"][1] == expected
        return
    assert response.headers["content-type"] == "image/png"
    out = image(response.content)
    assert (out.bands, out.width, out.height) == (expected, 640, 427)
    assert response.headers.get("x-cutout-ignored-hints") == hinted


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"X-Api-Key": "wrong"}, 401), ({"Authorization": f"Bearer {KEY}"}, 200), (KEYED, 200),
])  # fmt: skip
def test_auth(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = client.post(URL, headers=headers, files=files())
    assert response.status_code == status
    if status == 401:
        assert "key" in response.json()["detail"]


def test_errors_other_than_validation(client: TestClient, origin: LocalServer) -> None:
    not_image = client.post(URL, headers=KEYED, files={"file": ("a.txt", b"hello", "text/plain")})
    assert (not_image.status_code, "JPEG" in not_image.json()["detail"]) == (415, True)
    fetched_text = client.get(URL, headers=KEYED, params={"url": origin.url("/text.txt")})
    assert fetched_text.status_code in (400, 415) and fetched_text.json()["detail"]
    refused = client.get(URL, headers=KEYED, params={"url": "http://169.254.169.254/latest"})
    assert refused.status_code == 403 and refused.json()["detail"]


def test_a_query_name_twice_and_a_bad_url_are_named_as_rembg_reads_them(client: TestClient) -> None:
    """bgc twice was the last one silently (the first dropped); a url without a scheme was named as the
    native API's image_url, in the body, where rembg's client sent the query's url."""
    twice = client.post(f"{URL}?bgc=255,0,0,255&bgc=0,0,0,0", headers=KEYED, files=files())
    assert twice.status_code == 422 and twice.json()["detail"][0]["loc"] == ["query", "bgc"]
    assert "more than once" in twice.json()["detail"][0]["msg"]
    get_twice = client.get(f"{URL}?url=http://a.example/a.jpg&url=http://b.example/b.jpg", headers=KEYED)
    assert get_twice.status_code == 422 and get_twice.json()["detail"][0]["loc"] == ["query", "url"]
    no_scheme = client.get(URL, headers=KEYED, params={"url": "road.jpg"})
    assert no_scheme.status_code == 422 and no_scheme.json()["detail"][0]["loc"] == ["query", "url"]


def test_a_file_that_is_not_an_image_is_named_file(client: TestClient) -> None:
    """It was "the body is not a JPEG, PNG...": rembg's client sent a multipart part named file."""
    response = client.post(URL, headers=KEYED, files={"file": ("a.txt", b"not an image", "text/plain")})
    assert response.status_code == 415
    assert response.json()["detail"].startswith("file is not a JPEG")


@pytest.mark.parametrize("query", ["model=nope", "om=maybe", "af=300", "size=1", "om=true&om=false"])
def test_a_bad_get_option_is_located_in_the_query(client: TestClient, query: str) -> None:
    """On a GET every option is a query parameter (FastAPI's loc ["query", name]); it was ["body", name],
    as for a POST's form fields."""
    response = client.get(f"{URL}?url=http://a.example/a.jpg&{query}", headers=KEYED)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", query.split("=")[0]]


def test_chained_mask_then_cutout(client: TestClient, stub: Any) -> None:
    """The mask and then the cutout of one image: one segmentation, the mask matching the alpha."""
    data = image(road()).crop(10, 10, 320, 200).jpegsave_buffer()
    before = stub.calls
    sent = {"file": ("a.jpg", data, "image/jpeg")}
    mask = image(client.post(URL, headers=KEYED, files=sent, data={"om": "true"}).content)
    cutout = image(client.post(URL, headers=KEYED, files=sent).content)
    assert stub.calls == before + 1
    assert (mask - cutout[3]).abs().max() == 0


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    source = image(photo())
    sent = {"file": ("dog.jpg", photo(), "image/jpeg")}
    mask = httpx.post(real.url + URL, headers=KEYED, files=sent, data={"om": "true"}, timeout=300)
    assert mask.status_code == 200, mask.text
    check_mask(mask.content, source.width, source.height)
    composite = httpx.post(
        real.url + URL, headers=KEYED, files=sent, params={"bgc": "0,0,255,255"}, timeout=300
    )
    check_composite(composite.content, (0, 0, 255))


def test_the_readme_commands(live: Live, origin: LocalServer, tmp_path: Path) -> None:
    """rembg's README server examples, with rembg's host replaced by the live server (and cutout's key)."""
    require(shutil.which("curl") is not None, "curl is not installed")
    (tmp_path / "input.jpg").write_bytes(road())
    commands = [
        'curl -s "http://localhost:7000/api/remove?url=http://input.png" -o output.png',
        'curl -s -F file=@/path/to/input.jpg "http://localhost:7000/api/remove" -o output2.png',
    ]
    for command in commands:
        command = command.replace("http://input.png", origin.url("/road.jpg")).replace("/path/to/", "")
        command = command.replace("http://localhost:7000", live.url).replace(
            "curl -s", f"curl -s -f -H 'X-Api-Key: {KEY}'"
        )
        subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=60)
    for name in ("output.png", "output2.png"):
        assert image((tmp_path / name).read_bytes()).bands == 4


def test_rate_limited(limited: TestClient) -> None:
    assert limited.post(URL, headers=KEYED, files=files()).status_code == 200
    again = limited.post(URL, headers=KEYED, files=files())
    assert again.status_code == 429 and again.json()["detail"] and int(again.headers["retry-after"]) > 0


def test_no_model(modelless: TestClient) -> None:
    none = modelless.post(URL, headers=KEYED, files=files())
    assert none.status_code == 501 and "model" in none.json()["detail"]


def test_an_opaque_background_is_still_rgba(client: TestClient, answered: list[bool]) -> None:
    """rembg pastes the cut-out on an RGBA ``bgc``: four bands, the colour in the corners, opaque; the
    repeat is answered alike by the ASGI front, from memory."""
    sent = {"file": ("a.jpg", image(road()).crop(0, 0, 320, 200).jpegsave_buffer(), "image/jpeg")}
    for _ in range(2):
        response = client.post(URL, headers=KEYED, files=sent, params={"bgc": "255,0,0,255"})
        out = image(response.content)
        assert out.bands == 4 and out.extract_band(3).min() == 255
        assert [round(out.crop(0, 0, 4, 4)[band].avg()) for band in range(3)] == [255, 0, 0]
    assert answered == [False, True]
