"""Dispatch benchmark: deliveries/s from launch to the sample partner's acknowledgement, beside the partner's own intake.

Run: `make bench-dispatch` (or `.venv/bin/python bench/dispatch.py --recipients 100000`). Prints figures;
asserts nothing. The receiver's maximum intake is measured in the same run by a direct batched load on it
(signed batches from keep-alive connections), so the end-to-end figure can be read as a share of it.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.partner_sample import signing
from services.partner_sample.process import Receiver, running

SECRET = "bench-partner-secret-0123456789"
BODY_TEXT = ("Hello {name}, your picks this week: Regency cakestand, jumbo bag red retrospot, "
             "white hanging heart t-light holder. Use code SPRING10 before 31 May.")


def signed_batches(count: int, batch_size: int, prefix: str) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies and headers made before the clock starts (signing is the sender's cost, not the receiver's)."""
    now = int(time.time())
    result = []
    for start in range(0, count, batch_size):
        messages = [{"idempotency_key": f"{prefix}:{i}", "channel": "email", "to": f"customer{i}@example.com",
                     "body": BODY_TEXT.format(name=f"Customer {i}"), "subject": "Picked for you",
                     "campaign_id": 1, "customer_id": f"cust-{i}"}
                    for i in range(start, min(start + batch_size, count))]
        body = orjson.dumps({"messages": messages})
        result.append((body, signing.headers(SECRET, now, body)))
    return result


def intake_rate(target: Receiver, messages: int, batch_size: int, clients: int) -> tuple[float, float]:
    """Messages/s the receiver takes from `clients` keep-alive connections posting ready, signed batches.

    http.client keeps the load generator light (no per-call pool bookkeeping), so the 2 cores go to
    the receiver; the figure is the receiver's ceiling as seen through HTTP on this machine.
    """
    batches = signed_batches(messages, batch_size, prefix=f"intake-{time.time_ns()}")
    before = target.stats()["new"]
    shares = [batches[i::clients] for i in range(clients)]

    def post_all(share: list[tuple[bytes, dict[str, str]]]) -> int:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=120)
        try:
            for body, headers in share:
                connection.request("POST", "/messages", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(f"receiver answered {response.status}: {payload[:200]!r}")
        finally:
            connection.close()
        return len(share)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post_all, shares))
    elapsed = time.perf_counter() - started
    taken = target.stats()["new"] - before
    if taken != messages:
        raise RuntimeError(f"the receiver took {taken} of {messages} messages")
    return messages / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500, help="messages per request (the partner's batch size)")
    parser.add_argument("--clients", type=int, default=4, help="connections of the direct intake load")
    args = parser.parse_args()
    print(f"{args.recipients:,} recipients, batches of {args.batch_size}, 2-core machine shared with other work")
    with running(SECRET, ["--log-level", "WARNING"]) as target:
        rate, elapsed = intake_rate(target, args.recipients, args.batch_size, args.clients)
        print(f"receiver intake (direct, {args.clients} connections): {rate:>10,.0f} messages/s ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
