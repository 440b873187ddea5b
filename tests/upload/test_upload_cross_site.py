"""No page of another site gets the operator's rights through the HTTP Basic credentials its browser
holds for this server (the console's sign-in): the Upload API ignores them on such a request (its
signature decides) and the Admin API refuses it, while SDKs, curl and the console's own page, which send
no foreign ``Origin`` or ``Sec-Fetch-Site``, keep working. In process: no model needed. The same attack
in a real browser is ``tests/console/test_console_cross_site.py``."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.public_url import foreign_page
from cutout.settings import Settings
from cutout.upload.auth import sign
from tests.app.helpers import SAMPLES

KEY, SECRET = "site-key", "site-secret"
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
EVIL = "http://evil.example"
#: What a browser adds to a request that another site's page makes.
FOREIGN = (
    {"Origin": EVIL},
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site"},  # a GET: no Origin
    {"Sec-Fetch-Site": "same-site"},  # another port or a sibling host
    {"Origin": "null"},  # a sandboxed frame
    {"Origin": "https://testserver"},  # https page, plain-http server: another origin
)


def _request(headers: dict[str, str], scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "scheme": scheme,
                    "server": ("img.example", 80), "query_string": b""})  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "foreign"),
    [
        ({"Host": "img.example"}, False),  # an SDK, curl
        ({"Host": "img.example", "Origin": "http://img.example", "Sec-Fetch-Site": "same-origin"}, False),
        ({"Host": "img.example:80", "Origin": "http://img.example"}, False),  # the default port
        ({"Host": "IMG.example", "Origin": "http://img.EXAMPLE"}, False),
        ({"Host": "img.example", "Sec-Fetch-Site": "none"}, False),  # typed in the address bar
        ({"Host": "img.example", "Origin": "https://img.example", "X-Forwarded-Proto": "https"}, False),
        ({"Host": "img.example", "Origin": "https://img.example"}, True),  # a TLS proxy that does not say
        ({"Host": "img.example", "Origin": "http://img.example:8080"}, True),
        ({"Host": "img.example", "Origin": "http://evil.example"}, True),
        ({"Host": "img.example", "Origin": "null"}, True),
        ({"Host": "img.example", "Sec-Fetch-Site": "cross-site"}, True),
        ({"Host": "img.example", "Sec-Fetch-Site": "same-site"}, True),
        ({"Host": "img.example", "Origin": "http://img.example", "Sec-Fetch-Site": "cross-site"}, True),
        ({"Host": "bad host", "Origin": "http://bad host"}, True),
    ],
)
def test_the_rule(headers: dict[str, str], foreign: bool) -> None:
    why = foreign_page(_request(headers))
    assert (why is not None) == foreign, why
    if why is not None:
        assert "Origin" in why or "Sec-Fetch-Site" in why


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    shutil.copytree(SAMPLES, tmp_path / "originals")
    config = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", upload=True,
                      api_key=KEY, api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as test_client:
        yield test_client


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}


def _upload(client: TestClient, public_id: str, headers: dict[str, str]) -> tuple[int, str]:
    answer = client.post("/v1_1/demo/image/upload", data={"public_id": public_id},
                         files={"file": ("road.jpg", ROAD)}, headers=headers)  # fmt: skip
    return answer.status_code, answer.json().get("error", {}).get("message", "")


def _version(client: TestClient, public_id: str) -> int | None:
    answer = client.get(f"/v1_1/demo/resources/image/upload/{public_id}", headers=_basic())
    return int(answer.json()["version"]) if answer.status_code == 200 else None


#: Every Upload API call that changes something, as (path, form) on the asset ``x/a``.
UPLOAD_CALLS = (
    ("/v1_1/demo/image/destroy", {"public_id": "x/a"}),
    ("/v1_1/demo/image/explicit", {"public_id": "x/a", "type": "upload", "tags": "evil"}),
    ("/v1_1/demo/image/rename", {"from_public_id": "x/a", "to_public_id": "x/moved"}),
    ("/v1_1/demo/image/tags", {"command": "add", "tag": "evil", "public_ids": "x/a"}),
    ("/v1_1/demo/image/context", {"command": "add", "context": "k=evil", "public_ids": "x/a"}),
)


def test_basic_credentials_from_another_site_do_nothing_on_the_upload_api(client: TestClient) -> None:
    assert _upload(client, "x/a", _basic())[0] == 200
    version = _version(client, "x/a")
    for headers in FOREIGN:
        status, message = _upload(client, "x/a", {**_basic(), **headers})
        assert status == 403, headers
        assert "another site's page" in message and "sign the call" in message, message
        assert _upload(client, "x/new", {**_basic(), **headers})[0] == 403
        for path, form in UPLOAD_CALLS:
            answer = client.post(path, data=form, headers={**_basic(), **headers})
            assert answer.status_code == 403, (path, headers, answer.text)
            assert answer.headers["access-control-allow-origin"] == "*"  # the page may read why
    assert _version(client, "x/a") == version and _version(client, "x/new") is None
    shown = client.get("/v1_1/demo/resources/image/upload/x/a", headers=_basic()).json()
    assert shown["tags"] == [] and not shown.get("context")


def test_a_signed_call_from_another_site_is_still_taken(client: TestClient) -> None:
    """A signed form on the customer's own site (the documented browser upload): its signature decides,
    whatever Basic credentials the browser attaches."""
    params = {"public_id": "x/signed", "timestamp": str(int(time.time()))}
    form = {**params, "api_key": KEY, "signature": sign(params, SECRET)}
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, **_basic()}):
        answer = client.post("/v1_1/demo/image/upload", data=form, files={"file": ("road.jpg", ROAD)},
                             headers=headers)  # fmt: skip
        assert answer.status_code == 200, answer.text
    wrong = {**form, "signature": "0" * 40}
    answer = client.post("/v1_1/demo/image/upload", data=wrong, files={"file": ("road.jpg", ROAD)},
                         headers={"Origin": EVIL, **_basic()})  # fmt: skip
    assert answer.status_code == 401 and "Invalid Signature" in answer.json()["error"]["message"]


def test_the_admin_api_refuses_another_sites_page(client: TestClient) -> None:
    assert _upload(client, "x/a", _basic())[0] == 200
    assert client.post("/v1_1/demo/image/tags", data={"command": "add", "tag": "t", "public_ids": "x/a"},
                       headers=_basic()).status_code == 200  # fmt: skip
    calls = (
        ("GET", "/v1_1/demo/resources/image/upload", None),
        ("GET", "/v1_1/demo/resources/image/upload/x/a", None),
        ("GET", "/v1_1/demo/ping", None),
        ("POST", "/v1_1/demo/resources/image/upload/x/a", {"tags": "evil"}),
        ("POST", "/v1_1/demo/resources/image/upload/restore", {"public_ids": "x/a"}),
        ("DELETE", "/v1_1/demo/resources/image/upload?public_ids=x/a", None),
        ("DELETE", "/v1_1/demo/resources/image/upload?prefix=x/", None),
        ("DELETE", "/v1_1/demo/resources/image/tags/t", None),
    )
    for headers in FOREIGN:
        for method, path, form in calls:
            answer = client.request(method, path, data=form, headers={**_basic(), **headers})
            assert answer.status_code == 403, (method, path, headers, answer.text)
            assert "another site's page" in answer.json()["error"]["message"]
    assert _version(client, "x/a") is not None
    assert client.get("/v1_1/demo/resources/image/upload/x/a", headers=_basic()).json()["tags"] == ["t"]


def test_sdks_and_the_console_page_keep_working(client: TestClient) -> None:
    own = ({}, {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}, {"Sec-Fetch-Site": "none"},
           {"Origin": "https://testserver", "X-Forwarded-Proto": "https"})  # fmt: skip
    for n, headers in enumerate(own):
        assert _upload(client, f"x/own{n}", {**_basic(), **headers})[0] == 200, headers
        listed = client.get("/v1_1/demo/resources/image/upload", headers={**_basic(), **headers})
        assert listed.status_code == 200, headers
        gone = client.post("/v1_1/demo/image/destroy", data={"public_id": f"x/own{n}"},
                           headers={**_basic(), **headers})  # fmt: skip
        assert gone.json() == {"result": "ok"}, headers


def test_the_http_api_takes_no_basic_credentials(tmp_path: Path) -> None:
    """The HTTP API and the vendors' faces read their keys from headers a browser never adds by itself
    (Bearer, X-Api-Key, ...): the console's Basic credentials are no key there."""
    config = Settings(originals=SAMPLES, cache_dir=tmp_path / "cache", api_keys=(SECRET, KEY),
                      api_key=KEY, api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as api:
        for path in ("/v1/remove-background", "/v1.0/removebg", "/api/remove", "/v1/results",
                     "/computervision/imageanalysis:segment", "/s2s/v2.0/file/sod"):  # fmt: skip
            answer = api.post(path, content=ROAD, headers={**_basic(), "Content-Type": "image/jpeg",
                                                           "Origin": EVIL})  # fmt: skip
            assert answer.status_code in (401, 403), (path, answer.status_code, answer.text[:200])
