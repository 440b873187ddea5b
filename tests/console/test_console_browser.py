"""The console in a real browser against a real `cutout serve` with the real model and the Upload/Admin
API: open the page signed in, browse and search the originals, upload samples (file picker, several at
once, and drag and drop) with background removal and wait until the cut-out appears with its confidence,
ask for an on-the-fly cut-out and wait through the 423, type a bad transformation and see the parser's
message, type a good one and check the image's natural size, at desktop and phone width, by keyboard;
and nothing the page loads comes from anywhere but the server. Screenshots go to tests/output/console/
(SAVE_OUTPUT_DIR/console)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.conftest import OUTPUT_DIR, require_model
from tests.console.browser import PHONE, Session, chromium, require_browser
from tests.console.test_snippets import python_url

if TYPE_CHECKING:
    from playwright.sync_api import FileChooser

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
    env = {"CUTOUT_CONSOLE": "1", "CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
           "CUTOUT_RETRY_AFTER": "1", "CUTOUT_ORT_THREADS": "2"}
    process = ServerProcess(originals, root / "cache", env=env)
    try:
        process.wait_ready(path="/readyz")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser(server: ServerProcess) -> Iterator[Session]:
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=20_000)  # the machine may be busy: patience before any check fails
    with chromium(http_credentials={"username": KEY, "password": SECRET}) as session:
        session.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        yield session


def message(page: object) -> str:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    return page.locator("#t-message").inner_text()


def test_browse_search_and_page(server: ServerProcess, browser: Session) -> None:
    from playwright.sync_api import expect

    page = browser.page()
    page.goto(server.url + "/console?page_size=2")
    expect(page.locator("body[data-ready=true]")).to_have_count(1, timeout=20_000)
    grid = page.locator("#grid .thumb")
    expect(grid).to_have_count(2)
    page.click("#more")
    expect(grid).to_have_count(4)
    # Thumbnails are delivery URLs with c_fill and f_auto, and they load.
    src = grid.first.locator("img").get_attribute("src") or ""
    assert src.startswith("/demo/image/upload/c_fill,h_208,w_208/f_auto/v")
    expect(grid.first.locator("img")).to_have_js_property("complete", True)
    assert grid.first.locator("img").evaluate("img => img.naturalWidth") == 208
    page.fill("#prefix", "docs/rmv_bgd/")
    page.press("#prefix", "Enter")
    expect(page.locator("#grid-status")).to_contain_text("2 originals (more below)")
    page.click("#more")
    expect(grid).to_have_count(3)
    assert sorted(grid.locator(".id").all_inner_texts()) == [
        "docs/rmv_bgd/dog_couch_orig", "docs/rmv_bgd/router_orig", "docs/rmv_bgd/woman_orig"]


def test_upload_with_background_removal(server: ServerProcess, browser: Session, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Two files at once through the picker, opened from the keyboard; background removal is on by default.
    chair, woman = tmp_path / "chair.jpg", tmp_path / "woman.jpg"
    shutil.copy(SAMPLES / "docs/rmv_bgd/router_orig.jpg", chair)
    shutil.copy(SAMPLES / "docs/rmv_bgd/woman_orig.jpg", woman)
    page = browser.page()
    choosers: list[FileChooser] = []
    # Listening from the start: the browser intercepts the picker well before the key is pressed.
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(server.url + "/console")
    expect(page.locator("body[data-ready=true]")).to_have_count(1, timeout=20_000)
    assert page.is_checked("#remove-bg")
    page.focus("#drop")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 20
    while not choosers and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(choosers) == 1 and choosers[0].is_multiple()
    choosers[0].set_files([str(chair), str(woman)])
    rows = page.locator("#uploads li")
    expect(rows).to_have_count(2)
    expect(page.locator("#uploads progress").first).to_have_js_property("value", 1, timeout=30_000)
    expect(rows.filter(has_text="removing background")).not_to_have_count(0, timeout=30_000)
    # Another tab opened while a removal is pending lists it as such and follows it until it is done.
    other = browser.page()
    other.goto(server.url + "/console")
    other.wait_for_selector("body[data-ready=true]")
    expect(other.locator("#grid .badge.complete")).to_have_count(2, timeout=180_000)
    other.close()
    for name in ("chair.jpg", "woman.jpg"):
        row = rows.filter(has_text=name)
        expect(row).to_contain_text("background removed · confidence 0.", timeout=180_000)
    badges = page.locator("#grid .badge.complete")
    expect(badges).to_have_count(2)
    expect(badges.first).to_contain_text("cut-out 0.")
    label = page.locator("#grid .thumb[aria-pressed=true]").get_attribute("aria-label") or ""
    assert "background removed, confidence 0." in label
    # The selected upload is now the cut-out: a PNG whose thumbnail and original show transparency.
    expect(page.locator("#before-info")).to_contain_text("png", timeout=20_000)
    page.screenshot(path=str(SHOTS / "uploaded.png"), full_page=True)
    uploaded = page.input_value("#public-id")
    assert uploaded.startswith(("chair", "woman"))
    admin = f"{server.url}/v1_1/demo/resources/image/upload/{uploaded}"
    resource = httpx.get(admin, auth=(KEY, SECRET)).json()
    assert resource["format"] == "png"
    assert resource["info"]["background_removal"]["cloudinary_ai"]["status"] == "complete"

    # Drag and drop, background removal off: a plain upload.
    page.uncheck("#remove-bg")
    data = (SAMPLES / "docs/road.jpg").read_bytes()
    page.evaluate("""([name, bytes]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
        document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""", ["dropped.jpg", list(data)])
    expect(rows.filter(has_text="dropped.jpg")).to_contain_text("uploaded", timeout=30_000)
    expect(page.locator("#public-id")).to_have_value(re.compile(r"^dropped"))
    expect(page.locator("#before-info")).to_contain_text("640 × 427 · jpg", timeout=20_000)
    # Not an image: the Upload API's own refusal shows on the row.
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["just text"], "notes.txt", { type: "text/plain" }));
        document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""")
    expect(rows.filter(has_text="notes.txt")).to_contain_text("failed: ", timeout=30_000)
    page.screenshot(path=str(SHOTS / "uploads-dropped.png"))


def test_cut_out_through_423_bad_and_good_transformations(server: ServerProcess, browser: Session) -> None:
    from playwright.sync_api import expect

    page = browser.page()
    page.goto(server.url + "/console")
    expect(page.locator("body[data-ready=true]")).to_have_count(1, timeout=20_000)
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

    # Every preset renders (the model ran once for this original: its mask is cached).
    for preset in ("colour", "shadow", "underlay", "square"):
        page.click(f"button[data-preset={preset}]")
        text = page.input_value("#transformation")
        expect(page.locator("#after")).to_have_attribute(
            "data-path", re.compile(re.escape(f"/image/upload/{text}/")), timeout=60_000)
        expect(page.locator("#t-message")).to_contain_text("Valid")
        assert page.get_attribute("#after", "data-path") == page.input_value("#url").removeprefix(server.url)
        expect(page.locator("#after-info")).to_contain_text(" · ")
        # The before/after slider only where the result has the original's shape (not the underlay's
        # 700x500 canvas): else its halves would show different regions at different scales.
        if preset in ("colour", "shadow"):
            expect(page.locator("#compare")).to_be_visible()
        else:
            expect(page.locator("#compare")).to_be_hidden()
        page.locator("#builder").screenshot(path=str(SHOTS / f"preset-{preset}.png"))

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
    version = httpx.get(f"{server.url}/v1_1/demo/resources/image/upload/docs/rmv_bgd/dog_couch_orig",
                        auth=(KEY, SECRET)).json()["version"]
    assert url == f"{server.url}/demo/image/upload/e_background_removal/c_fill,g_auto,h_150,w_240/f_webp/" \
                  f"v{version}/docs/rmv_bgd/dog_couch_orig"
    # The Python snippet, run with Cloudinary's SDK, builds the URL shown; Copy puts it on the clipboard.
    assert python_url(page.inner_text("#python")) == url
    page.click("button[data-copy=python]")
    expect(page.locator("#copied")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#python")
    assert ".addTransformation(" in page.inner_text("#javascript")
    assert not [line for line in browser.console if line.startswith("pageerror")], browser.console


def test_presets_and_keyboard_at_phone_width(server: ServerProcess, browser: Session) -> None:
    from playwright.sync_api import expect

    page = browser.page(PHONE)
    page.goto(server.url + "/console")
    expect(page.locator("body[data-ready=true]")).to_have_count(1, timeout=20_000)
    # Keyboard only: from the field before it, Tab to the public id field, type, Enter; then a preset.
    page.focus("#transformation")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "public-id"
    page.keyboard.press("Control+A")
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


def test_no_request_left_the_server(server: ServerProcess, browser: Session) -> None:
    """Last in this module: every request any page above made went to the cutout server (blob: URLs are
    the page's own copies of images it fetched), and the page's policy allows nothing else."""
    assert len(browser.requests) > 20
    outside = [url for url in browser.requests if not url.startswith((server.url + "/", "blob:", "data:"))]
    assert not outside, outside
    policy = httpx.get(server.url + "/console", auth=(KEY, SECRET)).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
