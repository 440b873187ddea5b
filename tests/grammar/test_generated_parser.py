"""The committed stand-alone parser (grammar/_lalr.py) is the grammar as it stands, built in strict mode,
and parses exactly as lark building the grammar afresh does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import lark
import pytest

from grammar import _lalr, generate
from grammar.parse import _ToAst, parse_condition, parse_expression, parse_transformation, parser

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).parent / "cases"


def test_generated_parser_is_from_the_current_grammar() -> None:
    recorded = re.search(r"^# grammar sha256: ([0-9a-f]{64})$", generate.TARGET.read_text(), re.M)
    assert recorded, "grammar/_lalr.py has no grammar hash: regenerate it with `python -m grammar.generate`"
    assert recorded[1] == generate.grammar_digest(), (
        "grammar/transformation.lark changed after grammar/_lalr.py was generated: "
        "run `python -m grammar.generate` and commit both"
    )


def fresh_parser() -> lark.Lark:
    """The grammar built now, in strict mode (interegular proves no two terminals collide), with the
    same transformer methods as the generated parser's."""
    methods = {name: value for name, value in vars(_ToAst).items() if not name.startswith("_")}
    transformer = type("FreshToAst", (lark.Transformer,), methods)()
    return lark.Lark(generate.GRAMMAR.read_text(), **generate.OPTIONS, transformer=transformer)


def corpus() -> list[str]:
    texts = []
    for path in sorted(CASES.glob("*.txt")):
        texts += [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return texts


BAD = ["c_scale,,w_4", "w_4//c_fit", "w_", "w400", "W_400", "w_4 ", "w_<x>", "\xfc_3"]
#: The values of if_ and of $variables, parsed by the grammar's other two start rules.
CONDITIONS = ["w_gt_1000", "ar_gt_3:4_and_w_gt_300_or_fc_gte_1", "!sale!_in_tags", "ctx:!kind!_eq_!!"]
EXPRESSIONS = ["iw_div_2", "3_add_$a_mul_4_pow_2_sub_-1", "ctx:!x_pos!_to_f_mul_w", "!Arial_12!", "1.5"]


def test_generated_parser_agrees_with_a_fresh_strict_build() -> None:
    fresh = fresh_parser()
    texts = corpus()
    assert len(texts) > 50
    for text in texts:
        assert parse_transformation(text) == fresh.parse(text, start="start"), text
    for text in BAD:
        with pytest.raises(lark.exceptions.UnexpectedInput) as theirs:
            fresh.parse(text, start="start")
        with pytest.raises(_lalr.UnexpectedInput) as ours:
            parser().parse(text, start="start")
        assert summary(ours.value) == summary(theirs.value), text
    for text in CONDITIONS:
        assert parse_condition(text) == fresh.parse(text, start="condition"), text
    for text in EXPRESSIONS:
        assert parse_expression(text) == fresh.parse(text, start="expression"), text


def summary(exc: Any) -> tuple[str, int, list[str]]:
    """What syntax_error reads from an UnexpectedInput (either module's)."""
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
    return type(exc).__name__, exc.column, sorted(expected)


def test_parsing_does_not_import_lark() -> None:
    """The point of generating it: start-up imports only the stand-alone module."""
    code = "import sys, grammar; grammar.parse_transformation('c_scale,w_4'); print('lark' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_generate_writes_a_module_with_the_hash(tmp_path: Path, monkeypatch: Any) -> None:
    """(Not compared byte for byte with the committed one: lark orders some tables by string hash.)"""
    monkeypatch.setattr(generate, "TARGET", tmp_path / "_lalr.py")
    assert generate.main() == 0
    text = (tmp_path / "_lalr.py").read_text()
    assert text.startswith(generate.header(generate.grammar_digest()))
    assert "def Lark_StandAlone" in text
