"""The import direction grammar -> transform -> cache -> cutout, the segmenter behind its seam, and no
import circle inside transform/segment/ (every module there can be imported and tested on its own)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("grammar", "transform", "cache", "cutout")


def modules(package: str) -> dict[str, Path]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports(path: Path) -> set[str]:
    """Modules ``path`` imports, deferred imports included; ``from a.b import c`` counts as a.b and a.b.c
    (c may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_lower_layers_never_import_higher_ones() -> None:
    for rank, layer in enumerate(LAYERS):
        higher = LAYERS[rank + 1 :]
        for name, path in modules(layer).items():
            wrong = {m for m in imports(path) if m.split(".")[0] in higher}
            assert not wrong, f"{name} imports {sorted(wrong)}"


def test_the_engine_reaches_the_segmenter_only_through_the_seam() -> None:
    for name, path in modules("transform").items():
        if name.startswith("transform.segment") or name == "transform.seam":
            continue
        wrong = {m for m in imports(path) if m.startswith("transform.segment")}
        assert not wrong, f"{name} imports {sorted(wrong)}; go through transform/seam.py"


def test_no_import_circle_in_segment() -> None:
    """Deferred imports count: an import moved into a function to dodge a circle is still one."""
    inside = modules("transform/segment")
    graph = {name: {m for m in imports(path) if m in inside} - {name} for name, path in inside.items()}
    graph["transform.segment"] = set()  # the package's __init__ re-exports; a submodule naming it is fine
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, "import circle: " + " -> ".join((*trail[trail.index(name):], name))
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, (*trail, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())
