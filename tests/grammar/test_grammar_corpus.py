"""Golden corpus: each line of cases/<name>.txt parses to the AST stored in cases/<name>.json.

Regenerate after a deliberate grammar change with
``UPDATE_GOLDEN=1 pytest tests/grammar/test_grammar_corpus.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grammar import parse_transformation

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def ast_of(text: str) -> list[list[list[str | int]]]:
    return [[[p.key, p.value, p.column] for p in c.params] for c in parse_transformation(text)]


def lines(corpus: Path) -> list[str]:
    return [line for line in corpus.read_text().splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("corpus", sorted(CASES.glob("*.txt")), ids=lambda path: path.stem)
def test_corpus(corpus: Path) -> None:
    actual = {text: ast_of(text) for text in lines(corpus)}
    golden = corpus.with_suffix(".json")
    if UPDATE:
        entries = ",\n".join(f" {json.dumps(text)}: {json.dumps(ast)}" for text, ast in actual.items())
        golden.write_text("{\n" + entries + "\n}\n")
    assert golden.is_file(), f"no golden file {golden.name}; run with UPDATE_GOLDEN=1"
    assert actual == json.loads(golden.read_text())


def test_every_corpus_line_round_trips() -> None:
    for corpus in CASES.glob("*.txt"):
        for text in lines(corpus):
            assert "/".join(c.raw for c in parse_transformation(text)) == text
