"""Quote benchmark: quotes/s and p50/p99 of a 5-line quote of a known customer at 50 concurrent clients, beside
the ceiling measured in the same run: a bare FastAPI route (same uvicorn set-up) making one gRPC health call.

Run: `make bench-gateway` (or `.venv/bin/python bench/gateway.py --seconds 15`). wrk (Debian's package) is the
load generator: C, event-driven, a small share of the CPU the services need. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (
    AS_OF,
    cpu_seconds,
    gateway_rate,
    make_events,
    process_cpu,
    register_customers,
    wait_portraits,
)
from services.stack import Stack, free_port

RULE_SET: dict[str, Any] = {
    "currency": "GBP", "max_total_discount_bp": 3000, "floor_bp": 5000,
    "rules": [
        {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
         "tiers": [{"name": "silver", "min": 50_000, "discount_bp": 200},
                   {"name": "gold", "min": 200_000, "discount_bp": 500}]},
        {"id": "deals", "kind": "offer", "name": "December offer", "priority": 20, "discount_bp": 1000,
         "condition": {"trait": "price_sensitivity", "at_least": 0.0},
         "starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z", "per_customer_limit": 1_000_000,
         "budget_minor": 10**12},
        {"id": "wallets", "kind": "payment", "name": "Pay by wallet", "priority": 30,
         "payment_channels": ["wechat_pay", "alipay"], "discount_bp": 200},
    ],
}
CUSTOMER = "cust-7"
QUOTE = {"customer_id": CUSTOMER, "currency": "GBP", "sales_channel": "app", "payment_channel": "alipay",
         "lines": [{"sku": f"SKU{i}", "list_price_minor": 250 + 100 * i, "quantity": 1 + i, "cost_price_minor": 100,
                    "category": "Home"} for i in range(5)]}
LUA = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


# ---- the ceiling: one bare route, one gRPC call ----

def ceiling_app(profile_addr: str) -> Any:
    import grpc
    from fastapi import FastAPI
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(profile_addr, options=[("grpc.lb_policy_name", "round_robin")])
        state["stub"] = health_pb2_grpc.HealthStub(channel)
        yield
        await channel.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/quotes")
    async def echo() -> dict[str, int]:
        reply = await state["stub"].Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return {"status": int(reply.status)}

    return app


def serve_ceiling(port: int, profile_addr: str) -> None:
    import uvicorn

    uvicorn.run(ceiling_app(profile_addr), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


# ---- load ----

def wrk(url: str, script: Path, seconds: int, connections: int, threads: int) -> dict[str, float]:
    """Requests/s, p50 and p99 in ms, and the count of non-2xx answers, from wrk's own report."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    found = {p: re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M) for p in ("50", "99")}
    latency = {p: float(m.group(1)) * _UNITS[m.group(2)] for p, m in found.items() if m}
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rate": rate, "p50": latency["50"], "p99": latency["99"], "non2xx": float(errors.group(1) if errors else 0)}


def script(folder: Path, key: str) -> Path:
    path = folder / "quote.lua"
    path.write_text(LUA.format(body=orjson.dumps(orjson.dumps(QUOTE).decode()).decode(), key=key))
    return path


def quotes_by_result(gateway_url: str) -> dict[str, float]:
    text = httpx.get(gateway_url + "/metrics", timeout=10).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^marksman_gateway_quotes_total\{result="(\w+)"\} ([\d.e+]+)$', text, re.M)}


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20_000, help="order events of 3 lines loaded first")
    parser.add_argument("--serve-ceiling", nargs=2, metavar=("PORT", "PROFILE_ADDR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(int(args.serve_ceiling[0]), args.serve_ceiling[1])
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stack = Stack(folder / "stack", ephemeral_ports=True, env={"MARKSMAN_AS_OF": AS_OF.isoformat()})
        with stack:
            keys = stack.api_keys()
            register_customers(stack, args.customers)
            batches = make_events(args.events // 1000, 1000, 3, args.customers)
            gateway_rate(stack, [orjson.dumps({"events": b}) for b in batches], args.events, 2)
            wait_portraits(stack)
            admin = {"Authorization": f"Bearer {keys['admin']}"}
            httpx.put(stack.gateway_url + "/v1/pricing/rule-set", json=RULE_SET, headers=admin,
                      timeout=30).raise_for_status()
            sample = httpx.post(stack.gateway_url + "/v1/quotes", json=QUOTE, timeout=30,
                                headers={"Authorization": f"Bearer {keys['platform']}"})
            sample.raise_for_status()
            quote = sample.json()
            port = free_port()
            ceiling = subprocess.Popen([sys.executable, __file__, "--serve-ceiling", str(port),
                                        stack.target("profile")])
            try:
                wait_http(f"http://127.0.0.1:{port}/v1/quotes")
                lua = script(folder, keys["platform"])
                quote_url = stack.gateway_url + "/v1/quotes"
                ceiling_url = f"http://127.0.0.1:{port}/v1/quotes"
                wrk(ceiling_url, lua, 2, args.connections, args.threads)  # warm-up, not counted
                wrk(quote_url, lua, 2, args.connections, args.threads)
                ceiling_before, stack_before = process_cpu(ceiling.pid), cpu_seconds(stack)
                top = wrk(ceiling_url, lua, args.seconds, args.connections, args.threads)
                ceiling_cpu = process_cpu(ceiling.pid) - ceiling_before
                stack_during_ceiling = cpu_seconds(stack)
                before, counted_before = cpu_seconds(stack), quotes_by_result(stack.gateway_url)
                priced = wrk(quote_url, lua, args.seconds, args.connections, args.threads)
                after, counted_after = cpu_seconds(stack), quotes_by_result(stack.gateway_url)
            finally:
                ceiling.terminate()
                ceiling.wait(10)

    given = {k: counted_after.get(k, 0) - counted_before.get(k, 0) for k in counted_after}
    total = sum(given.values()) or 1
    print(f"\n{args.connections} concurrent clients (wrk, {args.threads} threads), {args.seconds} s each, on this "
          f"machine's 2 cores shared by wrk, the gateway, both profile processes and the other services")
    print(f"quote of {CUSTOMER} ({len(QUOTE['lines'])} lines): discounts "
          + ", ".join(f"{d['rule_id']} {d['amount_minor']}" for d in quote["discounts"])
          + f"; degraded {quote['degraded']}")
    print(f"{'':34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, row in (("ceiling: bare route + 1 gRPC call", top), ("POST /v1/quotes", priced)):
        print(f"{name:<34}{row['rate']:>9,.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['non2xx']:>9,.0f}")
    print(f"quotes / ceiling: {priced['rate'] / top['rate']:.1%} (target >= 40%), p99 {priced['p99']:.1f} ms "
          f"(target < 50 ms); degraded quotes {given.get('degraded', 0) / total:.2%} of {total:,.0f}")
    ceiling_requests = max(1.0, top["rate"] * args.seconds)
    quotes = max(1.0, priced["rate"] * args.seconds)
    print("CPU per request, ms (the load-independent view; contention inflates both alike):")
    print(f"  {'process':<11}{'ceiling':>9}{'quote':>9}")
    print(f"  {'gateway':<11}{ceiling_cpu * 1e3 / ceiling_requests:>9.3f}"
          f"{(after['gateway'] - before['gateway']) * 1e3 / quotes:>9.3f}  (ceiling: the bare app's process)")
    for name in (n for n in after if n != "gateway"):
        during = (stack_during_ceiling[name] - stack_before[name]) * 1e3 / ceiling_requests
        print(f"  {name:<11}{during:>9.3f}{(after[name] - before[name]) * 1e3 / quotes:>9.3f}")


if __name__ == "__main__":
    main()
