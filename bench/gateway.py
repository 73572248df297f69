"""Quote benchmark: quotes/s and p50/p99 of a 5-line quote of a known customer at 50 concurrent clients, beside
the ceiling measured in the same run: a bare FastAPI route (same uvicorn set-up, one worker like the gateway's
default) making one gRPC health call.

Run: `make bench-gateway` (or `.venv/bin/python bench/gateway.py --seconds 15`). wrk (Debian's package) is the
load generator: C, event-driven; its own CPU per request is printed beside the services'. The ceiling and the
quote route alternate in short rounds (C Q, Q C, ...) so a change in the host's load weighs on both alike.

At 50 closed-loop clients the mean latency is 50 / rate (Little's law): a p99 under 50 ms needs more than
1,000 answers/s. So the p99 target is also read where it means something: a paced run offers quotes at 40%
of the measured ceiling (each wrk connection waits a random, exponentially distributed time between requests)
and reports p50/p99 there. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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

def wrk(url: str, script: Path, seconds: float, connections: int, threads: int) -> dict[str, float]:
    """Requests/s, p50 and p99 in ms, the count of non-2xx answers (wrk's own report) and wrk's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    found = {p: re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M) for p in ("50", "99")}
    latency = {p: float(m.group(1)) * _UNITS[m.group(2)] for p, m in found.items() if m}
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"rate": rate, "p50": latency["50"], "p99": latency["99"], "non2xx": float(errors.group(1) if errors else 0),
            "wrk_cpu": cpu, "seconds": seconds}


def script(folder: Path, key: str, name: str = "quote.lua", think_ms: float = 0.0) -> Path:
    """The quote request; with think_ms, each connection waits a random time of that mean between requests."""
    path = folder / name
    text = LUA.format(body=orjson.dumps(orjson.dumps(QUOTE).decode()).decode(), key=key)
    if think_ms:
        text += f"function delay()\n  return -math.log(1 - math.random()) * {think_ms:.3f}\nend\n"
    path.write_text(text)
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


@dataclass
class Target:
    """One measured route: its wrk rounds and the CPU each process used during them."""

    name: str
    url: str
    pid: int | None  # the bare app's own process (the ceiling); None: the stack's gateway
    rounds: list[dict[str, float]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def run(self, stack: Stack, lua: Path, seconds: float, connections: int, threads: int) -> None:
        before = self._cpu(stack)
        self.rounds.append(wrk(self.url, lua, seconds, connections, threads))
        for name, value in self._cpu(stack).items():
            self.cpu[name] = self.cpu.get(name, 0.0) + value - before[name]

    def _cpu(self, stack: Stack) -> dict[str, float]:
        found = cpu_seconds(stack)
        if self.pid is not None:
            found["gateway"] = process_cpu(self.pid)
        return found

    @property
    def requests(self) -> float:
        return max(1.0, sum(r["rate"] * r["seconds"] for r in self.rounds))

    def summary(self) -> dict[str, float]:
        """Rate over all rounds, the median round's p50, the worst round's p99, wrk's CPU per request."""
        return {"rate": self.requests / sum(r["seconds"] for r in self.rounds),
                "p50": statistics.median(r["p50"] for r in self.rounds), "p99": max(r["p99"] for r in self.rounds),
                "non2xx": sum(r["non2xx"] for r in self.rounds),
                "wrk": sum(r["wrk_cpu"] for r in self.rounds) * 1e3 / self.requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per route, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ceiling/quote rounds")
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--paced-share", type=float, default=0.4, help="offered quote rate, share of the ceiling")
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
            ceiling_process = subprocess.Popen([sys.executable, __file__, "--serve-ceiling", str(port),
                                                stack.target("profile")])
            try:
                wait_http(f"http://127.0.0.1:{port}/v1/quotes")
                lua = script(folder, keys["platform"])
                ceiling = Target("ceiling: bare route + 1 gRPC call", f"http://127.0.0.1:{port}/v1/quotes",
                                 ceiling_process.pid)
                quotes = Target("POST /v1/quotes", stack.gateway_url + "/v1/quotes", None)
                wrk(ceiling.url, lua, 2, args.connections, args.threads)  # warm-up, not counted
                wrk(quotes.url, lua, 2, args.connections, args.threads)
                load_before = os.getloadavg()
                counted_before = quotes_by_result(stack.gateway_url)
                per_round = args.seconds / args.rounds
                for n in range(args.rounds):
                    for target in (ceiling, quotes) if n % 2 == 0 else (quotes, ceiling):
                        target.run(stack, lua, per_round, args.connections, args.threads)
                counted_after = quotes_by_result(stack.gateway_url)
                top = ceiling.summary()
                # Paced: each connection's mean wait between requests offers the share of the ceiling's rate.
                offered = args.paced_share * top["rate"]
                paced_lua = script(folder, keys["platform"], "paced.lua", think_ms=args.connections / offered * 1e3)
                paced = Target("POST /v1/quotes, paced", quotes.url, None)
                paced.run(stack, paced_lua, args.seconds, args.connections, args.threads)
                load_after = os.getloadavg()
            finally:
                ceiling_process.terminate()
                ceiling_process.wait(10)

    given = {k: counted_after.get(k, 0) - counted_before.get(k, 0) for k in counted_after}
    total = sum(given.values()) or 1
    priced, slow = quotes.summary(), paced.summary()
    print(f"\n{args.connections} concurrent clients (wrk, {args.threads} threads), {args.rounds} alternating rounds, "
          f"{args.seconds} s per route in all, on this machine's 2 cores shared by wrk, the gateway, both profile "
          f"processes and the other services; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"quote of {CUSTOMER} ({len(QUOTE['lines'])} lines): discounts "
          + ", ".join(f"{d['rule_id']} {d['amount_minor']}" for d in quote["discounts"])
          + f"; degraded {quote['degraded']}")
    print(f"{'':38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}   (p50: median round, p99: worst round)")
    for target, row in ((ceiling, top), (quotes, priced), (paced, slow)):
        print(f"{target.name:<38}{row['rate']:>9,.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['non2xx']:>9,.0f}")
    print(f"quotes / ceiling: {priced['rate'] / top['rate']:.1%} (target >= 40%; rounds: "
          + ", ".join(f"{q['rate'] / c['rate']:.0%}" for q, c in zip(quotes.rounds, ceiling.rounds, strict=True))
          + f"); p99 {priced['p99']:.1f} ms at {args.connections} clients (target < 50 ms; Little's law puts the "
          f"mean at {args.connections / priced['rate'] * 1e3:.0f} ms at this rate)")
    print(f"paced: {offered:,.0f} quotes/s offered ({args.paced_share:.0%} of the ceiling), {slow['rate']:,.0f}/s "
          f"answered, p50 {slow['p50']:.1f} ms, p99 {slow['p99']:.1f} ms; degraded quotes "
          f"{given.get('degraded', 0) / total:.2%} of {total:,.0f} (closed-loop rounds)")
    print("CPU per request, ms (the load-independent view; contention inflates all alike):")
    print(f"  {'process':<11}{'ceiling':>9}{'quote':>9}{'paced':>9}")
    for name in quotes.cpu:
        label = "gateway *" if name == "gateway" else name
        print(f"  {label:<11}"
              + "".join(f"{t.cpu[name] * 1e3 / t.requests:>9.3f}" for t in (ceiling, quotes, paced)))
    print(f"  {'wrk':<11}" + "".join(f"{row['wrk']:>9.3f}" for row in (top, priced, slow)))
    print("  * ceiling column: the bare app's own process")


if __name__ == "__main__":
    main()
