"""The QA pass's attack in a real browser: sign in to the console (Chromium then holds the API key and
secret as HTTP Basic credentials for the server and attaches them to every request to it), then open a
page of another site that posts forms and ``fetch``es to the Upload and Admin API. Nothing it asks for
happens, the answers say why, and the console's own page keeps browsing and uploading. No model."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.console.browser import chromium, console_server
from tests.fetch.servers import answer, serving

pytestmark = pytest.mark.integration

KEY, SECRET = "cross-key", "cross-secret"
#: An image as a data URI: the Upload API takes one as ``file``, so a plain HTML form can send it.
IMAGE = "data:image/jpeg;base64," + base64.b64encode((SAMPLES / "docs/road.jpg").read_bytes()).decode()


#: What another site's pages post, each as a form its page submits at once (a top-level navigation:
#: Chromium attaches the credentials it holds for the server to it), as (path, fields, refusal).
CALLS = {
    "overwrite": ("/v1_1/demo/image/upload", {"public_id": "docs/road", "file": IMAGE}, 403),
    "create": ("/v1_1/demo/image/upload", {"public_id": "evil/new", "file": IMAGE}, 403),
    "destroy": ("/v1_1/demo/image/destroy", {"public_id": "docs/road"}, 403),
    "rename": ("/v1_1/demo/image/rename", {"from_public_id": "docs/bg_beach", "to_public_id": "evil/b"}, 403),
    "tags": ("/v1_1/demo/image/tags", {"command": "add", "tag": "evil", "public_ids": "docs/road"}, 403),
    "update": ("/v1_1/demo/resources/image/upload/docs/road", {"tags": "evil"}, 403),
}


def _form_page(target: str, path: str, fields: dict[str, str]) -> bytes:
    inputs = "".join(f'<input name="{name}" value="{value}">' for name, value in fields.items())
    return f"""<!doctype html><html><body>
<form id="f" method="POST" action="{target}{path}" enctype="multipart/form-data">{inputs}</form>
<script>document.getElementById("f").submit()</script></body></html>""".encode()


def _fetch_page(target: str) -> bytes:
    """The same calls posted blind by ``fetch`` with ``credentials: "include"``."""
    calls = json.dumps([[path, fields] for path, fields, _ in CALLS.values()])
    return f"""<!doctype html><html><body><script>
Promise.all({calls}.map(([path, fields]) => {{
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch("{target}" + path, {{method: "POST", body: form, credentials: "include", mode: "no-cors"}})
    .catch(() => null);
}})).then(() => {{ document.title = "done"; }});
</script></body></html>""".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
           "CUTOUT_BACKGROUND_REMOVAL": "0"}  # fmt: skip
    yield from console_server(tmp_path_factory.mktemp("console-cross"), env)


@pytest.fixture(scope="module")
def evil_site(server: ServerProcess) -> Iterator[str]:
    """The other site: 127.0.0.2 is loopback too, and another site than 127.0.0.1 to a browser."""
    pages = {f"/{name}": _form_page(server.url, path, fields) for name, (path, fields, _) in CALLS.items()}
    pages["/fetch"] = _fetch_page(server.url)

    with serving("127.0.0.2") as site:
        for path, page in pages.items():
            site.routes[path] = answer(200, page, "text/html")
        yield site.origin


def _asset(server: ServerProcess, public_id: str) -> dict[str, Any] | None:
    got = httpx.get(f"{server.url}/v1_1/demo/resources/image/upload/{public_id}", auth=(KEY, SECRET))
    return dict(got.json()) if got.status_code == 200 else None


def test_another_site_cannot_use_the_consoles_credentials(server: ServerProcess, evil_site: str) -> None:
    from playwright.sync_api import expect

    road = _asset(server, "docs/road")
    assert road is not None
    with chromium() as session:
        sent: list[tuple[str, str, str | None]] = []
        answers: dict[str, list[int]] = {}
        context = session.context
        context.on("request", lambda r: sent.append((r.url, r.method, r.header_value("authorization"))))
        context.on("response", lambda r: answers.setdefault(r.url, []).append(r.status))
        # Signed in as an operator would be: credentials given once (here in the URL), which Chromium
        # keeps for the server and sends with every later request to it.
        console = session.page()
        host = server.url.removeprefix("http://")
        assert console.goto(f"http://{KEY}:{SECRET}@{host}/console/config").status == 200
        console.goto(f"{server.url}/console")
        expect(console.locator("body[data-ready=true]")).to_have_count(1, timeout=20_000)
        expect(console.locator("#grid .thumb")).not_to_have_count(0, timeout=20_000)  # the Admin API

        evil = session.page()
        for name, (path, _, status) in CALLS.items():
            evil.goto(f"{evil_site}/{name}")
            evil.wait_for_url(server.url + path, timeout=20_000)
            assert answers[server.url + path][-1] == status, (name, answers)
            refusal = evil.locator("body").inner_text()
            assert "from another site's page (Sec-Fetch-Site says it is cross-site)" in refusal, refusal
        # The browser did lend those pages the operator's credentials: the server refused them.
        lent = [auth for url, method, auth in sent if method == "POST" and "/v1_1/" in url]
        assert len(lent) == len(CALLS) and all(a and a.startswith("Basic ") for a in lent), sent
        evil.goto(f"{evil_site}/fetch")
        expect(evil).to_have_title("done", timeout=20_000)

        after = _asset(server, "docs/road")
        assert after is not None and (after["version"], after["etag"]) == (road["version"], road["etag"])
        assert after["tags"] == []
        assert _asset(server, "evil/new") is None and _asset(server, "evil/b") is None
        assert _asset(server, "docs/bg_beach") is not None

        # The console's own page still uploads (signed by /console/sign, posted with the credentials).
        console.bring_to_front()
        if console.is_visible("#remove-bg"):
            console.uncheck("#remove-bg")
        data = (SAMPLES / "docs/road.jpg").read_bytes()
        console.evaluate(
            """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
            ["own.jpg", list(data)],
        )
        expect(console.locator("#uploads li").filter(has_text="own.jpg")).to_contain_text(
            "uploaded", timeout=30_000
        )
