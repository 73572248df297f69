"""What training reads and takes: recipes from overrides, profile's protos as frames, catalogue items."""

from __future__ import annotations

import pandas as pd
import pytest
from marksman.profile.v1 import profile_pb2

from services.common.errors import InvalidArgument
from services.recommend.catalogue import (
    SOURCE_CATALOGUE,
    SOURCE_EVENTS,
    Item,
    item_problem,
    items_from_interactions,
    normalized,
)
from services.recommend.frames import customer_features, interactions_frame, price_band_of, users_frame
from services.recommend.model import TrainParams
from services.recommend.recipe import Recipe, resolve
from services.recommend.weights import InteractionWeights
from tests.unit.recommend.service_fakes import synthetic_interactions, synthetic_portraits


def test_recipe_defaults_overrides_and_round_trip() -> None:
    default = resolve({}, threads=2)
    assert default.params == TrainParams(threads=2) and default.weights == InteractionWeights()
    custom = resolve({"components": 8, "loss": "bpr", "order_weight": 6.0, "half_life_days": 0.0,
                      "quantity_scale": "binary"}, threads=1)
    assert (custom.params.no_components, custom.params.loss, custom.weights.order) == (8, "bpr", 6.0)
    assert custom.weights.half_life_days is None and custom.weights.quantity == "binary"
    assert Recipe.from_dict(custom.to_dict()) == custom
    stored = custom.to_dict()
    stored["params"]["retired_knob"] = 3  # written by an older model core
    del stored["params"]["max_sampled"]  # added by a newer one
    assert Recipe.from_dict(stored).params.no_components == 8
    assert custom.overrides()["components"] == 8 and custom.overrides()["half_life_days"] == 0.0
    # The thread count changes speed, not the model.
    assert resolve({"components": 8}, 1).same_model_as(resolve({"components": 8}, 4))
    assert not resolve({"components": 8}, 1).same_model_as(resolve({"components": 9}, 1))


@pytest.mark.parametrize(("overrides", "words"), [
    ({"components": 0}, "params.components must be between 1 and 512"),
    ({"epochs": 5000}, "params.epochs"),
    ({"learning_rate": float("nan")}, "params.learning_rate"),
    ({"loss": "hinge"}, "params.loss must be one of warp, bpr, logistic, warp-kos"),
    ({"quantity_scale": "cubic"}, "params.quantity_scale"),
    ({"item_alpha": -1.0}, "params.item_alpha"),
    ({"view_weight": 0.0, "cart_weight": 0.0, "order_weight": 0.0}, "at least one of"),
    ({"threads": 4}, "params.threads is not a training parameter"),
])
def test_bad_recipes_name_the_field(overrides: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words.replace(".", r"\.")):
        resolve(overrides, 2)


def test_interactions_frame_keeps_item_kinds_in_utc() -> None:
    protos = synthetic_interactions(customers=3, per_customer=4)
    search = profile_pb2.Interaction(customer_id="c0", sku="Q", type=profile_pb2.EVENT_TYPE_SEARCH, quantity=1)
    frame = interactions_frame([protos[:5], [search, *protos[5:]]])
    assert len(frame) == 12 and set(frame["kind"]) <= {"view", "cart", "order"}
    assert isinstance(frame["occurred_at"].dtype, pd.DatetimeTZDtype) and str(frame["occurred_at"].dt.tz) == "UTC"
    first = protos[0]
    assert frame["occurred_at"].iloc[0] == pd.Timestamp(first.occurred_at.ToDatetime(), tz="UTC")
    assert frame["quantity"].dtype == "int64" and frame["sku"].iloc[0] == first.sku
    assert interactions_frame([]).empty


def test_customer_features_and_users_frame() -> None:
    assert [price_band_of(p) for p in (0.0, 0.19, 0.2, 0.5, 0.99, 1.0, -1.0)] == ["p1", "p1", "p2", "p3", "p5", "p5", "p1"]
    portraits = [*synthetic_portraits(3), profile_pb2.Portrait(customer_id="new", region="France")]
    features = customer_features(portraits)
    assert features[1].rfm_segment == "loyal" and features[1].price_band == "p1"
    assert features[-1].price_band == "" and features[-1].rfm_segment == ""
    users = users_frame(features)
    assert list(users.columns) == ["customer_id", "region", "rfm_segment", "price_band"] and len(users) == 4


def test_item_problems() -> None:
    assert item_problem(Item("A1", "Home", "Acme", 250, "GBP", True, ("red",))) is None
    assert item_problem(Item("")) == "sku must be 1-64 characters"
    assert item_problem(Item("x" * 65)) == "sku must be 1-64 characters"
    assert "control" in (item_problem(Item("a\nb")) or "")
    assert "ISO 4217" in (item_problem(Item("A", price_minor=5)) or "")
    assert "between 0" in (item_problem(Item("A", price_minor=-1, currency="GBP")) or "")
    assert "tags" in (item_problem(Item("A", tags=tuple(str(n) for n in range(33)))) or "")
    assert "tag" in (item_problem(Item("A", tags=("",))) or "")
    assert "category" in (item_problem(Item("A", category="c" * 129)) or "")
    assert normalized(Item("A", tags=("b", "a", "b"), source=SOURCE_EVENTS)) == Item("A", tags=("b", "a"))


def test_items_from_interactions_take_the_modal_price_and_latest_names() -> None:
    frame = pd.DataFrame({
        "sku": ["A", "A", "A", "A", "B", "x" * 70],
        "category": ["Old", "", "Home", "", "Toys", "T"],
        "brand": ["", "Acme", "", "", "", ""],
        "unit_price_minor": [250, 200, 250, 999, 0, 5],
        "occurred_at": pd.to_datetime(["2011-01-01", "2011-01-02", "2011-01-03", "2011-01-04", "2011-01-01",
                                       "2011-01-01"], utc=True),
    })
    items = {i.sku: i for i in items_from_interactions(frame, "GBP")}
    assert set(items) == {"A", "B"}  # a SKU this catalogue cannot hold is left out
    assert items["A"] == Item("A", "Home", "Acme", 250, "GBP", True, (), "", SOURCE_EVENTS)
    assert items["B"].price_minor == 0 and items["B"].currency == "" and items["B"].source != SOURCE_CATALOGUE
    assert items_from_interactions(frame.iloc[:0], "GBP") == []
