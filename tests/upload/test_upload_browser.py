"""The Upload API as browsers and proxies meet it: CORS (a page uploads straight to it: signed forms, the
upload widget, chunked uploads), the preflight, no CORS on the Admin API (it takes the secret), the
scheme a TLS proxy forwards, and a Host header that is not a host. In process: no model needed."""

from __future__ import annotations

import base64
import logging
import shutil
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from cutout.upload.auth import sign
from tests.app.helpers import SAMPLES, hang_up

KEY, SECRET = "browser-key", "browser-secret"
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
PAGE = "https://shop.example"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(SAMPLES, root / "originals")
    config = Settings(originals=root / "originals", cache_dir=root / "cache", upload=True, api_key=KEY,
                      api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as test_client:
        yield test_client


def _upload(client: TestClient, public_id: str, **headers: str) -> dict[str, object]:
    answer = client.post("/v1_1/demo/image/upload", data={"public_id": public_id},
                         files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET), headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_page_may_upload_and_read_the_answer(client: TestClient) -> None:
    for path in ("/v1_1/demo/image/upload", "/v1_1/demo/auto/upload", "/v1_1/demo/image/destroy"):
        preflight = client.options(path, headers={
            "Origin": PAGE, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-range, x-unique-upload-id, x-requested-with",
        })  # fmt: skip
        assert preflight.status_code == 204, (path, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == (
            "content-range, x-unique-upload-id, x-requested-with"
        )
    params = {"public_id": "b/one", "timestamp": str(int(time.time()))}  # a signed form, as pages send
    answer = client.post("/v1_1/demo/image/upload", data={**params, "api_key": KEY,
                         "signature": sign(params, SECRET)}, files={"file": ("road.jpg", ROAD)},
                         headers={"Origin": PAGE})  # fmt: skip
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    refused = client.post("/v1_1/demo/image/upload", data={"public_id": "b/two"}, headers={"Origin": PAGE})
    assert refused.status_code in (400, 401) and refused.headers["access-control-allow-origin"] == "*"
    assert "error" in refused.json()  # the page can read why


def test_the_admin_api_is_not_for_pages(client: TestClient) -> None:
    listed = client.get("/v1_1/demo/resources/image/upload", auth=(KEY, SECRET))
    assert listed.status_code == 200 and "access-control-allow-origin" not in listed.headers
    paged = client.get("/v1_1/demo/resources/image/upload", auth=(KEY, SECRET), headers={"Origin": PAGE})
    assert paged.status_code == 403 and "access-control-allow-origin" not in paged.headers
    preflight = client.options("/v1_1/demo/resources/image/upload", headers={"Origin": PAGE})
    assert "access-control-allow-origin" not in preflight.headers


def test_a_preflight_asking_for_odd_headers_is_refused(client: TestClient) -> None:
    refused = client.options("/v1_1/demo/image/upload", headers={"Access-Control-Request-Headers": "a b\tc"})
    assert refused.status_code == 400
    assert "Access-Control-Request-Headers" in refused.json()["error"]["message"]


def test_secure_url_is_https_behind_a_tls_proxy(client: TestClient) -> None:
    plain = _upload(client, "b/plain")
    assert str(plain["secure_url"]).startswith("http://testserver/demo/image/upload/")
    for header in ({"X-Forwarded-Proto": "https"}, {"Forwarded": 'for=1.2.3.4;proto="https"'}):
        behind = _upload(client, "b/tls", **header)
        assert str(behind["secure_url"]).startswith("https://testserver/demo/image/upload/"), header
        assert str(behind["url"]).startswith("http://testserver/")
    odd = _upload(client, "b/odd", **{"X-Forwarded-Proto": "gopher"})  # not a scheme URLs can have
    assert str(odd["secure_url"]).startswith("http://testserver/")


def test_a_host_header_that_is_not_a_host_is_refused(client: TestClient) -> None:
    for host in ("evil.example:1234/x?", "a b", "exa mple.org", "x:port"):
        answer = client.post("/v1_1/demo/image/upload", data={"public_id": "b/host"},
                             files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET),
                             headers={"Host": host})  # fmt: skip
        assert answer.status_code == 400, host
        assert "Host header" in answer.json()["error"]["message"]
    for host in ("images.example.org", "127.0.0.1:8080", "[::1]:8080", "localhost"):
        assert _upload(client, "b/host", Host=host)["secure_url"] == (
            f"http://{host}/demo/image/upload/v{_version(client, 'b/host')}/b/host.jpg"
        )


def test_an_upload_action_asked_with_get_says_so(client: TestClient) -> None:
    answer = client.get("/v1_1/demo/image/upload", auth=(KEY, SECRET))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "The Upload API action upload takes POST, not GET"


def _version(client: TestClient, public_id: str) -> int:
    answer = client.get(f"/v1_1/demo/resources/image/upload/{public_id}", auth=(KEY, SECRET))
    return int(answer.json()["version"])


def test_a_webhook_to_a_private_address_is_refused_at_once(client: TestClient) -> None:
    """Not accepted, then failed in the background: the address is in the URL, so it is known now."""
    hook = {"public_id": "b/hook", "notification_url": "http://127.0.0.1:9/hook"}
    answer = client.post("/v1_1/demo/image/upload", files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET),
                         data=hook)  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("notification_url: Fetching 127.0.0.1 is not allowed")


def test_a_client_hanging_up_mid_upload_is_no_server_error(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser closed mid-upload is not a bug: an info line, no traceback, no 500."""
    basic = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    form = {"Authorization": basic, "Content-Type": "multipart/form-data; boundary=b"}
    start = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    with caplog.at_level(logging.INFO):
        assert hang_up(client, "/v1_1/demo/image/upload", form, start + ROAD[:500]) == 499
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert sum("client went away" in r.getMessage() for r in caplog.records) == 1


def test_a_file_name_without_an_extension_is_the_original_filename(client: TestClient) -> None:
    """Node's upload_stream sends the file part as ``file``, its upload_large the name without its
    extension: the whole name is the original_filename (it was missing)."""
    names = (("file", "file"), ("myphoto", "myphoto"), ("a/b/road.jpg", "road"), ("x.tar.gz", "x.tar"))
    for sent, expected in names:
        answer = client.post("/v1_1/demo/image/upload", data={"public_id": "b/names"},
                             files={"file": (sent, ROAD)}, auth=(KEY, SECRET))  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["original_filename"] == expected, sent


def test_asset_folder_files_the_asset_apart_from_its_public_id(client: TestClient) -> None:
    """Dynamic folders (new Cloudinary accounts): ``asset_folder`` on upload and update is where the
    asset is filed; its public id is unchanged. It was refused, so every such upload failed."""
    filed = {"public_id": "sku-1", "asset_folder": "/shop/summer/"}
    answer = client.post("/v1_1/demo/image/upload", data=filed, files={"file": ("road.jpg", ROAD)},
                         auth=(KEY, SECRET))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert (answer.json()["public_id"], answer.json()["asset_folder"]) == ("sku-1", "shop/summer")
    moved = client.post("/v1_1/demo/resources/image/upload/sku-1", data={"asset_folder": "shop/autumn"},
                        auth=(KEY, SECRET))  # fmt: skip
    assert moved.status_code == 200 and moved.json()["asset_folder"] == "shop/autumn", moved.text
    shown = client.get("/v1_1/demo/resources/image/upload/sku-1", auth=(KEY, SECRET)).json()
    assert shown["asset_folder"] == "shop/autumn" and shown["public_id"] == "sku-1"
    bad = client.post("/v1_1/demo/image/upload", data={"public_id": "sku-2", "asset_folder": "a/../b"},
                      files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET))  # fmt: skip
    assert bad.status_code == 400 and "asset_folder" in bad.json()["error"]["message"]


def test_an_absolute_folder_is_a_400_and_stores_nothing(client: TestClient) -> None:
    """``folder=/abs`` was stored as ``abs/<random id>``; the README says an absolute folder is a 400.
    ``asset_folder`` is a label, not where the original is written: its slashes are dropped."""
    answer = client.post("/v1_1/demo/image/upload", data={"folder": "/absolute"},
                         files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET))  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "folder may not be an absolute path: '/absolute'"
    prefix = {"prefix": "absolute/"}
    listed = client.get("/v1_1/demo/resources/image/upload", params=prefix, auth=(KEY, SECRET))
    assert listed.json()["resources"] == []
    filed = client.post("/v1_1/demo/image/upload", data={"public_id": "filed", "asset_folder": "/filed/"},
                        files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET))  # fmt: skip
    assert filed.status_code == 200 and filed.json()["asset_folder"] == "filed"
    kept = client.post("/v1_1/demo/image/upload", data={"folder": "relative/", "public_id": "a"},
                       files={"file": ("road.jpg", ROAD)}, auth=(KEY, SECRET))  # fmt: skip
    assert kept.status_code == 200 and kept.json()["public_id"] == "relative/a"
