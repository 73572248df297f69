"""Recommend benchmark: top-10 over gRPC beside a bare gRPC echo of the same server, the gateway route under 50
concurrent clients, and LightFM training time on 1M synthetic interactions.

Run: `make bench-recommend` (or `.venv/bin/python bench/recommend.py --seconds 10`). Prints figures; asserts nothing.
The echo is the health Check RPC of the recommend server itself: same process, same thread pool, same
interceptor, no work, so it is the ceiling a unary call of this server can reach. Both are driven by the same
client (raw bytes, no client-side protobuf work) from several processes. The gateway route is driven by wrk
when it is installed (`apt-get install wrk`), otherwise by client processes on keep-alive connections.
On the 2-core machines the clients share the cores with the servers: figures are noisy, compare within a run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import numpy as np
import pandas as pd
from grpc_health.v1 import health_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from marksman.recommend.v1 import recommend_pb2

from services.recommend import model
from services.stack import Stack

AS_OF = datetime(2011, 12, 10, tzinfo=UTC)
CATEGORIES = 20
RECOMMEND = "/marksman.recommend.v1.RecommendService/Recommend"
ECHO = "/grpc.health.v1.Health/Check"


# ---- data ----

def catalogue(items: int) -> list[dict[str, object]]:
    rng = random.Random(3)
    return [{"sku": f"SKU{n}", "category": f"cat{n % CATEGORIES}", "brand": f"brand{n % 7}",
             "price": {"amount_minor": rng.randrange(100, 5000), "currency": "GBP"}, "tags": [f"t{n % 13}"]}
            for n in range(items)]


def events(customers: int, orders: int, lines: int, items: int) -> list[dict[str, object]]:
    """Each customer favours two categories; orders spread over 2011."""
    rng = random.Random(5)
    per_category = items // CATEGORIES
    out: list[dict[str, object]] = []
    for c in range(customers):
        liked = (c % CATEGORIES, (c * 7 + 3) % CATEGORIES)
        for o in range(orders):
            when = datetime(2011, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(480_000))
            chosen = [rng.choice(liked) if rng.random() < 0.8 else rng.randrange(CATEGORIES) for _ in range(lines)]
            out.append({
                "event_id": f"b{c}-{o}", "type": "order", "customer_id": f"b{c}",
                "occurred_at": when.isoformat().replace("+00:00", "Z"), "currency": "GBP",
                "lines": [{"sku": f"SKU{cat + CATEGORIES * rng.randrange(per_category)}", "quantity": 1,
                           "unit_price_minor": 250, "category": f"cat{cat}"} for cat in chosen],
            })
    return out


def load(stack: Stack, customers: int, orders: int, lines: int, items: int) -> None:
    keys = stack.api_keys()
    platform = {"Authorization": f"Bearer {keys['platform']}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=300) as client:
        products = catalogue(items)
        for start in range(0, len(products), 5000):
            client.post("/v1/items", json={"items": products[start:start + 5000]}, headers=platform).raise_for_status()
        batch = events(customers, orders, lines, items)
        for start in range(0, len(batch), 2000):
            client.post("/v1/events", json={"events": batch[start:start + 2000]}, headers=platform).raise_for_status()


def train(stack: Stack) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {stack.api_keys()['admin']}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        started = client.post("/v1/models/train", json={}, headers=admin)
        started.raise_for_status()
        version = started.json()["version"]
        while True:
            body: dict[str, object] = client.get(f"/v1/models/{version}", headers=admin).json()
            if body["state"] != "training":
                return body
            time.sleep(0.5)


# ---- gRPC load ----

def _timed(threads: int, seconds: float, caller: Callable[[], Callable[[int], None]]) -> list[float]:
    """Runs `threads` threads, each calling its own caller() with 0, 1, 2 ... until `seconds` have passed;
    returns every call's latency in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run(offset: int) -> None:
        call, mine, n = caller(), [], offset
        while (started := time.perf_counter()) < stop_at:
            call(n)
            mine.append(time.perf_counter() - started)
            n += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(i * 7919,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def _grpc_worker(address: str, method: str, requests: list[bytes], threads: int, seconds: float) -> list[float]:
    """Calls `method` with raw request bytes from `threads` threads for `seconds`; returns latencies (s)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method)  # bytes in, bytes out: the client does no protobuf work
        call(requests[0], timeout=10)  # connect before timing
        return _timed(threads, seconds, lambda: lambda n: call(requests[n % len(requests)], timeout=10))


def grpc_load(address: str, method: str, requests: list[bytes], clients: int, processes: int,
              seconds: float) -> tuple[float, float, float]:
    """(calls/s, p50 ms, p99 ms) with `clients` concurrent callers spread over `processes` processes."""
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        started = time.perf_counter()
        parts = list(pool.map(_grpc_worker, [address] * processes, [method] * processes, [requests] * processes,
                              shares, [seconds] * processes))
        elapsed = time.perf_counter() - started
    latencies = sorted(x for part in parts for x in part)
    # Each process starts its clock after connecting; the rate is over the timed window.
    rate = len(latencies) / seconds if elapsed > 0 else 0.0
    return rate, _quantile(latencies, 0.5) * 1e3, _quantile(latencies, 0.99) * 1e3


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


# ---- gateway load ----

WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/customers/b" .. (counter % {customers}) .. "/recommendations?k=10",
                    {{["Authorization"] = "Bearer {key}"}})
end
"""


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise RuntimeError(f"cannot read wrk's latency {text!r}")
    return float(found[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[found[2]]


def wrk_load(url: str, clients: int, seconds: float, script_text: str = "") -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of wrk on `url`, with a Lua script choosing each request when given."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        scripted = ["-s", script.name] if script_text else []
        output = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds:.0f}s", "--latency", *scripted, url],
                                capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output or "Latency Distribution" not in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    p50 = _ms(re.search(r"50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return rate, p50, p99


def _http_worker(host: str, port: int, key: str, customers: int, threads: int, seconds: float) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}

    def caller() -> Callable[[int], None]:
        connection = http.client.HTTPConnection(host, port, timeout=10)

        def call(n: int) -> None:
            connection.request("GET", f"/v1/customers/b{n % customers}/recommendations?k=10", headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"gateway answered {response.status}")

        return call

    return _timed(threads, seconds, caller)


def python_http_load(host: str, port: int, key: str, customers: int, clients: int,
                     seconds: float) -> tuple[float, float, float]:
    processes = 4
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        parts = list(pool.map(_http_worker, [host] * processes, [port] * processes, [key] * processes,
                              [customers] * processes, shares, [seconds] * processes))
    latencies = sorted(x for part in parts for x in part)
    return len(latencies) / seconds, _quantile(latencies, 0.5) * 1e3, _quantile(latencies, 0.99) * 1e3


# ---- training at scale ----

def million(rows: int, customers: int, items: int, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic interactions: each customer favours two of 50 categories; orders, carts and views."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, customers, rows)
    liked = np.where(rng.random(rows) < 0.8, np.where(rng.random(rows) < 0.5, customer % 50, (customer * 7) % 50),
                     rng.integers(0, 50, rows))
    sku = liked + 50 * rng.integers(0, items // 50, rows)
    frame = pd.DataFrame({
        "customer_id": np.char.add("c", customer.astype(str)),
        "sku": np.char.add("S", sku.astype(str)),
        "kind": rng.choice(np.array(["order", "cart", "view"]), rows, p=[0.5, 0.2, 0.3]),
        "quantity": rng.integers(1, 4, rows),
        "occurred_at": pd.to_datetime(1_293_840_000 + rng.integers(0, 29_000_000, rows), unit="s", utc=True),
        "amount_minor": rng.integers(100, 5000, rows),
    })
    skus = np.arange(items)
    catalogue_frame = pd.DataFrame({"sku": np.char.add("S", skus.astype(str)), "category": np.char.add(
        "cat", (skus % 50).astype(str)), "brand": "", "price_band": [f"p{1 + n % 5}" for n in skus],
        "in_stock": True, "tags": [[] for _ in skus]})
    return frame, catalogue_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--orders", type=int, default=8, help="orders per customer")
    parser.add_argument("--lines", type=int, default=3, help="lines per order")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--grpc-clients", type=int, default=8, help="concurrent gRPC callers")
    parser.add_argument("--processes", type=int, default=4, help="client processes for gRPC load")
    parser.add_argument("--http-clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--train-rows", type=int, default=1_000_000, help="0 skips the training benchmark")
    args = parser.parse_args()

    print(f"{args.customers:,} customers x {args.orders} orders x {args.lines} lines over {args.items:,} items; "
          f"{os.cpu_count()} cores shared by servers and clients")
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), ephemeral_ports=True, env={"MARKSMAN_AS_OF": AS_OF.isoformat()})
        with stack:
            started = time.perf_counter()
            load(stack, args.customers, args.orders, args.lines, args.items)
            print(f"loaded through the gateway in {time.perf_counter() - started:.1f} s")
            version = train(stack)
            evaluation = version.get("evaluation") or {}
            m = evaluation.get("model") or {}  # type: ignore[attr-defined]
            p = evaluation.get("popularity") or {}  # type: ignore[attr-defined]
            print(f"model version {version['version']} {version['state']}: {version['interactions']:,} interactions, "
                  f"trained and evaluated in {version['seconds']:.1f} s; held-out precision@10 "
                  f"{m.get('precision_at_k')} vs popularity {p.get('precision_at_k')}")

            address = stack.grpc_address("recommend")
            requests = [recommend_pb2.RecommendRequest(customer_id=f"b{c}", k=10).SerializeToString()
                        for c in range(args.customers)]
            echo = [health_pb2.HealthCheckRequest(service="").SerializeToString()]
            rows = []
            for name, method, payload in (("bare echo (health Check)", ECHO, echo),
                                          ("Recommend top-10", RECOMMEND, requests)):
                rate, p50, p99 = grpc_load(address, method, payload, args.grpc_clients, args.processes,
                                           args.seconds)
                rows.append((name, rate, p50, p99))
            print(f"gRPC, {args.grpc_clients} concurrent callers in {args.processes} processes, "
                  f"{args.seconds:.0f} s each:")
            for name, rate, p50, p99 in rows:
                print(f"  {name:<26} {rate:>9,.0f} calls/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
            print(f"  top-10 / echo rate          {rows[1][1] / rows[0][1]:>9.0%}   "
                  f"({rows[1][1]:,.0f} recommendations/s of 10 items)")

            key = stack.api_keys()["platform"]
            if shutil.which("wrk"):
                tool = "wrk -t2"
                bare = wrk_load(stack.gateway_url + "/healthz", args.http_clients, args.seconds)
                print(f"gateway GET /healthz (no auth, no upstream: the HTTP ceiling of this run), "
                      f"{args.http_clients} clients:\n  {bare[0]:>9,.0f} req/s   p50 {bare[1]:6.2f} ms   "
                      f"p99 {bare[2]:6.2f} ms")
                script = WRK_SCRIPT.format(customers=args.customers, key=key)
                rate, p50, p99 = wrk_load(stack.gateway_url, args.http_clients, args.seconds, script)
            else:
                tool = "4 Python client processes (wrk not installed)"
                rate, p50, p99 = python_http_load(stack.host, stack.ports["gateway"][0], key, args.customers,
                                                  args.http_clients, args.seconds)
            print(f"gateway GET /v1/customers/{{id}}/recommendations?k=10, {args.http_clients} concurrent clients "
                  f"({tool}):\n  {rate:>9,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")

    if args.train_rows:
        frame, items = million(args.train_rows, customers=args.train_rows // 20, items=10_000)
        params = model.TrainParams(threads=os.cpu_count() or 1)
        started = time.perf_counter()
        recommender = model.train(frame, items, None, params)
        seconds = time.perf_counter() - started
        print(f"LightFM training on {len(frame):,} synthetic interactions ({len(recommender.customer_ids):,} customers, "
              f"{len(recommender.skus):,} items; {params.no_components} components, {params.epochs} epochs, "
              f"{params.threads} threads): {seconds:.1f} s")


if __name__ == "__main__":
    main()
