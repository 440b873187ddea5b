"""The values of if_ (conditions) and of $variables and arithmetic (expressions): text -> tree, the tree
written back as the same text, and syntax errors that say where and what was expected."""

from __future__ import annotations

import pytest

from grammar import parse_condition, parse_expression, parse_transformation
from grammar.ast import Comparison, Condition, Conversion, Lookup, Name, Number, Operation, Text, Variable
from grammar.errors import TransformationSyntaxError

W, H, IW = Name("w"), Name("h"), Name("iw")


def num(text: str) -> Number:
    return Number(float(text), text)


EXPRESSIONS = [
    ("400", num("400")),
    ("-0.5", num("-0.5")),
    ("$w", Variable("$w")),
    ("iw_div_2", Operation(IW, "div", num("2"))),
    # mul before add, left to right within a level
    ("1_add_2_mul_3", Operation(num("1"), "add", Operation(num("2"), "mul", num("3")))),
    ("8_div_2_div_2", Operation(Operation(num("8"), "div", num("2")), "div", num("2"))),
    ("2_sub_1_sub_1", Operation(Operation(num("2"), "sub", num("1")), "sub", num("1"))),
    # pow before mul, and from the right
    ("2_mul_3_pow_2", Operation(num("2"), "mul", Operation(num("3"), "pow", num("2")))),
    ("2_pow_3_pow_2", Operation(num("2"), "pow", Operation(num("3"), "pow", num("2")))),
    ("7_mod_4", Operation(num("7"), "mod", num("4"))),
    ("!Arial_12!", Text("Arial_12")),
    ("!a%20b!", Text("a%20b")),
    ("!!", Text("")),
    ("ctx:!x_pos!_to_f", Conversion(Lookup("ctx", Text("x_pos")), "f")),
    ("$w_to_i_mul_2", Operation(Conversion(Variable("$w"), "i"), "mul", num("2"))),
    ("3:4", Number(0.75, "3:4")),
]


@pytest.mark.parametrize(("text", "tree"), EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expressions(text: str, tree: object) -> None:
    parsed = parse_expression(text)
    assert parsed == tree
    assert str(parsed) == text


CONDITIONS = [
    ("w_gt_1000", ((Comparison(W, "gt", num("1000")),),)),
    ("w_ne_h", ((Comparison(W, "ne", H),),)),
    ("ar_lte_3:4", ((Comparison(Name("ar"), "lte", Number(0.75, "3:4")),),)),
    ("!sale!_in_tags", ((Comparison(Text("sale"), "in", Name("tags")),),)),
    ("!a:b!_nin_tags", ((Comparison(Text("a:b"), "nin", Name("tags")),),)),
    ("ctx:!kind!_eq_!shoes!", ((Comparison(Lookup("ctx", Text("kind")), "eq", Text("shoes")),),)),
    ("w_gt_iw_div_2", ((Comparison(W, "gt", Operation(IW, "div", num("2"))),),)),
    # and binds tighter than or
    (
        "w_gt_1_or_h_gt_2_and_w_lt_3",
        (
            (Comparison(W, "gt", num("1")),),
            (Comparison(H, "gt", num("2")), Comparison(W, "lt", num("3"))),
        ),
    ),
]


@pytest.mark.parametrize(("text", "alternatives"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_conditions(text: str, alternatives: object) -> None:
    parsed = parse_condition(text)
    assert parsed == Condition(alternatives)  # type: ignore[arg-type]
    assert str(parsed) == text


def test_lte_is_not_lt_followed_by_e() -> None:
    assert parse_condition("w_lte_5").alternatives[0][0].operator == "lte"
    assert parse_condition("w_gte_5").alternatives[0][0].operator == "gte"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("w_gtt_5", "unexpected '_gtt_5' at character 2; expected a comparison (_eq_,"),
        ("w", "unexpected end of text at character 2; expected a comparison"),
        ("_gt_5", "unexpected '_gt_5' at character 1; expected a number, a ratio (3:4), a $variable"),
        ("w_gt_5_and", "unexpected '_and' at character 7"),
        ("ctx:key_eq_!a!", "unexpected 'key_eq' at character 5; expected !key! (ctx:!key!)"),
        ("ar_gt_3:0", "ratio 3:0 divides by zero"),
    ],
)
def test_condition_errors(text: str, message: str) -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_condition(text)
    assert caught.value.public.startswith(message), caught.value.public


def test_an_expression_has_no_comparison() -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_expression("iw_gt_4")
    assert caught.value.public == (
        "unexpected '_gt_4' at character 3; expected an operator (_add_, _sub_, _mul_, _div_, _mod_, "
        "_pow_, _to_f, _to_i), the end"
    )


def test_the_transformation_grammar_keeps_expressions_as_raw_values() -> None:
    """The first pass only finds the parameters; their values are parsed again where they are known to
    hold conditions or expressions."""
    (component,) = parse_transformation("if_fc_gt_2,$z_5,$foo_$z_mul_2,c_scale,w_$foo_mul_200")
    assert [(p.key, p.value) for p in component.params] == [
        ("if", "fc_gt_2"), ("$z", "5"), ("$foo", "$z_mul_2"), ("c", "scale"), ("w", "$foo_mul_200"),
    ]  # fmt: skip
    (component,) = parse_transformation("if_ctx:!x_pos!_gte_!1.5!,$t_!a%20b!")
    params = [(p.key, p.value) for p in component.params]
    assert params == [("if", "ctx:!x_pos!_gte_!1.5!"), ("$t", "!a%20b!")]
