"""Ingest benchmark: order events/s through the gateway into profile, beside the raw SQLite bulk-insert rate.

Run: `make bench-ingest` (or `.venv/bin/python bench/ingest.py --batches 60`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.common.db import make_engine
from services.profile.domain import Line
from services.profile.store import ProfileStore, customers_t, events_t, lines_to_json
from services.stack import Stack

AS_OF = datetime(2011, 12, 10, tzinfo=UTC)
CATEGORIES = ("Home", "Kitchen", "Garden", "Toys", "Party", "Bags")


def make_events(batches: int, batch_size: int, lines: int, customers: int, seed: int = 1) -> list[list[dict]]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    result = []
    for b in range(batches):
        batch = []
        for i in range(batch_size):
            when = AS_OF - timedelta(minutes=rng.randrange(1, 525_600))
            batch.append({
                "event_id": f"bench-{b}-{i}",
                "type": "order",
                "customer_id": f"cust-{rng.randrange(customers)}",
                "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "sales_channel": rng.choice(("web", "app", "mini_program", "marketplace")),
                "payment_channel": rng.choice(("wechat_pay", "alipay", "bank_card", "cash_on_delivery")),
                "currency": "GBP",
                "lines": [{
                    "sku": f"SKU{rng.randrange(4000)}", "quantity": rng.randrange(1, 12),
                    "unit_price_minor": (p := rng.randrange(50, 5000)), "list_price_minor": p + rng.choice((0, 0, 50)),
                    "category": rng.choice(CATEGORIES), "brand": "",
                } for _ in range(lines)],
            })
        result.append(batch)
    return result


def register_customers(stack: Stack, customers: int) -> None:
    """Customers exist before their orders, as on a platform where sign-up comes first (not timed)."""
    headers = {"Authorization": f"Bearer {stack.api_keys()['platform']}"}
    for start in range(0, customers, 5000):
        body = {"customers": [{"customer_id": f"cust-{i}", "region": "United Kingdom"}
                              for i in range(start, min(start + 5000, customers))]}
        httpx.post(stack.gateway_url + "/v1/customers", json=body, headers=headers, timeout=120).raise_for_status()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) each service process has used so far."""
    return {process.name: process_cpu(process.popen.pid) for process in stack.processes}


def gateway_rate(stack: Stack, bodies: list[bytes], events: int, clients: int) -> tuple[float, float]:
    """Posts the batches from `clients` threads, each on one keep-alive connection.

    The standard library's http.client keeps the load generator light: httpx spent ~35 ms of
    CPU per batch here (a fresh client per request builds an SSL context), CPU the services
    under test then lacked on a 2-core machine.
    """
    key = stack.api_keys()["platform"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    host, port = stack.host, stack.ports["gateway"][0]
    shares = [bodies[i::clients] for i in range(clients)]

    def post_all(share: list[bytes]) -> int:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        accepted = 0
        try:
            for body in share:
                connection.request("POST", "/v1/events", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {payload[:300]!r}")
                accepted += int(orjson.loads(payload)["accepted"])
        finally:
            connection.close()
        return accepted

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        accepted = sum(pool.map(post_all, shares))
    elapsed = time.perf_counter() - started
    if accepted != events:
        raise RuntimeError(f"accepted {accepted} of {events}")
    return events / elapsed, elapsed


def wait_portraits(stack: Stack, timeout: float = 600) -> float:
    """Seconds until the updater has caught up (no customer waiting for a portrait)."""
    key = stack.api_keys()["admin"]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        summary = httpx.get(stack.gateway_url + "/v1/admin/summary",
                            headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        if summary["pending_portraits"] == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("nan")


def raw_sqlite_rate(batches: list[list[dict]], customers: int) -> float:  # type: ignore[type-arg]
    """SQLAlchemy Core executemany into the same events table: one row per event, lines as JSON."""
    with tempfile.TemporaryDirectory() as folder:
        store = ProfileStore(make_engine(f"sqlite:///{folder}/raw.db"))
        store.migrate()
        now = datetime.now(UTC)
        with store.engine.begin() as conn:  # the customers the events belong to (not timed)
            conn.execute(insert(customers_t), [{
                "customer_id": f"cust-{i}", "name": "", "email": "", "phone": "", "push_token": "", "region": "",
                "time_zone": "", "created_at": now, "updated_at": now} for i in range(customers)])
        rows_per_batch = [[{
            "event_id": e["event_id"], "customer_key": int(e["customer_id"][5:]) + 1, "anonymous_id": None, "type": "order",
            "occurred_at": datetime.fromisoformat(e["occurred_at"]), "sales_channel": e["sales_channel"],
            "payment_channel": e["payment_channel"], "currency": "GBP", "order_id": "", "quote_id": "", "query": "",
            "lines": lines_to_json(Line(ln["sku"], ln["quantity"], ln["unit_price_minor"], ln["list_price_minor"], 0,
                                        ln["category"], "") for ln in e["lines"]),
            "paid_minor": sum(ln["quantity"] * ln["unit_price_minor"] for ln in e["lines"]), "stored_at": now,
        } for e in batch] for batch in batches]
        count = sum(len(b) for b in rows_per_batch)
        started = time.perf_counter()
        for rows in rows_per_batch:
            with store.engine.begin() as conn:
                conn.execute(insert(events_t), rows)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    args = parser.parse_args()

    batches = make_events(args.batches, args.batch_size, args.lines, args.customers)
    bodies = [orjson.dumps({"events": b}) for b in batches]
    events = args.batches * args.batch_size
    print(f"{events:,} order events of {args.lines} lines in batches of {args.batch_size:,}, "
          f"{args.customers:,} customers, {args.clients} clients")
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), ephemeral_ports=True, env={"MARKSMAN_AS_OF": AS_OF.isoformat()})
        with stack:
            register_customers(stack, args.customers)
            wait_portraits(stack)
            before, client_before = cpu_seconds(stack), time.process_time()
            rate, elapsed = gateway_rate(stack, bodies, events, args.clients)
            after, client_after = cpu_seconds(stack), time.process_time()
            after["client"], before["client"] = client_after, client_before
            trail = wait_portraits(stack)
    raw = raw_sqlite_rate(batches, args.customers)
    print(f"gateway -> profile ingest : {rate:>10,.0f} events/s  ({elapsed:.2f} s, stored when answered)")
    for name in after:
        print(f"  {name:<9} CPU per 1,000 events: {(after[name] - before[name]) * 1e6 / events:7.1f} ms")
    print(f"portraits trailed by      : {trail:>10.2f} s after the last answer")
    print(f"raw SQLite Core insert    : {raw:>10,.0f} events/s  (same rows, one transaction per batch)")
    print(f"ratio gateway / raw       : {rate / raw:>10.1%}")


if __name__ == "__main__":
    main()
