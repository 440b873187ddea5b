"""The Upload and Admin API under random requests: whatever the route, method, parameters, headers and
body, the answer is JSON in Cloudinary's shape (``{"error": {"message": ...}}`` on failure) with a
status its SDKs map (never a 500 for a client's mistake), and the app keeps answering. Requests are
signed with HTTP Basic half the time, so that they get past authentication to the parameters."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from cutout.upload.errors import MAPPED
from tests.app.helpers import SAMPLES

KEY, SECRET = "fuzz-key", "fuzz-secret"
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
FILES = {"road": ROAD, "truncated": ROAD[:100], "empty": b"", "text": b"not an image"}
ROUTES = [
    ("POST", "/v1_1/demo/image/upload"), ("POST", "/v1_1/demo/auto/upload"),
    ("POST", "/v1_1/demo/image/explicit"), ("POST", "/v1_1/demo/image/destroy"),
    ("POST", "/v1_1/demo/image/rename"), ("POST", "/v1_1/demo/image/tags"),
    ("POST", "/v1_1/demo/image/context"), ("GET", "/v1_1/demo/resources/image"),
    ("GET", "/v1_1/demo/resources/image/upload"), ("DELETE", "/v1_1/demo/resources/image/upload"),
    ("GET", "/v1_1/demo/resources/image/upload/docs/road"), ("POST", "/v1_1/demo/resources/image/upload/x"),
    ("POST", "/v1_1/demo/resources/image/upload/restore"), ("GET", "/v1_1/demo/resources/image/tags/t"),
    ("DELETE", "/v1_1/demo/resources/image/tags/t"), ("GET", "/v1_1/demo/ping"),
    ("GET", "/image/list/t.json"), ("PUT", "/v1_1/demo/image/upload"), ("GET", "/v1_1/demo/usage"),
    ("OPTIONS", "/v1_1/demo/image/upload"), ("OPTIONS", "/v1_1/demo/resources/image"),
]  # fmt: skip
NAMES = ["file", "public_id", "public_ids", "public_ids[]", "from_public_id", "to_public_id", "folder",
         "tags", "tag", "context", "command", "eager", "background_removal", "overwrite", "use_filename",
         "notification_url", "prefix", "max_results", "next_cursor", "versions", "type", "to_type",
         "invalidate", "backup", "timestamp", "signature", "api_key", "upload_preset", "nope"]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["", "1", "0", "true", "a/b", "../x", "/abs", "x" * 300, "k=v|w", "add", "remove_all",
                     "cloudinary_ai", "c_scale,w_10", "w_abc", "-5", "999999", "http://127.0.0.1/h",
                     "DATA_URI", "\u00e9\u202e", "a,b"]),
    st.text(max_size=40),
)  # fmt: skip
RANGES = st.one_of(st.none(), st.sampled_from(["bytes 0-9/20", "bytes 10-19/20", "bytes 0-19/20", "bytes x",
                                               "bytes 5-1/3", "bytes 0-999/99999999999"]))  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SAMPLES, root / "originals")
    config = Settings(originals=root / "originals", cache_dir=root / "cache", upload=True, api_key=KEY,
                      api_secret=SECRET, background_removal=False, resource_list=True,
                      max_upload_bytes=1 << 20)  # fmt: skip
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as test_client:
        yield test_client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    params=st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6),
    authed=st.booleans(),
    content_range=RANGES,
    upload_id=st.one_of(st.none(), st.sampled_from(["u1", ""])),
    as_json=st.booleans(),
    with_file=st.sampled_from([None, "road", "truncated", "empty", "text"]),
)
def test_random_requests_answer_in_cloudinarys_shape(
    client: TestClient,
    route: tuple[str, str],
    params: list[tuple[str, str]],
    authed: bool,
    content_range: str | None,
    upload_id: str | None,
    as_json: bool,
    with_file: str | None,
) -> None:
    method, path = route
    data_uri = "data:image/jpeg;base64," + base64.b64encode(ROAD).decode()
    data_uri = data_uri if method != "GET" else "data:,"  # a query string has a length limit (the client's)
    params = [(k, data_uri if v == "DATA_URI" else v) for k, v in params]
    content = FILES.get(with_file) if with_file else None
    headers = {}
    if authed:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    if content_range is not None:
        headers["Content-Range"] = content_range
    if upload_id is not None:
        headers["X-Unique-Upload-Id"] = upload_id
    if method == "GET":
        answer = client.get(path, params=tuple(params), headers=headers)
    elif as_json and content is None:
        answer = client.request(method, path, content=json.dumps(dict(params)),
                                headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    else:
        files = {"file": ("f.jpg", content)} if content is not None else None
        data = [(k, v) for k, v in params if not (files and k == "file")]
        answer = client.request(method, path, data=dict(data), files=files, headers=headers)
    assert answer.status_code < 500 or answer.status_code in {501, 503}, (answer.status_code, answer.text)
    if path.startswith("/v1_1/") and answer.status_code != 204:  # 204: a CORS preflight's empty answer
        body = answer.json()
        assert answer.status_code in MAPPED | {200}, answer.status_code
        if answer.status_code != 200:
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert client.get("/v1_1/demo/ping", auth=(KEY, SECRET)).json() == {"status": "ok"}
