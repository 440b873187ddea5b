"""A multipart body that stops before its closing boundary is a 400 "Malformed form body" in each face's
shape, and nothing is stored. python-multipart's finalize() does not check that the body got to its end:
the Upload API stored the asset (with the fields of an unfinished last part dropped) and the HTTP API
answered ``missing_source`` for a body cut inside its image part."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES, EllipseSegmenter

KEY, SECRET, API_KEY = "form-key", "form-secret", "form-api-key"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
BOUNDARY = "BOUNDARY123"
CONTENT_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    named = f'name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: form-data; {named}\r\n\r\n".encode() + value


def cut_bodies(fields: list[tuple[str, str]], file_field: str) -> dict[str, bytes]:
    """Bodies with the file part last and no closing boundary: ending right after the file, or with a
    later ``tags`` part that never ends."""
    head = b"".join(part(name, value.encode()) + b"\r\n" for name, value in fields)
    after_file = head + part(file_field, ROAD, "road.jpg")
    return {"after-file": after_file, "unfinished-part": after_file + b"\r\n" + part("tags", b"abc")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("form")
    shutil.copytree(SAMPLES, root / "originals")
    return root


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[TestClient]:
    settings = Settings(originals=folder / "originals", cache_dir=folder / "cache", upload=True, api_key=KEY,
                        api_secret=SECRET, api_keys=(API_KEY,), background_removal=False)  # fmt: skip
    app = create_app(settings, segmenter=EllipseSegmenter(), load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("shape", ["after-file", "unfinished-part"])
def test_the_upload_api_stores_nothing(client: TestClient, folder: Path, shape: str) -> None:
    public_id = f"cut/{shape}"
    body = cut_bodies([("public_id", public_id)], "file")[shape]
    response = client.post("/v1_1/demo/image/upload", content=body, headers={**BASIC, **CONTENT_TYPE})
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["message"].startswith("Malformed form body: the body ends before")
    assert not list((folder / "originals" / "cut").glob(f"{shape}.*"))
    assert client.get(f"/v1_1/demo/resources/image/upload/{public_id}", headers=BASIC).status_code == 404
    whole = body.removesuffix(b"\r\n" + part("tags", b"abc")) + f"\r\n--{BOUNDARY}--\r\n".encode()
    stored = client.post("/v1_1/demo/image/upload", content=whole, headers={**BASIC, **CONTENT_TYPE})
    assert stored.status_code == 200 and stored.json()["public_id"] == public_id  # the same, ended


#: (path, headers, the file field, the answer's message as each face shapes it)
FACES: list[tuple[str, dict[str, str], str, Any]] = [
    ("/v1/remove-background", {"X-Api-Key": API_KEY}, "image_file",
     lambda j: j["errors"][0]["code"] == "invalid_body" and j["errors"][0]["detail"]),
    ("/v1.0/removebg", {"X-Api-Key": API_KEY}, "image_file", lambda j: j["errors"][0]["detail"]),
    ("/api/remove", {"X-Api-Key": API_KEY}, "file", lambda j: j["detail"]),  # rembg
    ("/v1/results", {"X-Api-Key": API_KEY}, "image", lambda j: j["detail"]),  # API4AI
    ("/computervision/imageanalysis:segment?api-version=2023-02-01-preview&mode=backgroundRemoval",
     {"Ocp-Apim-Subscription-Key": API_KEY}, "image", lambda j: j["error"]["message"]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "headers", "field", "message"), FACES, ids=[f[0][:25] for f in FACES])
@pytest.mark.parametrize("shape", ["after-file", "unfinished-part"])
def test_the_other_faces_refuse_it_in_their_shape(
    client: TestClient, path: str, headers: dict[str, str], field: str, message: Any, shape: str
) -> None:
    response = client.post(path, content=cut_bodies([], field)[shape], headers={**headers, **CONTENT_TYPE})
    assert 400 <= response.status_code < 500, response.text[:300]
    text = message(response.json())
    assert text and ("Malformed" in text or "not valid multipart" in text), text
