"""Checks a parsed rule against the trait catalogue and the known segments, giving a typed condition."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.segment import rules
from services.segment.rules import Literal, Name, Operand, Pos, Problem, RuleError
from services.segment.traits import TRAITS, Kind, Trait

ORDER_OPS = frozenset({"<", "<=", ">", ">="})
EQUALITY_OPS = frozenset({"==", "!="})
# `1000 < monetary` is `monetary > 1000`.
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
FUNCTIONS = ("in_segment",)
Value = Decimal | str | bool


# ---- the typed condition tree the evaluator runs ----

@dataclass(frozen=True, slots=True)
class TraitCompare:
    trait: Trait
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class TraitsCompare:
    left: Trait
    op: str
    right: Trait


@dataclass(frozen=True, slots=True)
class TraitIn:
    trait: Trait
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class ListHas:
    trait: Trait
    value: str
    negated: bool


@dataclass(frozen=True, slots=True)
class Flag:
    trait: Trait


@dataclass(frozen=True, slots=True)
class InSegment:
    name: str


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Negate:
    item: Condition


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = TraitCompare | TraitsCompare | TraitIn | ListHas | Flag | InSegment | Const | Negate | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule that passed every check: what to evaluate and what it reads."""

    text: str
    condition: Condition
    traits: frozenset[str]
    segments: frozenset[str]


def compile_rule(text: str, segment_exists: Callable[[str], bool], segment_names: Iterable[str] = ()) -> Rule:
    """Parses and checks; RuleError lists every problem found, each with its position."""
    checker = _Checker(segment_exists, list(segment_names))
    condition = checker.condition(rules.parse(text))
    if checker.problems:
        raise RuleError(sorted(checker.problems, key=lambda p: (p.pos.line, p.pos.column)))
    return Rule(text, condition, frozenset(checker.traits), frozenset(checker.segments))


# ---- messages ----

def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def _kind_phrase(trait: Trait) -> str:
    return {
        Kind.NUMBER: "a number",
        Kind.MONEY: "an amount of money (in currency units)",
        Kind.TEXT: "a text",
        Kind.FLAG: "yes/no",
        Kind.TEXT_LIST: "a list of texts",
    }[trait.kind]


def _literal_phrase(literal: Literal) -> str:
    if isinstance(literal.value, bool):
        return f"true/false ({literal.text})"
    if isinstance(literal.value, Decimal):
        return f"the number {literal.text}"
    return f"the text {literal.text}"


def _usage(trait: Trait) -> str:
    """How the trait is meant to be used, as an example."""
    if trait.kind is Kind.FLAG:
        return f"write {trait.name}, not {trait.name}, or {trait.name} == true"
    if trait.kind is Kind.TEXT_LIST:
        return f"write \"Home\" in {trait.name}"
    if trait.kind is Kind.TEXT:
        example = trait.choices[0] if trait.choices else "..."
        return f"write {trait.name} == \"{example}\" or {trait.name} in (\"{example}\", ...)"
    return f"compare it with a number, e.g. {trait.name} >= 2"


class _Checker:
    """Walks the syntax tree once, collecting every problem rather than stopping at the first."""

    def __init__(self, segment_exists: Callable[[str], bool], segment_names: list[str]) -> None:
        self.segment_exists = segment_exists
        self.segment_names = segment_names
        self.problems: list[Problem] = []
        self.traits: set[str] = set()
        self.segments: set[str] = set()

    def fail(self, pos: Pos, message: str) -> Const:
        self.problems.append(Problem(pos, message))
        return Const(False)

    def trait(self, name: Name, other: Operand | None = None) -> Trait | None:
        trait = TRAITS.get(name.name)
        if trait is not None:
            self.traits.add(trait.name)
            return trait
        other_trait = TRAITS.get(other.name) if isinstance(other, Name) else None
        if other_trait is not None and other_trait.kind is Kind.TEXT:
            # `lifecycle == at_risk`: a value written without quotes reads as a trait name.
            self.fail(name.pos, f"'{name.text}' is not a trait; if it is a value, put it in quotes: \"{name.text}\"")
        elif name.name in FUNCTIONS:
            self.fail(name.pos, f"{name.name} is a function: write {name.name}(\"name\")")
        else:
            hint = _suggest(name.name, TRAITS) or "; the traits are listed in the rule guide (RULES.md)"
            self.fail(name.pos, f"unknown trait '{name.text}'{hint}")
        return None

    def condition(self, node: rules.Node) -> Condition:
        if isinstance(node, rules.Or):
            return AnyOf(tuple(self.condition(item) for item in node.items))
        if isinstance(node, rules.And):
            return AllOf(tuple(self.condition(item) for item in node.items))
        if isinstance(node, rules.Not):
            return Negate(self.condition(node.item))
        if isinstance(node, rules.Bare):
            return self.bare(node)
        if isinstance(node, rules.Compare):
            return self.compare(node)
        if isinstance(node, rules.InList):
            return self.in_list(node)
        if isinstance(node, rules.InTrait):
            return self.in_trait(node)
        return self.call(node)

    def bare(self, node: rules.Bare) -> Condition:
        operand = node.operand
        if isinstance(operand, Literal):
            if isinstance(operand.value, bool):
                return Const(operand.value)
            return self.fail(operand.pos, f"{_literal_phrase(operand)} alone is not a condition")
        trait = self.trait(operand)
        if trait is None:
            return Const(False)
        if trait.kind is not Kind.FLAG:
            return self.fail(operand.pos, f"'{trait.name}' alone is not a condition; {_usage(trait)}")
        return Flag(trait)

    def compare(self, node: rules.Compare) -> Condition:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Literal) and isinstance(right, Literal):
            return self.fail(node.pos, "this compares two fixed values; one side must be a trait")
        if isinstance(left, Literal):
            left, right, op = right, left, FLIPPED[op]
        assert isinstance(left, Name)
        trait = self.trait(left, right)
        other = self.trait(right, left) if isinstance(right, Name) else None
        if trait is None or (isinstance(right, Name) and other is None):
            return Const(False)
        if trait.kind is Kind.TEXT_LIST:
            return self.fail(left.pos, f"'{trait.name}' is a list of texts; {_usage(trait)}")
        if op in ORDER_OPS and trait.kind in (Kind.TEXT, Kind.FLAG):
            return self.fail(node.op_pos, f"'{trait.name}' is {_kind_phrase(trait)}: '{op}' does not apply; "
                                          f"{_usage(trait)}")
        if other is not None:
            return self.compare_traits(node, trait, op, other)
        assert isinstance(right, Literal)
        value = self.value_for(trait, right)
        if value is None:
            return Const(False)
        if trait.kind is Kind.FLAG:
            # `has_orders == false` is `not has_orders`.
            keep = (value is True) == (op == "==")
            return Flag(trait) if keep else Negate(Flag(trait))
        return TraitCompare(trait, op, value)

    def compare_traits(self, node: rules.Compare, left: Trait, op: str, right: Trait) -> Condition:
        if left.kind is not right.kind:
            return self.fail(node.op_pos, f"'{left.name}' is {_kind_phrase(left)} and '{right.name}' is "
                                          f"{_kind_phrase(right)}; they cannot be compared")
        if left.kind is Kind.TEXT:
            return self.fail(node.op_pos, f"compare '{left.name}' with a text in quotes, not with another trait")
        return TraitsCompare(left, op, right)

    def value_for(self, trait: Trait, literal: Literal) -> Value | None:
        """The literal as a value of the trait's type; None (and a problem) when it is not one."""
        value = literal.value
        if trait.kind in (Kind.NUMBER, Kind.MONEY):
            if isinstance(value, Decimal):
                return value
            self.fail(literal.pos, f"'{trait.name}' is {_kind_phrase(trait)}; compare it with a number, "
                                   f"not with {_literal_phrase(literal)}")
            return None
        if trait.kind is Kind.FLAG:
            if isinstance(value, bool):
                return value
            self.fail(literal.pos, f"'{trait.name}' is yes/no; {_usage(trait)}")
            return None
        if not isinstance(value, str):
            self.fail(literal.pos, f"'{trait.name}' is a text; compare it with a text in quotes, "
                                   f"not with {_literal_phrase(literal)}")
            return None
        if trait.choices and value not in trait.choices:
            self.fail(literal.pos, f"{literal.text} is not a {trait.name} value; expected one of: "
                                   f"{', '.join(trait.choices)}{_suggest(value, trait.choices)}")
            return None
        return value

    def in_list(self, node: rules.InList) -> Condition:
        subject = node.subject
        if isinstance(subject, Literal):
            if len(node.values) == 1 and isinstance(node.values[0], Name):
                return self.fail(subject.pos, "write the list trait without brackets: "
                                              f"{subject.text} in {node.values[0].text}")
            return self.fail(subject.pos, "the left side of 'in (...)' must be a trait")
        trait = self.trait(subject, next(iter(node.values), None))
        if trait is None:
            return Const(False)
        if trait.kind is Kind.TEXT_LIST:
            return self.fail(subject.pos, f"'{trait.name}' is a list of texts; {_usage(trait)}, and join "
                                          "several with 'or'")
        values: list[Value] = []
        for item in node.values:
            if isinstance(item, Name):
                self.fail(item.pos, f"the list after 'in' holds fixed values; '{item.text}' is not one "
                                    f"(put texts in quotes: \"{item.text}\")")
                continue
            value = self.value_for(trait, item)
            if value is not None:
                values.append(value)
        return TraitIn(trait, tuple(values), node.negated)

    def in_trait(self, node: rules.InTrait) -> Condition:
        trait = self.trait(node.trait)
        if trait is None:
            return Const(False)
        if trait.kind is not Kind.TEXT_LIST:
            return self.fail(node.trait.pos, f"'{trait.name}' is {_kind_phrase(trait)}, not a list; "
                                             f"{_usage(trait)}")
        item = node.item
        if not (isinstance(item, Literal) and isinstance(item.value, str)):
            text = item.text
            return self.fail(item.pos, f"write the value in quotes, e.g. \"{text}\" in {trait.name}")
        return ListHas(trait, item.value, node.negated)

    def call(self, node: rules.Call) -> Condition:
        name = node.function.name
        if name not in FUNCTIONS:
            hint = _suggest(name, FUNCTIONS) or "; the only function is in_segment(\"name\")"
            return self.fail(node.function.pos, f"unknown function '{node.function.text}'{hint}")
        args = node.args
        if len(args) != 1 or not (isinstance(args[0], Literal) and isinstance(args[0].value, str)):
            return self.fail(node.pos, "in_segment takes one segment name in quotes, e.g. in_segment(\"vip\")")
        segment = args[0].value
        assert isinstance(segment, str)
        if not self.segment_exists(segment):
            hint = _suggest(segment, self.segment_names)
            return self.fail(args[0].pos, f"there is no segment named '{segment}'{hint}")
        self.segments.add(segment)
        return InSegment(segment)
