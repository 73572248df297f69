"""The demo's recommendation part: catalogue, a model trained through the gateway, held-out quality, examples."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pandas as pd

from services.demo.categories import FEES
from services.demo.retail import list_prices, sku_categories

# The time split: train on what happened before, compare with the purchases after it.
CUTOFF = "2011-11-01T00:00:00Z"
K = 10
ITEM_BATCH = 5000
TRAIN_TIMEOUT_S = 900.0


def catalogue(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every SKU as a catalogue item: products with category, modal price and description tags; postage and
    fees as hidden items (not merchandise: never recommended, not trained on)."""
    from services.recommend import retail as recommend_retail  # the model core's view of the same data

    prices = list_prices(frame)
    categories = sku_categories(frame)
    products: list[dict[Any, Any]] = recommend_retail.items(frame).to_dict("records")
    items = [{"sku": row["sku"], "category": row["category"], "tags": [str(t)[:64] for t in row["tags"]][:32],
              "price": {"amount_minor": prices[row["sku"]], "currency": "GBP"}}
             for row in products if len(row["sku"]) <= 64]
    items += [{"sku": sku, "category": FEES, "hidden": True} for sku, category in categories.items()
              if category == FEES and len(sku) <= 64]
    return items


def _new_purchases(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Customer -> the product SKUs they ordered after the cut-off and never before it."""
    cut = pd.Timestamp(CUTOFF).tz_convert("UTC").tz_localize(None)
    orders = frame[frame["CustomerID"].notna() & ~frame["is_refund"]]
    categories = sku_categories(frame)
    orders = orders[orders["StockCode"].map(categories) != FEES]
    early = orders["InvoiceDate"] < cut
    before: dict[str, set[str]] = {}
    for customer, sku in zip(orders.loc[early, "CustomerID"].tolist(), orders.loc[early, "StockCode"].tolist(),
                             strict=True):
        before.setdefault(str(customer), set()).add(str(sku))
    after: dict[str, dict[str, None]] = {}
    for customer, sku in zip(orders.loc[~early, "CustomerID"].tolist(), orders.loc[~early, "StockCode"].tolist(),
                             strict=True):
        after.setdefault(str(customer), {})[str(sku)] = None
    new = {c: [s for s in skus if s not in before[c]] for c, skus in after.items() if c in before}
    return {c: skus for c, skus in new.items() if skus}


def _examples(new: dict[str, list[str]]) -> list[str]:
    """Three customers known before the cut-off who bought new items after it: many, a median number, few."""
    ranked = sorted(new, key=lambda c: (-len(new[c]), c))
    return [ranked[len(ranked) // 20], ranked[len(ranked) // 2], ranked[(len(ranked) * 9) // 10]]


def _wait(client: httpx.Client, admin: dict[str, str], version: int) -> dict[str, Any]:
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while True:
        model = client.get(f"/v1/models/{version}", headers=admin)
        model.raise_for_status()
        body: dict[str, Any] = model.json()
        if body["state"] != "training" or time.monotonic() > deadline:
            return body
        time.sleep(1.0)


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def print_recommendations(client: httpx.Client, keys: dict[str, str], frame: pd.DataFrame) -> dict[str, Any]:
    """Loads the catalogue, trains on the interactions before the cut-off and prints the comparison."""
    platform = {"Authorization": f"Bearer {keys['platform']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    items = catalogue(frame)
    for start in range(0, len(items), ITEM_BATCH):
        client.post("/v1/items", json={"items": items[start:start + ITEM_BATCH]}, headers=platform).raise_for_status()
    started = client.post("/v1/models/train", json={"cutoff": CUTOFF, "train_until_cutoff": True}, headers=admin)
    started.raise_for_status()
    model = _wait(client, admin, started.json()["version"])
    print(f"\nrecommendations: {len(items):,} catalogue items; model version {model['version']} trained on "
          f"{model['interactions']:,} interactions of {model['customers']:,} customers in {model['seconds']:.1f} s "
          f"-> {model['state']} ({model['reason']})")
    evaluation = model.get("evaluation")
    if evaluation:
        m, p = evaluation["model"], evaluation["popularity"]
        print(f"  held out after {CUTOFF[:10]} (new purchases of {evaluation['customers_evaluated']:,} customers "
              f"known before it): precision@{evaluation['k']} model {_metric(m['precision_at_k'])} vs popularity "
              f"{_metric(p['precision_at_k'])}; recall@{evaluation['k']} {_metric(m['recall_at_k'])} vs "
              f"{_metric(p['recall_at_k'])}; AUC {_metric(m['auc'])} vs {_metric(p['auc'])}; "
              f"coverage {_metric(m['coverage'])} vs {_metric(p['coverage'])}")
    if model["state"] != "serving":
        return model
    names = frame.drop_duplicates("StockCode").set_index("StockCode")["Description"].to_dict()
    new = _new_purchases(frame)
    print(f"  three customers' top {K} (model trained before {CUTOFF[:10]}, already-bought items left out), "
          "* marks an item they did buy after it:")
    for customer_id in _examples(new):
        answer = client.get(f"/v1/customers/{customer_id}/recommendations?k={K}", headers=platform)
        answer.raise_for_status()
        skus = [i["sku"] for i in answer.json()["items"]]
        bought = set(new[customer_id])
        hits = sum(s in bought for s in skus)
        print(f"  customer {customer_id}: {hits} of {K} bought; {len(bought)} new items bought after the cut-off")
        print("    recommended: " + "; ".join(f"{'*' if s in bought else ''}{names.get(s, s).title()}" for s in skus))
        print("    bought:      " + "; ".join(names.get(s, s).title() for s in new[customer_id][:K])
              + (" ..." if len(bought) > K else ""))
    return model
