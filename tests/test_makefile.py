"""`make run` serves with the server's own variables when they are set, and `make help` lists every target
(as dry runs: nothing is installed or started)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("PORT", "ORIGINALS", "CUTOUT_PORT",
                                                              "CUTOUT_ORIGINALS", "MAKEFLAGS")}
    done = subprocess.run(["make", "-s", "-C", str(ROOT), *args], env={**base, **env}, capture_output=True,
                          text=True, check=True, timeout=60)
    return done.stdout


def serve_line(text: str) -> str:
    return next(line for line in text.splitlines() if " serve " in line)


def test_run_defaults_to_the_samples_on_8080() -> None:
    text = make("-n", "run")
    assert "--port 8080 " in serve_line(text)
    assert '--originals "${CUTOUT_HOME:-$HOME/.cache/cutout}/originals"' in serve_line(text)
    assert 'test -n "" || test -d' in text  # the samples are copied in (once)


def test_run_honours_cutout_port_and_cutout_originals() -> None:
    text = make("-n", "run", CUTOUT_PORT="9123", CUTOUT_ORIGINALS="/srv/photos")
    assert "--port 9123 " in serve_line(text)
    assert '--originals "/srv/photos"' in serve_line(text)
    assert 'test -n "/srv/photos" ||' in text  # no samples copied into a folder of one's own


def test_run_port_on_the_command_line_wins() -> None:
    assert "--port 9000 " in serve_line(make("-n", "run", "PORT=9000", CUTOUT_PORT="9123"))


def test_help_lists_every_target_and_the_readme_says_so() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert phony is not None
    listed = re.findall(r"^  make (\S+) +\S", make("help"), re.M)
    assert sorted(listed) == sorted(phony.group(1).split())
    assert "make help" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_run_copies_the_samples_once_and_never_over_what_was_changed(tmp_path: Path) -> None:
    """The copy of the samples is made once: copied again on every `make run`, a sample replaced by an
    upload in another format (docs/road as PNG) came back as JPEG, which is tried first and so hid the
    upload, and a sample deleted came back. Runs `make run`'s own copy line, not the server."""
    text = make("-n", "run")
    start = text.index('test -n "" ||')
    copy = text[start:text.index("\ntest -s", start)].replace("\\\n", " ")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CUTOUT_HOME": str(tmp_path / "home")}
    subprocess.run(["sh", "-c", copy], cwd=ROOT, env=env, check=True, timeout=60)
    originals = tmp_path / "home" / "originals"
    assert (originals / "docs" / "road.jpg").is_file() and not (tmp_path / "home" / "originals.part").exists()
    assert not (originals / ".cutout").exists()
    (originals / "docs" / "road.jpg").rename(originals / "docs" / "road.png")  # as an upload replaces it
    (originals / "docs" / "bg_beach.jpg").unlink()  # as the console deletes it
    subprocess.run(["sh", "-c", copy], cwd=ROOT, env=env, check=True, timeout=60)
    assert sorted(p.name for p in (originals / "docs").iterdir()) == ["rmv_bgd", "road.png"]
