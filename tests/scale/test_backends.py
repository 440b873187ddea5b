"""The scale-out backends stay optional: without boto3 and redis-py (the `cutout[scale]` extra) the
one-machine server, the commands' help and the settings all work, and asking for a backend says what
to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("redis", "boto3", "botocore"):
            raise ImportError("no module named " + name)
sys.meta_path.insert(0, Block())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_default_path_imports_neither_client(tmp_path: Path) -> None:
    done = run(f"""
import cutout.app, cutout.service, cutout.schedule, cutout.worker
from cutout.cli import main
from cutout.settings import load_settings
from cache import DerivativeCache
from cutout.service import Service
settings = load_settings({{"CUTOUT_ORIGINALS": "cutout/samples", "CUTOUT_CACHE_DIR": "{tmp_path}"}})
Service.open(settings, DerivativeCache("{tmp_path}"), segmenter=None).close()
try:
    main(["worker", "--help"])
except SystemExit as exc:
    assert exc.code == 0
""")
    assert done.returncode == 0, done.stderr


def test_a_scale_setting_without_the_extra_names_it() -> None:
    done = run("""
from cutout.settings import load_settings
from cutout.backends import open_stores
from cache import DerivativeCache
import tempfile
folder = tempfile.mkdtemp()
settings = load_settings({"CUTOUT_ORIGINALS": "cutout/samples", "CUTOUT_CACHE_DIR": folder,
                          "CUTOUT_STATE": "redis://127.0.0.1:1/0"})
open_stores(settings, DerivativeCache(folder))
""")
    assert done.returncode != 0
    assert "pip install 'cutout[scale]'" in done.stderr and "CUTOUT_STATE" in done.stderr
