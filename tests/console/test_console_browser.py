"""The console in a real browser against a real `cutout serve` with the real model: open the page signed
in, pick an original, ask for a cut-out and wait through the 423 until it appears, type a bad
transformation and see the parser's message, type a good one and check the image's natural size, at
desktop and phone width, by keyboard; and nothing the page loads comes from anywhere but the server.
Screenshots go to tests/output/console/ (SAVE_OUTPUT_DIR/console)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.conftest import OUTPUT_DIR, require_model
from tests.console.browser import PHONE, Session, chromium, require_browser

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KEY, SECRET = "console-test-key", "console-test-secret"
SHOTS = OUTPUT_DIR / "console"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_browser()
    require_model()
    root = tmp_path_factory.mktemp("console")
    originals = root / "originals"
    shutil.copytree(SAMPLES, originals)
    env = {"CUTOUT_CONSOLE": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
           "CUTOUT_RETRY_AFTER": "1", "CUTOUT_ORT_THREADS": "2"}
    process = ServerProcess(originals, root / "cache", env=env)
    try:
        process.wait_ready(path="/readyz")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser(server: ServerProcess) -> Iterator[Session]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(http_credentials={"username": KEY, "password": SECRET}) as session:
        yield session
    # Every request any page made went to the cutout server (blob: URLs are the page's own images).
    outside = [url for url in session.requests if not url.startswith((server.url + "/", "blob:", "data:"))]
    assert not outside, outside


def message(page: object) -> str:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    return page.locator("#t-message").inner_text()


def test_cut_out_through_423_bad_and_good_transformations(server: ServerProcess, browser: Session) -> None:
    from playwright.sync_api import expect

    page = browser.page()
    page.goto(server.url + "/console")
    page.fill("#public-id", "docs/rmv_bgd/dog_couch_orig")
    page.press("#public-id", "Enter")
    expect(page.locator("#before-info")).to_contain_text("×", timeout=20_000)

    # The cut-out preset: the first answer is 423, shown as "generating", then the image appears.
    page.click("button[data-preset=cutout]")
    expect(page.locator("#generating")).to_be_visible(timeout=20_000)
    expect(page.locator("#after-info")).to_contain_text("png", timeout=120_000)
    expect(page.locator("#generating")).to_be_hidden()
    expect(page.locator("#compare")).to_be_visible()
    page.fill("#compare-range", "30")
    page.screenshot(path=str(SHOTS / "cutout-desktop.png"), full_page=True)
    natural = page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]")
    before = page.eval_on_selector("#before", "img => [img.naturalWidth, img.naturalHeight]")
    assert natural == before  # a cut-out keeps the original's size

    # A bad transformation: the parser's own message and column, as the delivery URL answers.
    bad = "e_background_removal/c_scale,,w_400"
    page.fill("#transformation", bad)
    expect(page.locator("#t-message")).to_contain_text("column 30", timeout=10_000)
    delivered = httpx.get(f"{server.url}/demo/image/upload/{bad}/docs/rmv_bgd/dog_couch_orig")
    assert delivered.headers["x-cld-error"] in message(page)
    assert page.get_attribute("#transformation", "aria-invalid") == "true"
    page.screenshot(path=str(SHOTS / "bad-transformation.png"))

    # A good one: the image's natural size is what the transformation asks for.
    page.fill("#transformation", "e_background_removal/c_fill,g_auto,h_150,w_240/f_webp")
    expect(page.locator("#after-info")).to_contain_text("240 × 150 · webp", timeout=60_000)
    assert page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]") == [240, 150]
    url = page.input_value("#url")
    assert url == f"{server.url}/demo/image/upload/e_background_removal/c_fill,g_auto,h_150,w_240/f_webp/" \
                  "docs/rmv_bgd/dog_couch_orig"
    assert "CloudinaryImage(\"docs/rmv_bgd/dog_couch_orig\")" in page.inner_text("#python")
    assert ".addTransformation(" in page.inner_text("#javascript")
    assert not [line for line in browser.console if line.startswith("pageerror")], browser.console


def test_presets_and_keyboard_at_phone_width(server: ServerProcess, browser: Session) -> None:
    from playwright.sync_api import expect

    page = browser.page(PHONE)
    page.goto(server.url + "/console")
    # Keyboard only: Tab to the public id field, type, Enter; Tab on to a preset and press it.
    page.focus("#public-id")
    page.keyboard.type("docs/road")
    page.keyboard.press("Enter")
    expect(page.locator("#before-info")).to_contain_text("×", timeout=20_000)
    page.focus("button[data-preset=square]")
    page.keyboard.press("Enter")
    expect(page.locator("#after-info")).to_contain_text("300 × 300", timeout=30_000)
    assert page.input_value("#transformation") == "c_fill,g_auto,h_300,w_300"
    # Nothing is wider than the phone's screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)


def test_signed_out_browser_is_asked_to_sign_in(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/console")
    assert response.status_code == 401 and "Basic" in response.headers["www-authenticate"]
    assert SECRET not in httpx.get(server.url + "/console/config", auth=(KEY, SECRET)).text
