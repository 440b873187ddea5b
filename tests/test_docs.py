"""The README's "URL language" section is checked against the code: the parameter table is generated
(``python -m transform.ops.docs --write README.md`` refreshes it), and every example URL it shows is run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import transform
from grammar import parse_path
from grammar.errors import BadRequest
from grammar.signature import verify_delivery
from transform.ops import CROP_MODES, EFFECTS, PARAMS
from transform.ops.docs import BEGIN, END, markdown_table, shown_key, with_table

README = Path(__file__).resolve().parents[1] / "README.md"
REFRESH = "run `python -m transform.ops.docs --write README.md`"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## URL language\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def part(title: str) -> str:
    """The paragraph(s) of the section from ``**title**`` to the next bold title."""
    text = section()
    start = text.index(f"**{title}**")
    following = text.find("\n**", start + 1)
    return text[start:] if following < 0 else text[start:following]


def generated_block() -> str:
    text = section()
    return text[text.index(BEGIN) + len(BEGIN) + 1 : text.index(END)]


def check(path: str) -> None:
    """What the origin checks before it opens any file: path, transformation, output format."""
    parsed = parse_path(path)
    plan = transform.compile_plan(parsed.components)
    transform.negotiate_format(plan, extension=parsed.extension, accept=None)


def test_readme_table_is_the_generated_one() -> None:
    assert generated_block() == markdown_table(), f"the README's parameter table is stale: {REFRESH}"


def test_every_registered_parameter_effect_and_mode_is_in_the_table() -> None:
    block = generated_block()
    missing = [f"{key}_" for key in PARAMS if f"| `{shown_key(key)}_` |" not in block]
    missing += [f"e_{name}" for name in EFFECTS if f"| `e_{name}` |" not in block]
    missing += [f"c_{mode}" for mode in CROP_MODES if f"| `c_{mode}` |" not in block]
    assert not missing, f"not in the README: {missing}; {REFRESH}"


def test_with_table_replaces_only_the_generated_block() -> None:
    text = f"before\n{BEGIN}\nold rows\n{END}\nafter\n"
    assert with_table(text) == f"before\n{BEGIN}\n{markdown_table()}{END}\nafter\n"
    with pytest.raises(ValueError, match="no"):
        with_table("no markers")


def error_examples() -> list[tuple[str, str]]:
    lines = [line.strip() for line in part("Errors.").splitlines() if line.startswith("    ")]
    return list(zip(lines[::2], lines[1::2], strict=True))


@pytest.mark.parametrize(("path", "answer"), error_examples(), ids=[path for path, _ in error_examples()])
def test_error_examples_are_what_the_server_says(path: str, answer: str) -> None:
    status, _, message = answer.partition("  ")
    with pytest.raises(BadRequest) as caught:
        check(path)
    assert (str(caught.value.status), caught.value.public) == (status, message)


def unsupported_examples() -> list[str]:
    return re.findall(r"`(/[^`]+)`", part("Not supported"))


def test_there_are_unsupported_examples() -> None:
    assert len(unsupported_examples()) >= 20


@pytest.mark.parametrize("path", unsupported_examples())
def test_unsupported_examples_are_refused_with_400(path: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check(path)
    assert caught.value.status == 400


def test_signature_example_verifies() -> None:
    [path] = re.findall(r"`(/image/upload/s--[^`]+)`", part("Signatures."))
    parsed = parse_path(path)
    assert verify_delivery(parsed, "my-secret")
    assert not verify_delivery(parsed, "another-secret")


def test_the_dpr_example_of_a_length_past_its_bound_is_refused_naming_it() -> None:
    """The example was `e_blur:1500/dpr_2.0`, which is refused first for having no w_ or h_ to multiply."""
    [example] = re.findall(r"\(`([^`]+)` is a blur of 3000, over 2000\)", part("Device pixel ratio."))
    with pytest.raises(BadRequest) as caught:
        check(f"/image/upload/{example}/docs/road.jpg")
    assert "e_blur:1500: blur strength 1500 times dpr_2.0 is 3000" in caught.value.public


def test_condition_and_variable_examples_are_accepted() -> None:
    examples = re.findall(r"`(/image/upload/[^`]+)`", part("Conditions and variables."))
    assert len(examples) >= 5
    for path in examples:
        check(path)


@pytest.mark.parametrize("command", ["render", "remove-bg", "fetch-model", "serve", "eager", "worker"])
def test_the_command_table_shows_every_option(command: str) -> None:
    """README's "Command line" row of each command names all its options (fetch-model's --from-dist, the
    way to a model without npm's registry, and eager's --originals and --cache-dir were missing)."""
    import argparse
    import importlib

    from cutout.cli import COMMANDS

    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    options = [action.option_strings for action in parser._actions if action.option_strings]
    text = README.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith(f"| `cutout {command} ")
            or line.startswith(f"| `cutout {command}`")]
    assert len(rows) == 1, rows
    missing = [names[-1] for names in options if "--help" not in names
               and not any(re.search(rf"(?<![\w-]){name}\b", rows[0]) for name in names)]
    assert not missing, f"README's command table lacks {missing} for cutout {command}"
