"""Microseconds per parse of a typical 4-component delivery path.

Reference, measured in the same run: the same grammar parsed the usual lark way (build a tree,
then a separate ``Transformer.transform`` pass), which is what the tree-less LALR transformer in
``grammar/parse.py`` replaces.

    .venv/bin/python bench/parse_bench.py [--repeat 15] [--number 2000]
"""

from __future__ import annotations

import argparse
import importlib
import platform
import timeit
from collections.abc import Callable

from lark import Lark, Transformer

from grammar import parse_path, parse_transformation
from grammar.parse import _ToAst

PATH = (
    "/demo/image/upload/e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200"
    "/v1/docs/rmv_bgd/dog_couch_orig.png"
)
TRANSFORMATION = "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200"


def _uncached_parse_path(path: str) -> object:
    parse_transformation.cache_clear()
    return parse_path(path)


def best_us(rows: list[tuple[str, Callable[[], object]]], *, repeat: int, number: int) -> list[float]:
    """Best time per call of each row, rows interleaved so load changes on a shared machine hit all alike."""
    best = [float("inf")] * len(rows)
    for _ in range(repeat):
        for index, (_, call) in enumerate(rows):
            best[index] = min(best[index], timeit.timeit(call, number=number) / number * 1e6)
    return best


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--repeat", type=int, default=15)
    options.add_argument("--number", type=int, default=2000)
    args = options.parse_args()

    tree_parser = Lark.open_from_package(
        "grammar", "transformation.lark", parser="lalr", strict=True, maybe_placeholders=False
    )
    # _ToAst belongs to the generated stand-alone module; the same methods on lark's own Transformer.
    methods = {name: getattr(_ToAst, name) for name in ("start", "component", "param", "value")}
    to_ast = type("ToAst", (Transformer,), methods)()
    assert to_ast.transform(tree_parser.parse(TRANSFORMATION)) == parse_transformation(TRANSFORMATION)

    rows: list[tuple[str, Callable[[], object]]] = [
        (
            "reference: lark tree + separate Transformer",
            lambda: to_ast.transform(tree_parser.parse(TRANSFORMATION)),
        ),
        (
            "parse_transformation, uncached (tree-less)",
            lambda: parse_transformation.__wrapped__(TRANSFORMATION),
        ),
        ("parse_transformation, repeated text (cached)", lambda: parse_transformation(TRANSFORMATION)),
        ("parse_path (4 components + version + ext)", lambda: parse_path(PATH)),
        ("parse_path, transformation parse uncached", lambda: _uncached_parse_path(PATH)),
    ]
    compile_plan = getattr(importlib.import_module("transform"), "compile_plan", None)
    if compile_plan is not None:
        rows.append(("parse_path + compile_plan", lambda: compile_plan(parse_path(PATH).components)))
    else:
        print("transform.compile_plan not available: parse+compile row skipped")

    print(
        f"python {platform.python_version()}, {platform.machine()}, repeat={args.repeat} number={args.number}"
    )
    timings = best_us(rows, repeat=args.repeat, number=args.number)
    for (label, _), micros in zip(rows, timings, strict=True):
        print(f"{label:<46} {micros:8.1f} us   x{micros / timings[0]:.2f} of reference")


if __name__ == "__main__":
    main()
