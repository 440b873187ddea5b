"""The console's server side through the real app: the door (off, loopback, HTTP Basic), validation that
answers exactly what the delivery URL answers, and upload signatures the SDK would make."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cloudinary.utils
import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.app.helpers import SAMPLES, EllipseSegmenter

KEY, SECRET = "console-key", "console-secret"
LOCAL, REMOTE = ("127.0.0.1", 50000), ("203.0.113.9", 50000)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    from cutout.app import create_app

    base = Settings(originals=SAMPLES, cache_dir=tmp_path / "cache", render_threads=2, console=True)
    clients: list[TestClient] = []

    def build(client: tuple[str, int] = LOCAL, **changes: Any) -> TestClient:
        app = create_app(replace(base, **changes), segmenter=EllipseSegmenter(), load_model=False)
        test_client = TestClient(app, raise_server_exceptions=False, client=client)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield build
    for c in clients:
        c.__exit__(None, None, None)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_off_by_default_is_404(make: Any) -> None:
    client = make(console=False)
    for path in ("/console", "/console/config", "/console/static/js/main.js", "/console/check?public_id=a"):
        assert client.get(path).status_code == 404, path


def test_open_on_loopback_without_a_secret_and_refused_from_elsewhere(make: Any) -> None:
    page = make().get("/console")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/console/static/js/main.js">' in page.text
    proxied = make().get("/console", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403  # through a proxy on this machine: not a local user
    remote = make(client=REMOTE).get("/console")
    assert remote.status_code == 403
    assert "CUTOUT_API_SECRET" in remote.json()["error"]["message"]


def test_basic_sign_in_with_key_and_secret(make: Any) -> None:
    client = make(client=REMOTE, api_key=KEY, api_secret=SECRET)
    missing = client.get("/console")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith('Basic realm="cutout console"')
    assert client.get("/console", headers=basic(KEY, "wrong")).status_code == 401
    assert client.get("/console", headers=basic("wrong", SECRET)).status_code == 401
    assert client.get("/console/static/console.css", headers=basic(KEY, "x")).status_code == 401
    ok = client.get("/console", headers=basic(KEY, SECRET))
    assert ok.status_code == 200
    config = client.get("/console/config", headers=basic(KEY, SECRET)).json()
    assert config["api_key"] == KEY and config["signed"] is True
    # The secret is in no answer the page gets.
    for path in ("/console", "/console/config", "/console/static/js/api.js"):
        assert SECRET not in client.get(path, headers=basic(KEY, SECRET)).text
    no_key = make(client=REMOTE, api_secret=SECRET)
    assert no_key.get("/console", headers=basic(KEY, SECRET)).status_code == 403


BAD = [
    "w_100,,h_80",  # syntax: the column of the empty parameter
    "c_scale,w_abc",  # a bad value
    "c_thumb,g_liquid,h_100,w_100",  # not supported
    "e_background_removal/z_2",  # unknown parameter
    "co_red",  # a rule between parameters
    "w_100,w_200",  # twice in one component
    "u_docs:nothing/fl_layer_apply",  # a missing layer: the resolver's 404
    "e_background_removal/c_scale,w_",
    "c_scale%2Cw_abc",  # an encoded comma separates parameters, as in delivery
    "%24w_abc/c_scale,w_%24w",  # an encoded $ is a variable's, as in delivery
]


@pytest.mark.parametrize("text", BAD)
def test_check_says_what_the_delivery_url_says(make: Any, text: str) -> None:
    client = make()
    answer = client.get("/console/check", params={"transformation": text, "public_id": "docs/road"}).json()
    delivered = client.get(f"/demo/image/upload/{text}/v1/docs/road")
    assert answer["ok"] is False
    assert answer["status"] == delivered.status_code
    assert answer["message"] == delivered.text.strip() == delivered.headers["x-cld-error"]
    assert answer["url"].endswith(f"/demo/image/upload/{text}/v1/docs/road")  # v1: the SDKs' for folders


def test_check_columns_point_at_the_problem(make: Any) -> None:
    client = make()

    def column(text: str) -> int | None:
        answer = client.get("/console/check", params={"transformation": text, "public_id": "docs/road"})
        value: int | None = answer.json()["column"]
        return value

    assert column("w_100,,h_80") == 7
    assert column("c_scale,w_abc") == 9
    assert column("e_background_removal/c_fill,g_liquid,h_9,w_9") == 29
    assert column("e_background_removal/z_2") == 22
    assert column("c_fill,w_100/w_100,w_200") == 14
    assert column("c_fill,w_100/w_1,l_text:Arial_40:it's,w_2") == 14  # a quote in the quoted component


def test_check_takes_text_as_the_browser_sends_it(make: Any) -> None:
    """QA pass 19: a text layer typed with a space or an accent was "400 unexpected character ' '", though
    the browser sends its delivery URL %-encoded and that URL answers 200."""
    client = make()
    answer = client.get("/console/check", params={
        "transformation": "l_text:Arial_40:héllo wörld", "public_id": "docs/road"}).json()
    assert answer["ok"] is True, answer
    assert answer["transformation"] == "l_text:Arial_40:h%C3%A9llo%20w%C3%B6rld"
    assert answer["path"] == "/demo/image/upload/l_text:Arial_40:h%C3%A9llo%20w%C3%B6rld/v1/docs/road"
    assert client.get(answer["path"]).status_code == 200
    # An error's column counts in the text as sent (the page draws its caret under that text).
    bad = client.get("/console/check", params={"transformation": "l_text:Arial_40:é/w_x",
                                               "public_id": "docs/road"}).json()
    assert bad["status"] == 400 and bad["transformation"] == "l_text:Arial_40:%C3%A9/w_x"
    assert bad["column"] == bad["transformation"].index("w_x") + 1


def test_check_reads_encoded_structural_characters_as_delivery_does(make: Any) -> None:
    """%24 is $, %2C a comma and %3A a colon in a component (grammar's plain_transformation), in the check
    as in the delivery URL: the check said 400 (unexpected '%') to a URL that answers 200."""
    client = make()
    text = "%24w_60/c_scale%2Cw_%24w/ar_16%3A9,c_fill"
    answer = client.get("/console/check", params={"transformation": text, "public_id": "docs/road"}).json()
    assert answer["ok"] is True, answer
    assert answer["transformation"] == text  # the URL keeps what was written
    assert answer["read"] == "$w_60/c_scale,w_$w/ar_16:9,c_fill"
    assert answer["canonical"] == client.get("/console/check", params={
        "transformation": answer["read"], "public_id": "docs/road"}).json()["canonical"]
    delivered = client.get(answer["path"])
    assert delivered.status_code == 200 and pyvips.Image.new_from_buffer(delivered.content, "").width == 60
    # A mistake after an encoded comma: the column counts in the text as read, under which the caret goes.
    bad = client.get("/console/check", params={"transformation": "c_scale%2Cw_abc",
                                               "public_id": "docs/road"}).json()
    assert bad["status"] == 400 and bad["read"] == "c_scale,w_abc" and bad["column"] == 9


def test_check_of_a_good_transformation(make: Any) -> None:
    client = make()
    answer = client.get("/console/check", params={
        "transformation": "e_background_removal/c_scale,w_400", "public_id": "docs/rmv_bgd/dog_couch_orig",
        "version": "1700000000"}).json()
    assert answer["ok"] is True and answer["cutout"] is True
    assert answer["path"] == ("/demo/image/upload/e_background_removal/c_scale,w_400/v1700000000/"
                              "docs/rmv_bgd/dog_couch_orig")
    assert answer["canonical"] == "e_background_removal/c_scale,w_400"
    plain = client.get("/console/check", params={"transformation": "", "public_id": "docs/road"}).json()
    assert plain["ok"] is True and plain["cutout"] is False
    assert plain["path"] == "/demo/image/upload/v1/docs/road"
    alone = client.get("/console/check", params={"transformation": "", "public_id": "road"}).json()
    assert alone["path"] == "/demo/image/upload/road"  # no folder: nothing to mistake for a component


def test_check_refuses_what_is_no_transformation_and_bad_requests(make: Any) -> None:
    client = make()
    folder = client.get("/console/check", params={"transformation": "docs", "public_id": "road"}).json()
    assert folder["ok"] is False and folder["status"] == 400 and folder["column"] == 5
    missing = client.get("/console/check", params={"transformation": "w_10", "public_id": "docs/none"}).json()
    assert missing["status"] == 404
    assert client.get("/console/check", params={"transformation": "w_10"}).status_code == 400
    unknown = client.get("/console/check", params={"public_id": "a", "colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["message"]
    assert client.get("/console/check", params={"public_id": "a", "version": "x1"}).status_code == 400
    huge = client.get("/console/check", params={"public_id": "a", "version": "1" * 5000})  # was a 500
    assert huge.status_code == 400 and "up to 18 digits" in huge.json()["error"]["message"]
    # A parameter given twice: the last was checked, the first passed over without a word.
    for query in ("transformation=w_10&transformation=w_20&public_id=docs/road",
                  "public_id=docs/road&public_id=x"):
        twice = client.get("/console/check?" + query)
        assert twice.status_code == 400, query
        assert "given more than once" in twice.json()["error"]["message"]


def test_strict_mode_answers_like_the_url(make: Any) -> None:
    client = make(strict=True)
    answer = client.get("/console/check", params={"transformation": "w_10", "public_id": "docs/road"}).json()
    assert answer["status"] == 401 and "not allowed" in answer["message"]


def test_sign_makes_the_sdks_signature_and_keeps_the_secret(make: Any) -> None:
    client = make(client=REMOTE, api_key=KEY, api_secret=SECRET)
    auth = basic(KEY, SECRET)
    params = {"public_id": "shop/shoe", "background_removal": "cloudinary_ai", "use_filename": "true"}
    answer = client.post("/console/sign", json=params, headers=auth).json()
    signed = answer["params"]
    assert {k: v for k, v in signed.items() if k != "timestamp"} == params
    assert answer["signature"] == cloudinary.utils.api_sign_request(signed, SECRET)
    assert answer["api_key"] == KEY and SECRET not in str(answer)
    assert client.post("/console/sign", json=params).status_code == 401
    form = client.post("/console/sign", data=params, headers=auth)
    assert form.status_code == 415
    foreign = client.post("/console/sign", json=params, headers={**auth, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    unknown = client.post("/console/sign", json={"eager": "w_10"}, headers=auth)
    assert unknown.status_code == 400 and "eager" in unknown.json()["error"]["message"]
    assert client.post("/console/sign", json=["x"], headers=auth).status_code == 400


def test_static_modules_are_served_as_javascript(make: Any) -> None:
    client = make()
    for name in ("main", "api", "builder", "originals"):
        response = client.get(f"/console/static/js/{name}.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        # never kept by a shared cache (nginx in front would serve them without sign-in, and stale)
        assert response.headers["cache-control"] == "private, no-cache"
        assert client.get(f"/console/static/js/{name}.js",
                          headers={"If-None-Match": response.headers["etag"]}).status_code == 304  # fmt: skip
    for path in ("/console/static/%2e%2e/routes.py", "/console/static/..%2froutes.py"):
        outside = client.get(path)
        assert outside.status_code == 404 and "Route(" not in outside.text, path
    assert client.get("/console/").status_code == 200  # redirected to /console


def test_a_signed_upload_is_accepted_by_the_upload_api(make: Any, tmp_path: Path) -> None:
    """The page's way: /console/sign, then the Upload API with those parameters and no credentials."""
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    client = make(client=REMOTE, api_key=KEY, api_secret=SECRET, upload=True, originals=originals)
    params = {"public_id": "shop/shoe", "tags": "a&b,c"}  # '&' in a value: the SDK's signature version 2
    signed = client.post("/console/sign", json=params, headers=basic(KEY, SECRET)).json()
    form = {**signed["params"], "api_key": signed["api_key"], "signature": signed["signature"]}
    image = (SAMPLES / "docs/road.jpg").read_bytes()
    uploaded = client.post("/v1_1/demo/image/upload", data=form, files={"file": ("road.jpg", image)})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["public_id"] == "shop/shoe"
    forged = {**form, "public_id": "shop/other"}
    refused = client.post("/v1_1/demo/image/upload", data=forged, files={"file": ("road.jpg", image)})
    assert refused.status_code == 401
    config = client.get("/console/config", headers=basic(KEY, SECRET)).json()
    assert config["upload"] is True
