"""A real headless browser for the console tests: Debian's ``chromium`` driven by Playwright (the Python
package only: no browser is downloaded), with a fresh profile and every background service of Chromium
off, so the only traffic is the page's. Skips (or fails under CUTOUT_REQUIRE_INTEGRATION=1) when
chromium or playwright is missing; ``.ci/run`` installs chromium."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.conftest import require

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM = Path(os.environ.get("CUTOUT_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def console_server(root: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    """A ``cutout serve`` with the console on (``env`` adds to ``CUTOUT_CONSOLE=1``) over a copy of the
    sample originals in ``root``, for a module's tests; skips without a browser to drive it."""
    require_browser()
    shutil.copytree(SAMPLES, root / "originals")
    process = ServerProcess(root / "originals", root / "cache", env={"CUTOUT_CONSOLE": "1", **env})
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def require_browser() -> None:
    require(CHROMIUM.is_file(), f"chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright package is not installed (pip install -e '.[test]')")


@dataclass
class Session:
    """One browser profile and what its pages asked for."""

    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def page(self, viewport: dict[str, int] = DESKTOP) -> Page:
        page = self.context.new_page()
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        return page


@contextmanager
def chromium(**context_options: Any) -> Iterator[Session]:
    """A fresh Chromium profile (``http_credentials`` and the like go to the context)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="cutout-chromium-")
    try:
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=ARGS, viewport=DESKTOP,
                **context_options,
            )
            session = Session(context)
            context.on("request", lambda request: session.requests.append(request.url))
            try:
                yield session
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
