"""Interaction weights: one confidence per (customer, sku) from views, carts, orders and refunds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

KINDS = ("view", "cart", "order", "refund")
INTERACTION_COLUMNS = ("customer_id", "sku", "kind", "quantity", "occurred_at", "amount_minor")
QuantityScale = Literal["binary", "log", "linear"]


@dataclass(frozen=True, slots=True)
class InteractionWeights:
    """How much each kind of interaction counts; a refund undoes the order weight of its quantity.

    Per (customer, sku): order * s(ordered - refunded) + cart * s(carted) + view * s(viewed), where s is
    the quantity scale (binary: 1 if positive; log: log1p; linear: the count), times a time decay of
    0.5 ** (age of the last interaction / half_life_days) when a half life is set.
    """

    view: float = 1.0
    cart: float = 2.0
    order: float = 4.0
    quantity: QuantityScale = "log"
    half_life_days: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InteractionWeights:
        """The inverse of to_dict."""
        return cls(**data)


def check_interactions(interactions: pd.DataFrame) -> None:
    """Raises ValueError naming what is wrong: missing columns, unknown kinds, negative quantities, naive times."""
    raise NotImplementedError


def weigh(interactions: pd.DataFrame, weights: InteractionWeights, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per (customer_id, sku) with `weight` (> 0 only) and `bought` (ever ordered); as_of anchors decay."""
    raise NotImplementedError
