"""The distribution is complete: every third-party module the code imports is a declared runtime
dependency, and (slow) the wheel installed into a fresh virtual environment, without the test extras,
runs every command's --help and a real render of a sample."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import pyvips

from cutout.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grammar", "transform", "cache", "cutout")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The `scale` extra's clients (boto3, redis) are imported only by the backends that settings choose
    # (cache/s3.py, cache/redis_state.py, cutout/worker.py), never on the default path.
    requirements = [*project["dependencies"], *project["optional-dependencies"]["scale"]]
    return {_normal(re.split(r"[\[<>=!~;\s]", req, maxsplit=1)[0]) for req in requirements}


def third_party_imports() -> dict[str, str]:
    """Top-level module -> one file that imports it, for modules outside the standard library."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_a_runtime_dependency() -> None:
    distributions = packages_distributions()
    wanted = declared()
    missing = {
        module: where
        for module, where in third_party_imports().items()
        if not {_normal(d) for d in distributions.get(module, [module])} & wanted
    }
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_the_wheel_installs_and_runs_without_the_test_extras(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and egg-info there
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                 str(source)], tmp_path)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("cutout-*.whl")
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    python, cutout = venv / "bin" / "python", venv / "bin" / "cutout"
    installed = run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path, timeout=1500)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # Outside the checkout, so only the installed packages can be imported.
    work = tmp_path / "work"
    work.mkdir()
    assert run([str(python), "-c", "import pytest"], work).returncode != 0, "the test extras came along"
    for command in ["--help", *(f"{name} --help" for name in COMMANDS)]:
        shown = run([str(cutout), *command.split()], work)
        assert shown.returncode == 0 and "usage: cutout" in shown.stdout, (command, shown.stderr[-2000:])
    samples = run([str(python), "-c", "import cutout, pathlib; print(pathlib.Path(cutout.__file__).parent)"],
                  work).stdout.strip()
    road = Path(samples) / "samples" / "docs" / "road.jpg"
    assert road.is_file(), "the samples are not in the wheel"
    page = Path(samples) / "console" / "static"
    assert (page / "index.html").is_file() and (page / "js" / "main.js").is_file(), "the console's page"
    rendered = run([str(cutout), "render", "c_scale,w_64/e_grayscale", str(road), "-o", "road.png"], work)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    image = pyvips.Image.new_from_file(str(work / "road.png"))
    assert (image.width, image.get("vips-loader")) == (64, "pngload")
    # eager --server imports httpx: a closed port must be a reported failure, not a missing module.
    eager = subprocess.run([str(cutout), "eager", "--server", "http://127.0.0.1:9", "--timeout", "5"],
                           cwd=work, input="c_scale,w_10 docs/road\n", capture_output=True, text=True,
                           timeout=60, check=False)
    assert eager.returncode == 1 and "cannot connect to --server" in eager.stderr, eager.stderr[-2000:]
    assert "ModuleNotFoundError" not in eager.stderr
