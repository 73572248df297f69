"""The rule parser: the syntax tree, precedence, literals, and syntax errors that name line and column."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.segment import rules
from services.segment.rules import (
    And,
    Bare,
    Call,
    Compare,
    InList,
    InTrait,
    Literal,
    Name,
    Not,
    Or,
    Pos,
    RuleError,
)


def problem(text: str) -> str:
    with pytest.raises(RuleError) as caught:
        rules.parse(text)
    assert len(caught.value.problems) == 1
    return str(caught.value)


def shape(node: rules.Node) -> object:
    """The tree without positions: nested tuples that read like the rule."""
    if isinstance(node, Or):
        return ("or", *(shape(i) for i in node.items))
    if isinstance(node, And):
        return ("and", *(shape(i) for i in node.items))
    if isinstance(node, Not):
        return ("not", shape(node.item))
    if isinstance(node, Compare):
        return (node.op, _operand(node.left), _operand(node.right))
    if isinstance(node, Bare):
        return _operand(node.operand)
    if isinstance(node, InList):
        return ("not in" if node.negated else "in", _operand(node.subject), tuple(_operand(v) for v in node.values))
    if isinstance(node, InTrait):
        return ("not has" if node.negated else "has", node.trait.name, _operand(node.item))
    assert isinstance(node, Call)
    return (node.function.name, *(_operand(a) for a in node.args))


def _operand(operand: Name | Literal) -> object:
    return operand.name if isinstance(operand, Name) else operand.value


def test_and_binds_tighter_than_or() -> None:
    tree = rules.parse("recency_days <= 90 and monetary > 1000 or frequency >= 5")
    assert shape(tree) == ("or", ("and", ("<=", "recency_days", 90), (">", "monetary", 1000)), (">=", "frequency", 5))
    tree = rules.parse("a or b and c")
    assert shape(tree) == ("or", "a", ("and", "b", "c"))


def test_not_binds_tighter_than_and_and_brackets_override() -> None:
    assert shape(rules.parse("not a and b")) == ("and", ("not", "a"), "b")
    assert shape(rules.parse("not (a and b)")) == ("not", ("and", "a", "b"))
    assert shape(rules.parse("(a or b) and c")) == ("and", ("or", "a", "b"), "c")


def test_chains_become_one_node_per_operator() -> None:
    assert shape(rules.parse("a and b and c or d or e")) == ("or", ("and", "a", "b", "c"), "d", "e")


def test_lists_membership_and_calls() -> None:
    tree = rules.parse('lifecycle in ("at_risk", "dormant") and "Home" in top_categories and in_segment("vip")')
    assert shape(tree) == ("and", ("in", "lifecycle", ("at_risk", "dormant")), ("has", "top_categories", "Home"),
                           ("in_segment", "vip"))
    assert shape(rules.parse('region not in ("France")')) == ("not in", "region", ("France",))
    assert shape(rules.parse('"Toys" not in top_categories')) == ("not has", "top_categories", "Toys")


def test_literals_numbers_texts_booleans() -> None:
    tree = rules.parse("""x == -1.5 or y == 'it\\'s' or z == “curly” or w == TRUE or v == false""")
    assert isinstance(tree, Or)
    values = [item.right.value for item in tree.items if isinstance(item, Compare) and isinstance(item.right, Literal)]
    assert values == [Decimal("-1.5"), "it's", "curly", True, False]


def test_keywords_and_names_are_case_insensitive_but_texts_are_not() -> None:
    tree = rules.parse('Frequency >= 2 AND Region == "France" Or NOT has_orders')
    assert shape(tree) == ("or", ("and", (">=", "frequency", 2), ("==", "region", "France")), ("not", "has_orders"))


def test_names_that_start_with_a_keyword_are_names() -> None:
    assert shape(rules.parse("android and notes or index")) == ("or", ("and", "android", "notes"), "index")


def test_positions_are_one_based_line_and_column() -> None:
    tree = rules.parse("frequency >= 2\n  and monetary > 10")
    assert isinstance(tree, And)
    second = tree.items[1]
    assert isinstance(second, Compare)
    assert second.left.pos == Pos(2, 7)
    assert second.op_pos == Pos(2, 16)


@pytest.mark.parametrize(("text", "message"), [
    ("frequency = 2", "line 1, column 11: use '==' to compare; a single '=' is not an operator"),
    ("frequency >=", "line 1, column 13: the rule ends too early; expected a value (a trait, a number, "
                     "a text in quotes, true or false)"),
    ("frequency >= and views > 1", "line 1, column 14: found 'and'; expected a value"),
    ("frequency >= 2 views > 1", "line 1, column 16: found 'views'; conditions are joined with 'and' or 'or'"),
    ("(frequency >= 2", "line 1, column 16: the rule ends before a ')' closes the bracket opened earlier"),
    ("monetary > 1,000", "line 1, column 13: write numbers without thousands separators: 1000, not 1,000"),
    ('region == "France', "line 1, column 11: a text is missing its closing quote"),
    ("has_orders && views > 1", "line 1, column 12: use 'and' to combine conditions"),
    ("region in ['France']", "line 1, column 11: write lists in round brackets"),
    ("   ", "line 1, column 1: the rule is empty"),
    ("frequency >= 2 and\n\n  views >", "line 3, column 10: the rule ends too early"),
    ("not", "line 1, column 4: the rule ends too early; expected a condition"),
])
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    assert problem(text).startswith(message)


def test_a_rule_error_is_an_invalid_argument() -> None:
    from services.common.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        rules.parse("x ==")


def test_long_chains_parse_and_deep_nesting_is_refused_politely() -> None:
    chain = rules.parse(" or ".join(["frequency > 1"] * 2000))
    assert isinstance(chain, Or) and len(chain.items) == 2000
    assert shape(rules.parse("(" * 3000 + "has_orders" + ")" * 3000)) == "has_orders"
    assert problem("not " * 150 + "has_orders") == (
        "line 1, column 1: the rule nests brackets or 'not' more than 100 levels deep")
