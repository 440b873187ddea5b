"""grammar/ is pure Python: importing it must not pull in image, model or web libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_grammar_imports_no_heavy_modules() -> None:
    code = (
        "import sys, grammar; grammar.parse_path('/demo/image/upload/c_scale,w_4/x.jpg');"
        "heavy = sorted(m for m in ('pyvips', 'onnxruntime', 'starlette', 'numpy') if m in sys.modules);"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""


def test_grammar_file_ships_with_the_package() -> None:
    assert (ROOT / "grammar" / "transformation.lark").is_file()
