"""nginx/cutout.conf in front of a real cutout server: what nginx caches and what it passes through."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, free_port
from tests.conftest import require, require_model

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    require(found is not None, "nginx not installed")
    assert found is not None
    return found


def render_config(listen: int, upstream: str, cache: Path) -> str:
    text = (ROOT / "nginx" / "cutout.conf").read_text()
    for name, value in {"CUTOUT_LISTEN": f"127.0.0.1:{listen}", "CUTOUT_UPSTREAM": upstream,
                        "CUTOUT_NGINX_CACHE": str(cache)}.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text
    return text


def main_config(prefix: Path) -> str:
    """A non-root-safe nginx.conf: everything under ``prefix``, in the foreground."""
    temp = {name: prefix / name for name in ("client", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would otherwise drop to nobody
    return (
        f"{user}daemon off;\nworker_processes 1;\nworker_rlimit_nofile 8192;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"  # as Debian's nginx.conf
        f"  client_body_temp_path {temp['client']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n  include {prefix}/cutout.conf;\n}}\n"
    )


@dataclass
class Stack:
    nginx: str
    origin: str


def start_stack(tmp_path: Path, env: dict[str, str], originals: Path = SAMPLES) -> Iterator[Stack]:
    binary = nginx_binary()
    server = ServerProcess(originals, tmp_path / "cache", env=env)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    (prefix / "cutout.conf").write_text(render_config(port, f"127.0.0.1:{server.port}", prefix / "cache"))
    (prefix / "nginx.conf").write_text(main_config(prefix))
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        server.wait_ready(path="/readyz", timeout=300)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (prefix / "error.log").read_text()
                time.sleep(0.1)
        yield Stack(url, server.url)
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        server.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from start_stack(tmp_path, {"CUTOUT_BACKGROUND_REMOVAL": "0"})


def test_hits_errors_and_headers_through_nginx(stack: Stack) -> None:
    url = stack.nginx + "/demo/image/upload/c_scale,w_120/docs/road"
    first = httpx.get(url)
    assert first.status_code == 200 and first.headers["x-cache-status"] == "MISS"
    second = httpx.get(url)
    assert second.headers["x-cache-status"] == "HIT"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["x-cache-status"] == "HIT"
    # A byte range: from nginx's cache (which keeps whole answers), and from cutout on a miss.
    for path in ("c_scale,w_120", "c_scale,w_121"):
        piece = httpx.get(f"{stack.nginx}/demo/image/upload/{path}/docs/road", headers={"Range": "bytes=-20"})
        whole = httpx.get(f"{stack.nginx}/demo/image/upload/{path}/docs/road")
        assert piece.status_code == 206 and piece.content == whole.content[-20:], path
        size = len(whole.content)
        assert piece.headers["content-range"] == f"bytes {size - 20}-{size - 1}/{size}"

    bad = httpx.get(stack.nginx + "/demo/image/upload/w_abc/docs/road")
    assert bad.status_code == 400 and "w_abc" in bad.headers["x-cld-error"]
    for answer in (first, second, head, bad):  # once: nginx's own, cutout's hidden
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
    assert bad.headers["access-control-expose-headers"] == \
        "X-Cld-Error,Content-Length,Content-Range,Accept-Ranges"
    assert httpx.get(stack.nginx + "/demo/image/upload/w_abc/docs/road").headers["x-cache-status"] == "HIT"

    auto = stack.nginx + "/demo/image/upload/c_scale,w_90/f_auto/docs/road"
    webp = httpx.get(auto, headers={"Accept": "text/html,image/webp,*/*;q=0.8"})
    plain = httpx.get(auto, headers={"Accept": "*/*"})
    assert webp.headers["content-type"] == "image/webp"
    assert plain.headers["content-type"] != "image/webp"
    again = httpx.get(auto, headers={"Accept": "image/webp,*/*"})
    assert again.headers["content-type"] == "image/webp" and again.headers["x-cache-status"] == "HIT"
    refused = httpx.get(auto, headers={"Accept": "image/avif;q=0, image/webp; q=0.0, */*;q=0.8"})
    assert refused.headers["content-type"] == plain.headers["content-type"]  # as cutout reads q=0
    avif = httpx.get(auto, headers={"Accept": "image/avif;q=0.9,image/webp;q=0"})
    assert avif.headers["content-type"] == "image/avif"
    # dpr_auto and w_auto: the hints are in the key, so a DPR 2 phone never gets the DPR 1 entry.
    hinted = stack.nginx + "/demo/image/upload/c_scale,w_90/dpr_auto/docs/road"
    sizes = {}
    for dpr in ("1", "2", "1", "2"):
        answer = httpx.get(hinted, headers={"Sec-CH-DPR": dpr})
        assert answer.status_code == 200 and answer.headers["vary"] == "Sec-CH-DPR, DPR"
        sizes.setdefault(dpr, set()).add((answer.headers["etag"], len(answer.content)))
        assert "Sec-CH-DPR" in answer.headers["accept-ch"]
    assert len(sizes["1"]) == len(sizes["2"]) == 1 and sizes["1"] != sizes["2"]
    assert httpx.get(hinted, headers={"Sec-CH-DPR": "2"}).headers["x-cache-status"] == "HIT"
    width = stack.nginx + "/demo/image/upload/c_scale,w_auto:100:300/docs/road"
    narrow = httpx.get(width, headers={"Sec-CH-Width": "150"})
    wide = httpx.get(width, headers={"Sec-CH-Width": "450"})
    fallback = httpx.get(width)
    assert len({narrow.headers["etag"], wide.headers["etag"], fallback.headers["etag"]}) == 3
    # A URL without auto answers every device alike: one entry, whatever hints come.
    first_hint = httpx.get(auto, headers={"Accept": "*/*", "Sec-CH-DPR": "3"})
    assert first_hint.headers["x-cache-status"] == "HIT" and "accept-ch" not in first_hint.headers
    assert httpx.get(stack.nginx + "/metrics").status_code == 404
    asked = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "x-requested-with"}  # fmt: skip
    preflight = httpx.options(url, headers=asked)  # a page's fetch with a header of its own asks first
    assert preflight.status_code == 204, preflight.headers
    assert preflight.headers["access-control-allow-headers"] == "x-requested-with"
    posted = httpx.post(url)  # other methods stop at nginx, with the 405 cutout would give them
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD, OPTIONS", posted.headers
    assert posted.headers["x-cld-error"].startswith("Method POST not allowed")
    assert "x-cache-status" not in posted.headers


def test_nginx_bounds_the_request_headers(stack: Stack) -> None:
    """The recipe's own limits, before anything reaches cutout: a header line over 16 kB, a URL over
    16 kB; and its client timeouts are set (10 s for headers: cutout's 15 s is the last line)."""
    big = httpx.get(stack.nginx + "/healthz", headers={"X-Big": "a" * 20_000})
    assert big.status_code == 400
    long_url = httpx.get(stack.nginx + "/demo/image/upload/docs/" + "a" * 20_000)
    assert long_url.status_code == 414
    assert httpx.get(stack.nginx + "/healthz", headers={"X-Ok": "a" * 8_000}).status_code == 200
    for recipe in ("cutout.conf", "cluster.conf"):
        text = (ROOT / "nginx" / recipe).read_text()
        for directive in ("client_header_timeout 10s;", "large_client_header_buffers 4 16k;",
                          "client_body_timeout 30s;", "send_timeout 30s;"):  # fmt: skip
            assert directive in text, (recipe, directive)


def test_the_api_through_nginx_is_not_cached_and_cutout_sets_the_body_limit(tmp_path: Path) -> None:
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_API_OPEN": "1", "CUTOUT_MAX_UPLOAD_BYTES": "3M"}
    originals = tmp_path / "originals"  # the API stores what it is sent among the originals
    shutil.copytree(SAMPLES, originals)
    for stack in start_stack(tmp_path, env, originals):
        url = stack.nginx + "/v1/remove-background"
        # Past nginx's 1 MB default body limit, within cutout's: cutout answers (no model here: 501).
        body = (SAMPLES / "docs" / "road.jpg").read_bytes() + b"\0" * (2 << 20)
        for _ in range(2):
            answer = httpx.post(url, content=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
            assert answer.status_code == 501, answer.text
            assert answer.json()["errors"][0]["code"] == "model_unavailable"
            assert "x-cache-status" not in answer.headers
        big = httpx.post(url, content=b"\xff\xd8\xff" + b"\0" * (4 << 20),
                         headers={"Content-Type": "image/jpeg"})
        assert big.status_code == 413 and big.json()["errors"][0]["code"] == "file_too_large"
        assert httpx.get(stack.nginx + "/openapi.json").json()["openapi"].startswith("3.1")


def test_a_replaced_entry_is_served_though_nginx_keeps_descriptors_open(tmp_path: Path) -> None:
    """open_file_cache keeps the cache file's descriptor: when the entry expires and is fetched again
    (the original was replaced meanwhile), nginx must notice the new file and serve the new image."""
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    for stack in start_stack(tmp_path, {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_MAX_AGE": "1"}, originals):
        url = stack.nginx + "/demo/image/upload/c_scale,w_100/docs/road"
        first = httpx.get(url)
        assert httpx.get(url).headers["x-cache-status"] == "HIT"
        shutil.copy(originals / "docs" / "bg_beach.jpg", originals / "docs" / "road.jpg")
        assert httpx.get(url).content == first.content  # still fresh for nginx: the old copy
        time.sleep(2.2)
        renewed = httpx.get(url)
        assert renewed.headers["x-cache-status"] in ("EXPIRED", "REVALIDATED", "STALE", "UPDATING")
        deadline = time.monotonic() + 10
        while True:  # with background updates the stale copy may be served once more
            current = httpx.get(url)
            if current.content != first.content or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert current.status_code == 200 and current.content != first.content
        assert current.headers["etag"] != first.headers["etag"]
        assert httpx.get(url).headers["x-cache-status"] == "HIT"


def test_attachments_and_placeholders_keep_their_headers_in_nginxs_cache(tmp_path: Path) -> None:
    """nginx stores each answer's headers with it, under the URL: a download (fl_attachment) keeps its
    Content-Disposition on a HIT and the plain URL never gets one; a default image delivered for a
    missing original keeps its X-Cld-Error and its short max-age, and once the original is uploaded
    nginx serves it as soon as that runs out."""
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    for stack in start_stack(tmp_path, {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_MAX_AGE": "3"}, originals):
        plain = stack.nginx + "/demo/image/upload/c_scale,w_70/docs/road.jpg"
        download = stack.nginx + "/demo/image/upload/c_scale,fl_attachment:my%20road,w_70/docs/road.jpg"
        for status in ("MISS", "HIT"):
            for url, header in ((plain, None), (download, 'attachment; filename="my road.jpg"')):
                answer = httpx.get(url)
                assert answer.status_code == 200 and answer.headers["x-cache-status"] == status, url
                assert answer.headers.get("content-disposition") == header, url

        url = stack.nginx + "/demo/image/upload/d_docs:road.jpg/c_scale,w_50/nobody.jpg"
        placeholder = httpx.get(url)
        assert placeholder.status_code == 200 and placeholder.headers["x-cache-status"] == "MISS"
        warning = "Resource not found - nobody (default image docs/road delivered)"
        assert placeholder.headers["x-cld-error"] == warning
        assert placeholder.headers["cache-control"] == "public, max-age=3"  # CUTOUT_MAX_AGE, under 60
        hit = httpx.get(url)
        assert hit.headers["x-cache-status"] == "HIT" and hit.headers["x-cld-error"] == warning
        shutil.copy(originals / "docs" / "bg_beach.jpg", originals / "nobody.jpg")
        deadline = time.monotonic() + 20
        while True:  # fresh for nginx up to 3 s; then revalidated (a stale copy may be served once more)
            current = httpx.get(url)
            if current.content != placeholder.content or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert current.status_code == 200 and "x-cld-error" not in current.headers
        assert current.content != placeholder.content


@pytest.mark.slow
def test_423_is_not_cached_and_the_200_is(tmp_path: Path) -> None:
    require_model()
    for stack in start_stack(tmp_path, {}):
        path = "/demo/image/upload/e_background_removal/c_scale,w_200/docs/rmv_bgd/dog_couch_orig"
        url = stack.nginx + path
        first = httpx.get(url)
        assert first.status_code == 423 and first.headers["cache-control"] == "no-store"
        deadline = time.monotonic() + 180
        response = first
        while response.status_code == 423 and time.monotonic() < deadline:
            time.sleep(0.3)
            response = httpx.get(url)
            assert response.headers["x-cache-status"] != "HIT" or response.status_code == 200
        assert response.status_code == 200
        assert httpx.get(url).headers["x-cache-status"] == "HIT"


def test_the_upload_api_through_nginx(tmp_path: Path) -> None:
    """Cloudinary's SDK through the recipe: a chunked upload (its Content-Range and X-Unique-Upload-Id pass),
    a rename, a DELETE with a JSON body, and the client-side list, which nginx caches for its minute."""
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    from tests.upload.conftest import CLOUD, ENV, KEY, SECRET

    env = {**ENV, "CUTOUT_BACKGROUND_REMOVAL": "0"}
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    road = SAMPLES / "docs" / "road.jpg"
    for stack in start_stack(tmp_path, env, originals):
        cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=stack.nginx,
                          secure=False)  # fmt: skip
        try:
            up = cloudinary.uploader.upload_large(str(road), public_id="via/nginx", chunk_size=30_000,
                                                  resource_type="image", tags=["front"])  # fmt: skip
            assert up["bytes"] == road.stat().st_size and up["url"].startswith(stack.nginx)
            assert cloudinary.uploader.rename("via/nginx", "via/proxy")["public_id"] == "via/proxy"
            listed = httpx.get(stack.nginx + "/image/list/front.json")
            assert [r["public_id"] for r in listed.json()["resources"]] == ["via/proxy"]
            again = httpx.get(stack.nginx + "/image/list/front.json")
            assert listed.headers["x-cache-status"] == "MISS" and again.headers["x-cache-status"] == "HIT"
            gone = cloudinary.api.delete_resources(["via/proxy"])
            assert gone["deleted"] == {"via/proxy": "deleted"}
        finally:
            cloudinary.reset_config()


def test_every_api_face_passes_through_nginx_and_the_console_does_not(tmp_path: Path) -> None:
    """The drop-in paths (remove.bg, rembg, Azure, Perfect Corp, API4AI, Runware's POST and WebSocket)
    reach cutout through the recipe, uncached and with the TLS scheme forwarded: each answers in its own
    shape (no model here: its 'not available'), not nginx's 405 for a POST."""
    import websockets.sync.client

    key = "nginx-key"
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_API_KEYS": key, "CUTOUT_CONSOLE": "1",
           "CUTOUT_API_KEY": "console-key", "CUTOUT_API_SECRET": "console-secret"}  # fmt: skip
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    bearer = {"Authorization": f"Bearer {key}"}
    for stack in start_stack(tmp_path, env, originals):
        asked = [
            ("/v1.0/removebg", {"headers": {"X-Api-Key": key}, "files": {"image_file": ("a.jpg", road)}}),
            ("/api/remove", {"headers": bearer, "files": {"file": ("a.jpg", road)}}),
            ("/computervision/imageanalysis:segment?api-version=2023-02-01-preview&mode=backgroundRemoval",
             {"headers": {"Ocp-Apim-Subscription-Key": key, "Content-Type": "image/jpeg"}, "content": road}),
            ("/v1/results", {"headers": {"X-Api-Key": key}, "files": {"image": ("a.jpg", road)}}),
            ("/v1", {"headers": bearer, "json": [{"taskType": "imageBackgroundRemoval",
                                                  "taskUUID": str(uuid.uuid4()), "inputImage": "x"}]}),
        ]  # fmt: skip
        for path, kwargs in asked:
            answer = httpx.post(stack.nginx + path, timeout=60, **kwargs)
            assert answer.status_code != 405 and "x-cache-status" not in answer.headers, (path, answer.text)
            assert answer.headers["content-type"].startswith("application/json"), (path, answer.text)
        files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road)}]
        upload = httpx.post(stack.nginx + "/s2s/v2.0/file/sod", headers=bearer, json={"files": files})
        assert upload.status_code == 200, upload.text
        [put] = upload.json()["data"]["files"][0]["requests"]
        assert put["url"].startswith(stack.nginx + "/s2s/"), put  # the client's Host, port included
        sent = httpx.put(put["url"], headers=put["headers"], content=road)
        assert sent.status_code != 405 and sent.headers["content-type"].startswith("application/json")

        with websockets.sync.client.connect(stack.nginx.replace("http", "ws", 1) + "/v1") as socket:
            socket.send(json.dumps([{"taskType": "authentication", "apiKey": key}]))
            assert "connectionSessionUUID" in socket.recv(timeout=30)

        # The console stays off the CDN-facing port, signed in or not (on cutout's own port it answers).
        console = {"Authorization": "Basic " + base64.b64encode(b"console-key:console-secret").decode()}
        for path in ("/console", "/console/config", "/console/static/js/main.js"):
            assert httpx.get(stack.nginx + path, headers=console).status_code == 404, path
        assert httpx.post(stack.nginx + "/console/sign", json={}, headers=console).status_code == 404
        assert httpx.get(stack.origin + "/console", headers=console).status_code == 200
