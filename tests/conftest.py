"""Shared test helpers: optional parts skip unless CUTOUT_REQUIRE_INTEGRATION=1, then they fail."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pyvips

if TYPE_CHECKING:
    from tests.app.server_process import ServerProcess
    from transform.segment import IsNetSegmenter

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CUTOUT_SHARED_DIR", ROOT.parent / "shared"))
OUTPUT_DIR = Path(os.environ.get("SAVE_OUTPUT_DIR", ROOT / "tests" / "output"))


def live_images() -> int:
    """How many ``pyvips.Image`` objects are alive: with the collector off, the ones a reference cycle
    would keep until its next full pass (a stopped or failed render's images)."""
    return sum(isinstance(thing, pyvips.Image) for thing in gc.get_objects())


def require(condition: bool, reason: str) -> None:
    """Skip (or fail under CUTOUT_REQUIRE_INTEGRATION=1) when an optional part is missing."""
    if condition:
        return
    if os.environ.get("CUTOUT_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"required integration part missing: {reason}")
    pytest.skip(reason)


def require_model() -> None:
    """Skip (or fail) unless the model is where a server started now would look: wherever
    ``CUTOUT_HOME`` points, read at call time (a path fixed at import named ~/.cache/cutout and skipped
    the real-model server tests when CI set CUTOUT_HOME elsewhere)."""
    from transform.segment.checks import preferred_model_path

    path = preferred_model_path()
    require(path.is_file(), f"model not found at {path} (run `cutout fetch-model`)")


def require_face_model() -> None:
    """Skip (or fail) unless `cutout fetch-model` has put the face detector where CUTOUT_HOME says."""
    from transform.faces.paths import face_model_path

    path = face_model_path()
    require(path.is_file(), f"face model not found at {path} (run `cutout fetch-model`)")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    path = SHARED / "eval"
    require(path.is_dir(), f"evaluation images not found at {path}")
    return path


@pytest.fixture(scope="session")
def segmenter() -> IsNetSegmenter:
    """One real IS-Net session for the whole run; skips (or fails) when the model is not fetched."""
    from transform.segment import ModelMissing, load_segmenter

    try:
        return load_segmenter()
    except ModelMissing as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="session", autouse=True)
def samples_stay_untouched() -> Iterator[None]:
    """Tests serve ``cutout/samples`` read-only; one that writes there (the HTTP API stores what it is
    sent among the originals) leaves files in the checkout that later tests copy as originals."""
    samples = Path(__file__).resolve().parents[1] / "cutout" / "samples"
    before = sorted(str(p) for p in samples.rglob("*"))
    yield
    after = sorted(str(p) for p in samples.rglob("*"))
    assert after == before, f"a test wrote into {samples}: {sorted(set(after) - set(before))[:5]}"


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test leaves ``os.environ`` as it found it. ``cutout serve`` run in-process (tests/test_cli_errors)
    exports its settings and PROMETHEUS_MULTIPROC_DIR for uvicorn's worker processes; left set, a later
    test's /metrics reads the (empty) multiprocess folder instead of this process's counters."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """`cutout serve` processes a test starts (it appends them); each is stopped afterwards."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()
