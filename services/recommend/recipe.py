"""A training recipe: the model core's TrainParams and InteractionWeights, from a caller's overrides, checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, get_args

from services.common.errors import InvalidArgument
from services.recommend.model import Loss, TrainParams
from services.recommend.weights import InteractionWeights, QuantityScale

LOSSES: tuple[str, ...] = get_args(Loss)
SCALES: tuple[str, ...] = get_args(QuantityScale)
# Overridable fields: name -> (part, attribute in it, lowest, highest); None bounds are not numbers.
FIELDS: dict[str, tuple[str, str, float | None, float | None]] = {
    "components": ("params", "no_components", 1, 512),
    "loss": ("params", "loss", None, None),
    "epochs": ("params", "epochs", 1, 1000),
    "learning_rate": ("params", "learning_rate", 1e-6, 1.0),
    "item_alpha": ("params", "item_alpha", 0.0, 1.0),
    "user_alpha": ("params", "user_alpha", 0.0, 1.0),
    "use_item_features": ("params", "use_item_features", None, None),
    "use_user_features": ("params", "use_user_features", None, None),
    "seed": ("params", "seed", 0, 2**31 - 1),
    "view_weight": ("weights", "view", 0.0, 1000.0),
    "cart_weight": ("weights", "cart", 0.0, 1000.0),
    "order_weight": ("weights", "order", 0.0, 1000.0),
    "quantity_scale": ("weights", "quantity", None, None),
    "half_life_days": ("weights", "half_life_days", 0.0, 36500.0),
}


@dataclass(frozen=True, slots=True)
class Recipe:
    params: TrainParams
    weights: InteractionWeights

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "weights": self.weights.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """The inverse of to_dict; names a newer model core no longer has are dropped (stored versions outlive
        code), names it added take their defaults."""
        return cls(TrainParams.from_dict(_known(TrainParams, data["params"])),
                   InteractionWeights.from_dict(_known(InteractionWeights, data["weights"])))

    def same_model_as(self, other: Recipe) -> bool:
        """Whether both train the same model (the thread count changes speed, not the model)."""
        return replace(self.params, threads=0) == replace(other.params, threads=0) and self.weights == other.weights

    def overrides(self) -> dict[str, Any]:
        """Every overridable field's value, by its request name (what ModelVersion.params reports)."""
        values: dict[str, Any] = {}
        for name, (part, attribute, _low, _high) in FIELDS.items():
            value = getattr(getattr(self, part), attribute)
            values[name] = 0.0 if name == "half_life_days" and value is None else value
        return values


def _known(kind: type, values: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {name: value for name, value in values.items() if name in names}


def resolve(overrides: Mapping[str, Any], threads: int) -> Recipe:
    """The default recipe with the given fields replaced; InvalidArgument naming the first bad field."""
    params: dict[str, Any] = {"threads": threads}
    weights: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in FIELDS:
            raise InvalidArgument(f"params.{name} is not a training parameter")
        part, attribute, low, high = FIELDS[name]
        _check(name, value, low, high)
        if name == "half_life_days" and not value:
            value = None  # 0 means no time decay
        (params if part == "params" else weights)[attribute] = value
    recipe = Recipe(replace(TrainParams(), **params), replace(InteractionWeights(), **weights))
    w = recipe.weights
    if w.view <= 0 and w.cart <= 0 and w.order <= 0:
        raise InvalidArgument("params: at least one of view_weight, cart_weight and order_weight must be positive")
    return recipe


def _check(name: str, value: Any, low: float | None, high: float | None) -> None:
    if name == "loss":
        if value not in LOSSES:
            raise InvalidArgument(f"params.loss must be one of {', '.join(LOSSES)}")
    elif name == "quantity_scale":
        if value not in SCALES:
            raise InvalidArgument(f"params.quantity_scale must be one of {', '.join(SCALES)}")
    elif low is not None and high is not None and not low <= value <= high:
        raise InvalidArgument(f"params.{name} must be between {low:g} and {high:g}")
