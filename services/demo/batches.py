"""Posts customers and events to the gateway in batches and adds up what it accepted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import orjson

T = TypeVar("T")

MAX_REASONS = 5


class GatewayError(RuntimeError):
    """The gateway refused a whole batch (a non-2xx answer)."""


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _tally_events(body: Mapping[str, Any], totals: dict[str, Any]) -> None:
    for name in ("accepted", "duplicates", "rejected"):
        totals[name] += int(body.get(name, 0))
    for result in body.get("results", []):
        if result.get("status") == "rejected" and len(totals["reasons"]) < MAX_REASONS:
            totals["reasons"].append(f"{result.get('event_id')}: {result.get('reason')}")


def _tally_customers(body: Mapping[str, Any], totals: dict[str, Any]) -> None:
    for result in body.get("results", []):
        if result.get("ok"):
            totals["accepted"] += 1
            totals["created" if result.get("created") else "updated"] += 1
        else:
            totals["rejected"] += 1
            if len(totals["reasons"]) < MAX_REASONS:
                totals["reasons"].append(f"{result.get('customer_id')}: {result.get('error')}")


def post_all(
    client: httpx.Client,
    path: str,
    key: str,
    field: str,
    items: Sequence[Mapping[str, Any]],
    batch_size: int,
) -> dict[str, Any]:
    """POSTs `{field: batch}` for each batch and sums the answers.

    Event answers carry accepted/duplicates/rejected counts; customer answers carry one result per
    customer (ok, created), counted here as accepted (created or updated) or rejected. Returns the
    sums, the number of batches and the first few rejection reasons; raises GatewayError on a
    non-2xx answer (207 Multi-Status, a partly rejected batch, is an answer like 200).
    """
    totals: dict[str, Any] = {
        "batches": 0,
        "accepted": 0,
        "duplicates": 0,
        "rejected": 0,
        "created": 0,
        "updated": 0,
        "reasons": [],
    }
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for number, batch in enumerate(chunks(items, batch_size), start=1):
        response = client.post(path, content=orjson.dumps({field: batch}), headers=headers)
        if not response.is_success:
            raise GatewayError(
                f"POST {path} batch {number} ({len(batch)} {field}) failed with HTTP "
                f"{response.status_code}: {response.text[:500]}"
            )
        body = orjson.loads(response.content) if response.content else {}
        if not isinstance(body, dict):
            raise GatewayError(
                f"POST {path} batch {number}: expected a JSON object, got {response.text[:200]}"
            )
        if "accepted" in body:
            _tally_events(body, totals)
        else:
            _tally_customers(body, totals)
        totals["batches"] += 1
    return totals


def add_totals(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Two post_all answers as one (a load in two parts)."""
    total = {name: first[name] + second[name] for name in first if name != "reasons"}
    total["reasons"] = [*first["reasons"], *second["reasons"]][:MAX_REASONS]
    return total
