"""Parses the rule language (services/segment/RULES.md) into a syntax tree; errors name line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from lark import (
    Lark,
    Token,
    Transformer_NonRecursive,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)

from services.common.errors import InvalidArgument

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr _OR and_expr                          -> or_
?and_expr: not_expr
         | and_expr _AND not_expr                       -> and_
?not_expr: _NOT not_expr                                -> not_
         | atom
?atom: LPAR or_expr RPAR                                -> group
     | operand COMP_OP operand                          -> compare
     | operand _IN LPAR operand (COMMA operand)* RPAR   -> in_list
     | operand _NOT _IN LPAR operand (COMMA operand)* RPAR -> not_in_list
     | operand _IN NAME                                 -> in_trait
     | operand _NOT _IN NAME                            -> not_in_trait
     | NAME LPAR [operand (COMMA operand)*] RPAR        -> call
     | operand                                          -> bare
?operand: NAME                                          -> name
        | STRING                                        -> string
        | NUMBER                                        -> number
        | TRUE                                          -> true
        | FALSE                                         -> false

_OR: "or"i
_AND: "and"i
_NOT: "not"i
_IN: "in"i
TRUE: "true"i
FALSE: "false"i
LPAR: "("
RPAR: ")"
COMMA: ","
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
NAME: /[a-z_][a-z0-9_]*/i
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/ | /“[^”\n]*”/ | /‘[^’\n]*’/
NUMBER: /-?(?:\d+(?:\.\d*)?|\.\d+)/
%import common.WS
%ignore WS
"""

# Conditions nest at most this deep; far beyond what anyone writes, far below the stack's limit.
MAX_DEPTH = 100
# How the parser's terminals read in a message to a marketer.
_TERMINALS = {
    "NAME": "a trait",
    "STRING": "a text in quotes",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "_IN": "'in'",
    "COMP_OP": "a comparison (==, !=, <, <=, >, >=)",
    "$END": "the end of the rule",
}
_VALUES = {"NAME", "STRING", "NUMBER", "TRUE", "FALSE"}
_CHARACTER_HINTS = {
    "=": "use '==' to compare; a single '=' is not an operator",
    "&": "use 'and' to combine conditions",
    "|": "use 'or' to combine conditions",
    "!": "use 'not' to negate a condition, or '!=' for 'is not equal to'",
    '"': "a text is missing its closing quote",
    "'": "a text is missing its closing quote",
    "[": "write lists in round brackets: in (\"a\", \"b\")",
}


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column of the text a node starts at."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    pos: Pos
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}"


class RuleError(InvalidArgument):
    """A rule that cannot be used; every problem found, each with its position."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


# ---- the syntax tree ----

@dataclass(frozen=True, slots=True)
class Name:
    """A trait (or, as a call's callee, a function) name, lower-cased; `text` as written."""

    name: str
    pos: Pos
    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | Decimal | bool
    pos: Pos
    # The literal as written, for messages.
    text: str


Operand = Name | Literal


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Operand
    right: Operand
    pos: Pos
    op_pos: Pos


@dataclass(frozen=True, slots=True)
class InList:
    subject: Operand
    values: tuple[Operand, ...]
    negated: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class InTrait:
    """`"Home" in top_categories`: membership of a value in a list trait."""

    item: Operand
    trait: Name
    negated: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    function: Name
    args: tuple[Operand, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Bare:
    """A value standing alone as a condition: `has_orders`, `true`."""

    operand: Operand
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    item: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]
    pos: Pos


Node = Compare | InList | InTrait | Call | Bare | Not | And | Or


def _pos(token: Token) -> Pos:
    return Pos(token.line or 1, token.column or 1)


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] in "\"'":
        body = re.sub(r"\\(.)", r"\1", body)
    return body


@v_args(inline=True)
class _ToTree(Transformer_NonRecursive):
    """Lark's parse tree to the frozen dataclasses above; `and`/`or` chains become one n-ary node.
    Non-recursive: a chain of a few hundred `or`s is a left-deep tree that would exhaust the stack."""

    def name(self, token: Token) -> Name:
        return Name(str(token).lower(), _pos(token), str(token))

    def string(self, token: Token) -> Literal:
        return Literal(_unquote(str(token)), _pos(token), str(token))

    def number(self, token: Token) -> Literal:
        return Literal(Decimal(str(token)), _pos(token), str(token))

    def true(self, token: Token) -> Literal:
        return Literal(True, _pos(token), str(token))

    def false(self, token: Token) -> Literal:
        return Literal(False, _pos(token), str(token))

    def group(self, _lpar: Token, node: Node, _rpar: Token) -> Node:
        return node

    def compare(self, left: Operand, op: Token, right: Operand) -> Compare:
        return Compare(str(op), left, right, left.pos, _pos(op))

    def _in_list(self, subject: Operand, rest: tuple[object, ...], negated: bool) -> InList:
        values = tuple(v for v in rest if isinstance(v, Name | Literal))
        return InList(subject, values, negated, subject.pos)

    def in_list(self, subject: Operand, *rest: object) -> InList:
        return self._in_list(subject, rest, False)

    def not_in_list(self, subject: Operand, *rest: object) -> InList:
        return self._in_list(subject, rest, True)

    def in_trait(self, item: Operand, trait: Token) -> InTrait:
        return InTrait(item, self.name(trait), False, item.pos)

    def not_in_trait(self, item: Operand, trait: Token) -> InTrait:
        return InTrait(item, self.name(trait), True, item.pos)

    def call(self, function: Token, _lpar: Token, *rest: object) -> Call:
        args = tuple(a for a in rest if isinstance(a, Name | Literal))
        return Call(self.name(function), args, _pos(function))

    def bare(self, operand: Operand) -> Bare:
        return Bare(operand, operand.pos)

    def not_(self, item: Node) -> Not:
        return Not(item, item.pos)

    def and_(self, left: Node, right: Node) -> And:
        items = (*left.items, right) if isinstance(left, And) else (left, right)
        return And(items, items[0].pos)

    def or_(self, left: Node, right: Node) -> Or:
        items = (*left.items, right) if isinstance(left, Or) else (left, right)
        return Or(items, items[0].pos)


@cache
def _parser() -> Lark:
    # The basic lexer keeps keywords reserved everywhere, so `x >= and` is an error, not a trait named "and".
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


def parse(text: str) -> Node:
    """The syntax tree of a rule; RuleError with the first syntax problem otherwise."""
    if not text.strip():
        raise RuleError([Problem(Pos(1, 1), "the rule is empty")])
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise RuleError([_syntax_problem(text, error)]) from None
    node: Node = _ToTree().transform(tree)
    if _depth(node) > MAX_DEPTH:
        raise RuleError([Problem(Pos(1, 1), f"the rule nests brackets or 'not' more than {MAX_DEPTH} levels deep")])
    return node


def _depth(node: Node) -> int:
    """How deeply conditions nest (the checker and the evaluator recurse that deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, And | Or):
            stack.extend((item, depth + 1) for item in current.items)
        elif isinstance(current, Not):
            stack.append((current.item, depth + 1))
    return deepest


def _end_pos(text: str) -> Pos:
    lines = text.rstrip().split("\n")
    return Pos(len(lines), len(lines[-1]) + 1)


def _describe_expected(names: set[str]) -> str:
    names = {n for n in names if n in _TERMINALS}
    phrases: list[str] = []
    if names >= _VALUES:
        names -= _VALUES
        if {"LPAR", "_NOT"} <= names:
            names -= {"LPAR", "_NOT"}
            phrases.append("a condition (e.g. frequency >= 2)")
        else:
            phrases.append("a value (a trait, a number, a text in quotes, true or false)")
    order = ["COMP_OP", "_IN", "_AND", "_OR", "NAME", "STRING", "NUMBER", "TRUE", "FALSE", "_NOT", "LPAR",
             "COMMA", "RPAR", "$END"]
    phrases.extend(_TERMINALS[n] for n in order if n in names)
    if len(phrases) <= 1:
        return phrases[0] if phrases else "something else"
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _found(token: Token) -> str:
    if token.type == "$END":
        return "the rule ends too early"
    return f"found '{token}'"


def _syntax_problem(text: str, error: UnexpectedInput) -> Problem:
    if isinstance(error, UnexpectedCharacters):
        pos = Pos(error.line, error.column)
        char = text[error.pos_in_stream] if error.pos_in_stream is not None else ""
        hint = _CHARACTER_HINTS.get(char, f"'{char}' cannot be used here")
        return Problem(pos, hint)
    if isinstance(error, UnexpectedToken):
        token = error.token
        pos = _end_pos(text) if token.type == "$END" else Pos(error.line, error.column)
        try:
            expected = set(error.interactive_parser.accepts())
        except Exception:  # accepts() replays the parser; fall back to the table's view
            expected = set(error.expected)
        if token.type == "COMMA" and re.match(r"\d{3}\b", text[token.end_pos or 0:]):
            return Problem(pos, "write numbers without thousands separators: 1000, not 1,000")
        if token.type == "$END" and "RPAR" in expected and "COMMA" not in expected:
            return Problem(pos, "the rule ends before a ')' closes the bracket opened earlier")
        if token.type == "NAME" and expected <= {"_AND", "_OR", "$END", "RPAR"}:
            return Problem(pos, f"{_found(token)}; conditions are joined with 'and' or 'or'")
        return Problem(pos, f"{_found(token)}; expected {_describe_expected(expected)}")
    return Problem(Pos(error.line or 1, error.column or 1), "the rule cannot be read here")
