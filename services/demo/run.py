"""`marksman demo`: loads the Online Retail data through the gateway and prints what Marksman made of it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from services.cli import DEMO_AS_OF
from services.common.clock import parse_instant
from services.demo import campaigns, retail
from services.demo.batches import add_totals, post_all
from services.demo.predictive import print_predictive_models
from services.demo.pricing import print_quotes
from services.demo.recommend import print_recommendations

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "online-retail" / "online_retail.parquet"
BATCH = 1000
SAMPLE_FIELDS = ("frequency", "recency_days", "rfm_segment", "lifecycle_stage", "purchasing_power",
                 "price_sensitivity", "category_loyalty", "top_categories", "preferred_payment_channel")


def _money(minor: int) -> str:
    return f"£{minor / 100:,.2f}"


def _samples(frame: Any) -> list[str]:
    """Three telling customers: the biggest spender, a typical one, and a good one who has lapsed."""
    totals = retail.customer_totals(frame).dropna(subset=["last_order_at"]).sort_values(
        "monetary_minor", ascending=False)
    ids = list(totals.index)
    lapsed = totals.iloc[: len(ids) // 3]["last_order_at"].idxmin()
    return [str(ids[0]), str(ids[len(ids) // 2]), str(lapsed)]


def _admin(gateway_url: str, keys: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, timeout=120, headers={"Authorization": f"Bearer {keys['admin']}"})


def run_demo(gateway_url: str, keys: dict[str, str], data_file: Path | None = None) -> dict[str, Any]:
    path = data_file or Path(os.environ.get("MARKSMAN_DEMO_DATA", DATA_FILE))
    started = time.perf_counter()
    frame = retail.load_frame(path)
    customers, events = retail.to_customers(frame), retail.to_events(frame)
    # The orders after the campaign pair's cut-off are loaded once its audiences are cut and its messages sent.
    events_before, events_after = campaigns.split_events(events)
    print(f"\nDemo: UCI Online Retail (CC BY 4.0, Chen 2015, doi:10.24432/C5BW33): {len(frame):,} clean rows "
          f"-> {len(customers):,} customers, {len(events):,} events "
          "(contacts, consent and channels are synthetic)")
    with httpx.Client(base_url=gateway_url, timeout=120) as client:
        loaded_c = post_all(client, "/v1/customers", keys["platform"], "customers", customers, BATCH)
        loaded_e = post_all(client, "/v1/events", keys["platform"], "events", events_before, BATCH)
        pair_started = time.perf_counter()
        with _admin(gateway_url, keys) as admin_client:
            pair = campaigns.run_first_half(admin_client, frame,
                                            parse_instant(os.environ.get("MARKSMAN_AS_OF", DEMO_AS_OF)))
        pair_s = time.perf_counter() - pair_started
        loaded_e = add_totals(loaded_e, post_all(client, "/v1/events", keys["platform"], "events", events_after, BATCH))
        load_s = time.perf_counter() - started - pair_s
        print(f"loaded through the gateway in {load_s:.1f} s: events accepted {loaded_e['accepted']:,}, "
              f"duplicates {loaded_e['duplicates']:,}, rejected {loaded_e['rejected']:,}; "
              f"customers created {loaded_c.get('created', 0):,}, updated {loaded_c.get('updated', 0):,}")
        for reason in loaded_e.get("reasons", [])[:5]:
            print(f"  rejected: {reason}")
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        recompute = client.post("/v1/admin/portraits/recompute", headers=admin, timeout=300)
        recompute.raise_for_status()
        print(f"portraits recomputed: {recompute.json()['customers']:,} customers in {recompute.json()['seconds']:.1f} s")
        summary = client.get("/v1/admin/summary", headers=admin)
        summary.raise_for_status()
        s = summary.json()
        print(f"\ncustomers {s['customers']:,} (with orders {s['customers_with_orders']:,}), orders {s['orders']:,}, "
              f"net revenue {_money(s['revenue']['amount_minor'])} {s['revenue']['currency']}")
        print("RFM segments:     " + ", ".join(f"{k} {v:,}" for k, v in
                                              sorted(s["rfm_segments"].items(), key=lambda kv: -kv[1])))
        print("lifecycle stages: " + ", ".join(f"{k} {v:,}" for k, v in
                                              sorted(s["lifecycle_stages"].items(), key=lambda kv: -kv[1])))
        print("\nthree sample portraits, next to a plain count of their rows in the data:")
        for customer_id in _samples(frame):
            portrait = client.get(f"/v1/customers/{customer_id}/profile",
                                  headers={"Authorization": f"Bearer {keys['platform']}"})
            portrait.raise_for_status()
            p = portrait.json()
            hand = retail.hand_check(frame, customer_id)
            print(f"  customer {customer_id}: monetary {_money(p['monetary']['amount_minor'])} "
                  f"(by hand {_money(hand['monetary_minor'])}), orders {p['frequency']} (by hand {hand['frequency']}), "
                  f"last order {p['last_order_at']} (by hand {hand['last_order_at']})")
            print("    " + ", ".join(f"{name}={p[name]}" for name in SAMPLE_FIELDS))
        print_recommendations(client, keys, frame)
        print_quotes(client, keys, frame)
        predictive = print_predictive_models(client, keys)
        if pair is not None:
            with _admin(gateway_url, keys) as admin_client:
                campaigns.print_comparison(admin_client, pair)
    return {"summary": s, "events": loaded_e, "customers": loaded_c, "predictive": predictive, "campaigns": pair}
