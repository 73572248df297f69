"""The demo's campaign pair: a blanket and a precision campaign of one budget, sent at a cut-off to the sample
partner, with the customers' real orders of the week after it as their responses, and the estimate before.

Honesty rests on the order of things: the audiences are cut and the messages sent while profile holds only the
orders before the cut-off (run.py loads the later ones afterwards), and `marksman up --demo` pins the campaign
service's clock at the cut-off, so every message is sent then and the attribution window is the real week after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
import pandas as pd

from services.common.clock import parse_instant
from services.partner_sample.process import running

# The campaign service's clock in `marksman up --demo` (services/cli.py) and the recommender's time split.
CUTOFF = "2011-11-01T00:00:00Z"
WINDOW_DAYS = 7
LOOKBACK_DAYS = 90
CURRENCY = "GBP"
# The textbook's pair: a cheap broad contact and a dearer, richer one (5.00 and 12.50 a contact).
BLANKET_COST_MINOR = 500
PRECISION_COST_MINOR = 1250
HOLDOUT_PERCENT = 10.0
GOAL = "growth"
RULE_SEGMENT = "demo-bought-90d-before-cutoff"
SCORES_SEGMENT = "demo-growth-scored-at-cutoff"
TOP_SEGMENT = "demo-growth-top-at-cutoff"
SECRET = "marksman-demo-partner-secret"
TEMPLATE = "Hello {name}, {offer_description}: {offer_code}. Picked for you: {recommended_items}"
SLOW_S = 900.0
DISPATCH_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class PastWeek:
    """The week before the cut-off as a stand-in for a past campaign: the rule audience of that day and who of it
    ordered within the week (no campaign ran then, so these are organic orders)."""

    audience: int
    responders: int
    revenue_per_responder_minor: int

    @property
    def response_rate(self) -> float:
        return self.responders / self.audience if self.audience else 0.0


@dataclass(frozen=True, slots=True)
class Pair:
    blanket_id: int
    precision_id: int


def split_events(events: Iterable[Mapping[str, Any]],
                 cutoff: str = CUTOFF) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Events before the cut-off and the rest, each in the given order."""
    at = parse_instant(cutoff)
    before: list[Mapping[str, Any]] = []
    after: list[Mapping[str, Any]] = []
    for event in events:
        (before if parse_instant(str(event["occurred_at"])) < at else after).append(event)
    return before, after


def rule_at(clock: datetime, cutoff: datetime, days: int = LOOKBACK_DAYS) -> str:
    """"An order in the `days` before the cut-off", written against profile's clock (recency counts to it)."""
    # recency_days is whole days floored: <= N - 1 means the last order came after clock - N days.
    return f"has_orders and recency_days <= {days + (clock - cutoff).days - 1}"


def past_week(frame: pd.DataFrame, cutoff: str = CUTOFF, days: int = LOOKBACK_DAYS,
              window_days: int = WINDOW_DAYS) -> PastWeek:
    """The rule audience a week before the cut-off and its first orders in that week (revenue over lines)."""
    end = pd.Timestamp(parse_instant(cutoff)).tz_convert("UTC").tz_localize(None)
    start = end - pd.Timedelta(days=window_days)
    orders = frame[frame["CustomerID"].notna() & ~frame["is_refund"]]
    totals = (orders.assign(amount=orders["Quantity"] * orders["price_minor"])
              .groupby(["CustomerID", "InvoiceNo"]).agg(at=("InvoiceDate", "min"), amount=("amount", "sum"))
              .reset_index())
    earlier = totals[(totals["at"] >= start - pd.Timedelta(days=days)) & (totals["at"] < start)]
    audience = set(earlier["CustomerID"].astype(str))
    week = totals[(totals["at"] >= start) & (totals["at"] < end) & totals["CustomerID"].astype(str).isin(audience)]
    first = week.sort_values(["at", "InvoiceNo"]).drop_duplicates("CustomerID")
    revenue = round(Fraction(int(first["amount"].sum()), len(first))) if len(first) else 0
    return PastWeek(len(audience), len(first), revenue)


def _json(response: httpx.Response) -> Any:
    if not response.is_success:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} "
                           f"{response.text[:500]}")
    return response.json()


def _segment(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Creates the segment (a second demo run finds it there) and refreshes it: a new frozen version."""
    created = client.post("/v1/segments", json=body)
    if created.status_code != 409:
        _json(created)
    refreshed: dict[str, Any] = _json(client.post(f"/v1/segments/{body['name']}/refresh", timeout=SLOW_S))
    return refreshed


def _members(client: httpx.Client, name: str, version: int) -> tuple[list[str], list[float] | None]:
    ids: list[str] = []
    scores: list[float] | None = []
    cursor: str | None = ""
    while cursor is not None:
        page = _json(client.get(f"/v1/segments/{name}/versions/{version}/members",
                                params={"limit": 10_000, **({"cursor": cursor} if cursor else {})}))
        ids += page["customer_ids"]
        scores = None if scores is None or page["scores"] is None else scores + page["scores"]
        cursor = page["next_cursor"]
    return ids, scores


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _money(minor: int) -> str:
    return f"£{minor / 100:,.2f}"


@dataclass(frozen=True, slots=True)
class Audiences:
    rule: dict[str, Any]
    top: dict[str, Any]
    budget_minor: int
    mean_score: float


def cut_audiences(client: httpx.Client, clock: datetime) -> Audiences:
    """The rule audience, the goal's model trained on the orders so far, every customer's score and the top the
    budget pays for at the precision cost. Profile must hold only the orders before the cut-off."""
    cutoff = parse_instant(CUTOFF)
    _json(client.post("/v1/admin/portraits/recompute", timeout=SLOW_S))
    _json(client.post("/v1/admin/segments/sync", timeout=SLOW_S))
    model = _json(client.post(f"/v1/predictive-models/{GOAL}/train", timeout=SLOW_S))
    q = model["quality"]
    print(f"  {GOAL} model on the orders before the cut-off: held-out AUC {_number(q['auc'], 3)}, top-decile lift "
          f"{_number(q['top_decile_lift'], 2)} ({model['evaluation']})")
    rule = _segment(client, {"name": RULE_SEGMENT, "rule": rule_at(clock, cutoff),
                             "description": f"an order in the {LOOKBACK_DAYS} days before {CUTOFF[:10]}"})
    scored = _segment(client, {"name": SCORES_SEGMENT, "model": {"goal": GOAL, "threshold": 0.0},
                               "description": f"every customer with the {GOAL} model's score at the cut-off"})
    budget = rule["size"] * BLANKET_COST_MINOR
    top = _segment(client, {"name": TOP_SEGMENT, "model": {"goal": GOAL, "top_k": max(1, budget // PRECISION_COST_MINOR)},
                            "description": f"the {GOAL} model's top that the blanket budget pays for at "
                                           f"{_money(PRECISION_COST_MINOR)} a contact"})
    ids, _ = _members(client, RULE_SEGMENT, rule["version"])
    all_ids, scores = _members(client, SCORES_SEGMENT, scored["version"])
    by_id = dict(zip(all_ids, scores or [], strict=False))
    known = [by_id[cid] for cid in ids if cid in by_id]
    print(f"  rule audience '{RULE_SEGMENT}' ({rule['rule']}): {rule['size']:,} customers; model audience "
          f"'{TOP_SEGMENT}': {top['size']:,}; budget {_money(budget)} for each")
    return Audiences(rule, top, budget, sum(known) / len(known) if known else 0.0)


def print_estimate(client: httpx.Client, audiences: Audiences, week: PastWeek) -> dict[str, Any]:
    """Rule against model audience on the same budget, through the gateway's estimate route."""
    history: dict[str, Any] = {"response_rate": week.response_rate,
                               "revenue_per_responder_minor": week.revenue_per_responder_minor}
    if audiences.mean_score > 0:
        history["mean_score"] = audiences.mean_score
    body = {"audiences": [{"name": "rule: bought in 90 days", "segment": RULE_SEGMENT,
                           "cost_per_contact_minor": BLANKET_COST_MINOR},
                          {"name": f"model: {GOAL} top", "segment": TOP_SEGMENT,
                           "cost_per_contact_minor": PRECISION_COST_MINOR}],
            "budget_minor": audiences.budget_minor, "currency": CURRENCY, "history": history,
            "scores_segment": SCORES_SEGMENT}
    answer: dict[str, Any] = _json(client.post("/v1/campaigns/estimate/compare", json=body, timeout=SLOW_S))
    print(f"\n  predicted before sending (POST /v1/campaigns/estimate/compare). No past campaign exists, so the "
          f"history is the week before the cut-off: {week.responders:,} of the {week.audience:,} customers with an "
          f"order in the {LOOKBACK_DAYS} days before it ordered within the week "
          f"({week.response_rate:.2%}, {_money(week.revenue_per_responder_minor)} per first order); model scores "
          f"are scaled by it over the rule audience's mean score {audiences.mean_score:.3f}:")
    print("    " + answer["table"].rstrip("\n").replace("\n", "\n    "))
    return answer


def _partner(client: httpx.Client, name: str, channel: str, endpoint: str) -> str:
    _json(client.post("/v1/partners", json={"name": name, "channel": channel, "mode": "push", "endpoint": endpoint,
                                            "secret": SECRET, "rate_limit_per_s": 100_000, "batch_size": 500}))
    return name


def _campaign(client: httpx.Client, name: str, segment: str, cost: int, budget: int,
              partners: Sequence[tuple[str, str]]) -> dict[str, Any]:
    body = {"name": name, "goal": GOAL, "goal_description": f"demo: {name} campaign of the pair", "segment": segment,
            "channels": [{"channel": channel, "partner": partner, "cost_per_contact_minor": cost}
                         for channel, partner in partners],
            "template": TEMPLATE, "subject": "Something for you", "currency": CURRENCY,
            "offer": {"code": "DEMO10", "description": "10% off your next order"}, "budget_minor": budget,
            "holdout_percent": HOLDOUT_PERCENT, "attribution_days": WINDOW_DAYS, "recommended_items": 3}
    # No quiet hours and no frequency cap: with the clock pinned, a deferred message would never come due.
    created: dict[str, Any] = _json(client.post("/v1/campaigns", json=body))
    return created


def _wait_sent(client: httpx.Client, campaign_ids: Sequence[int]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DISPATCH_TIMEOUT_S
    while True:
        states = [_json(client.get(f"/v1/campaigns/{cid}")) for cid in campaign_ids]
        if all(s["counts"]["pending"] + s["counts"]["queued"] == 0 for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def send_pair(client: httpx.Client, audiences: Audiences) -> Pair | None:
    """Both campaigns to the sample partner (started here as a child process); None when the campaign service's
    clock is not at the cut-off (its messages would be dated after the orders they are measured against)."""
    cutoff = parse_instant(CUTOFF)
    with running(SECRET) as receiver:
        suffix = str(receiver.port)
        routes = [("email", _partner(client, f"demo-email-{suffix}", "email", receiver.endpoint)),
                  ("sms", _partner(client, f"demo-sms-{suffix}", "sms", receiver.endpoint))]
        blanket = _campaign(client, "blanket", RULE_SEGMENT, BLANKET_COST_MINOR, audiences.budget_minor, routes)
        clock = parse_instant(blanket["created_at"])
        if abs(clock - cutoff) > timedelta(hours=1):
            _json(client.post(f"/v1/campaigns/{blanket['id']}/cancel"))
            print(f"  campaign pair skipped: the campaign service's clock reads {clock:%Y-%m-%d %H:%M}, not the "
                  f"cut-off {CUTOFF}; `marksman up --demo` pins it there")
            return None
        precision = _campaign(client, "precision", TOP_SEGMENT, PRECISION_COST_MINOR, audiences.budget_minor, routes)
        started = time.perf_counter()
        for campaign in (blanket, precision):
            _json(client.post(f"/v1/campaigns/{campaign['id']}/launch", timeout=SLOW_S))
        states = _wait_sent(client, [blanket["id"], precision["id"]])
        seconds = time.perf_counter() - started
        stats = receiver.stats()
    print(f"\n  sent at {CUTOFF} (the campaign service's pinned clock) to the sample partner (email, else sms), "
          f"in {seconds:.1f} s:")
    for state in states:
        c = state["counts"]
        print(f"    {state['definition']['name']:<9} audience version {state['audience_version']}: targeted "
              f"{c['targeted']:,}, holdout {c['holdout']:,}, sent {c['sent']:,}, skipped {c['skipped']:,} "
              f"(no consent or contact), failed {c['failed'] + c['dead']:,}; spent {_money(state['spent']['amount_minor'])}")
    print(f"    the partner received: {stats}")
    return Pair(blanket["id"], precision["id"])


def print_comparison(client: httpx.Client, pair: Pair) -> dict[str, Any]:
    """The two campaigns side by side through the gateway's compare route, once the later orders are in."""
    answer: dict[str, Any] = _json(client.get(f"/v1/campaigns/{pair.blanket_id}/compare/{pair.precision_id}",
                                              timeout=SLOW_S))
    print(f"\ncampaign pair measured (GET /v1/campaigns/{pair.blanket_id}/compare/{pair.precision_id}): responses are "
          f"the customers' real first orders within {WINDOW_DAYS} days of the send, loaded after it")
    print("  " + answer["table"].rstrip("\n").replace("\n", "\n  "))
    print("  The messages reached the sample partner, never the customers: a response here is an order they would "
          "have placed anyway, so a difference from the holdout is chance (small holdouts, wide intervals), not "
          "the message's effect. What the pair shows is whom each audience reaches for the same budget.")
    return answer


def run_first_half(client: httpx.Client, frame: pd.DataFrame, clock: datetime) -> Pair | None:
    """Audiences, estimate and sending, while profile holds only the orders before the cut-off."""
    print(f"\ncampaign pair at the cut-off {CUTOFF} (profile holds only the orders before it for now):")
    audiences = cut_audiences(client, clock)
    print_estimate(client, audiences, past_week(frame))
    return send_pair(client, audiences)
