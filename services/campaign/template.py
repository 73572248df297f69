"""Message templates: "{name}"-style personal fields, checked when a campaign is saved, rendered per customer."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

FIELDS = ("name", "offer_code", "offer_expires", "offer_description", "recommended_items", "campaign")
MAX_LENGTH = 10_000


class TemplateError(ValueError):
    """What is wrong with a template, with the position of the first problem."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and field names, alternating (literal, field, literal, ...)."""

    parts: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name)

    def render(self, values: Mapping[str, str]) -> str:
        """The text with every field replaced; a field without a value renders as empty text."""
        return "".join(literal + (values.get(name, "") if name else "") for literal, name in self.parts)


@lru_cache(maxsize=256)
def parse(text: str) -> Template:
    """Parses and checks a template: only the known fields, no format specs, conversions or attributes
    (a template is data from an operator, never code), braces doubled to be literal. Cached: every
    message of a campaign renders the same template."""
    if len(text) > MAX_LENGTH:
        raise TemplateError(f"template is {len(text)} characters; at most {MAX_LENGTH}")
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as error:
        raise TemplateError(f"template: {error} (write {{{{ and }}}} for literal braces)") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in pieces:
        if name is None:
            parts.append((literal, None))
            continue
        if name not in FIELDS:
            raise TemplateError(f"template field {{{name}}} is unknown; use one of: "
                                + ", ".join(f"{{{f}}}" for f in FIELDS))
        if spec or conversion:
            raise TemplateError(f"template field {{{name}}} takes no format spec or conversion")
        parts.append((literal, name))
    return Template(tuple(parts))
