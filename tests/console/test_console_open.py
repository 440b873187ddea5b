"""The console with no secret set, on loopback, in a real browser: open without signing in, uploads
off and saying why, the builder working on any original (its underlay preset on another), and a server
without the model answering background removal with its 501 under the result."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.app.server_process import ServerProcess
from tests.conftest import OUTPUT_DIR
from tests.console.browser import PHONE, chromium, console_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from console_server(tmp_path_factory.mktemp("console-open"), {"CUTOUT_BACKGROUND_REMOVAL": "0"})


def test_open_console_without_uploads_or_model(server: ServerProcess) -> None:
    from playwright.sync_api import expect

    with chromium() as session:
        page = session.page(PHONE)
        page.goto(server.url + "/console")
        expect(page.locator("#upload-off")).to_contain_text("CUTOUT_UPLOAD=1", timeout=20_000)
        expect(page.locator("#cloud")).to_contain_text("background removal is off")
        expect(page.locator("#drop")).to_be_hidden()
        expect(page.locator("#search")).to_be_hidden()  # shown, it searched nothing: no listing to search
        page.fill("#public-id", "docs/road")
        page.press("#public-id", "Enter")
        expect(page.locator("#before-info")).to_contain_text("640 × 427 · jpg", timeout=20_000)
        page.fill("#transformation", "c_scale,w_0.5/e_grayscale")
        expect(page.locator("#after-info")).to_contain_text("320 × 214 · jpg", timeout=20_000)
        page.click("button[data-preset=cutout]")
        expect(page.locator("#after-info")).to_contain_text("501", timeout=20_000)
        # No listing to take an underlay from: a sample other than the original (docs/road was laid under
        # itself); its layer is found (the check is valid) and, without the model, the cut-out is a 501.
        page.click("button[data-preset=underlay]")
        expect(page.locator("#transformation")).to_have_value(re.compile(r"/u_docs:bg_beach/"))
        expect(page.locator("#t-message")).to_contain_text("Valid: ")
        expect(page.locator("#after-info")).to_contain_text("501", timeout=20_000)
        page.fill("#public-id", "docs/bg_beach")
        page.press("#public-id", "Enter")
        expect(page.locator("#before-info")).to_contain_text("1000 × 872", timeout=20_000)
        page.click("button[data-preset=underlay]")
        expect(page.locator("#transformation")).to_have_value(re.compile(r"/u_docs:road/"))
        OUTPUT_DIR.joinpath("console").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT_DIR / "console" / "open-no-model.png"), full_page=True)
        assert not [line for line in session.console if line.startswith("pageerror")], session.console
        outside = [u for u in session.requests if not u.startswith((server.url + "/", "blob:", "data:"))]
        assert not outside, outside
