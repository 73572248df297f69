"""Dispatch benchmark: deliveries/s from launch to the sample partner's acknowledgement, beside the partner's own intake.

Run: `make bench-dispatch` (or `.venv/bin/python bench/dispatch.py --recipients 100000`). Prints figures;
asserts nothing. The receiver's maximum intake is measured in the same run by a direct batched load on it
(signed batches from keep-alive connections), so the end-to-end figure can be read as a share of it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import httpx
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.partner_sample import signing
from services.partner_sample.process import Receiver, running
from services.stack import Stack, free_port
from tests.support import postgres

AS_OF = "2011-12-10T00:00:00Z"
SEGMENT = "everyone"

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


def load_audience(stack: Stack, recipients: int) -> None:
    """Customers with an email address and email consent, their portraits, and a segment of all of them (not timed)."""
    keys = stack.api_keys()
    platform = {"Authorization": f"Bearer {keys['platform']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    consent = [{"channel": "email", "granted": True, "changed_at": "2011-01-01T00:00:00Z"}]
    for start in range(0, recipients, 5000):
        body = {"customers": [{"customer_id": f"cust-{i}", "name": f"Customer {i}", "email": f"customer{i}@example.com",
                               "region": "United Kingdom", "consents": consent}
                              for i in range(start, min(start + 5000, recipients))]}
        httpx.post(stack.gateway_url + "/v1/customers", json=body, headers=platform, timeout=300).raise_for_status()
    for path in ("/v1/admin/portraits/recompute", "/v1/admin/segments/sync"):
        httpx.post(stack.gateway_url + path, headers=admin, timeout=900).raise_for_status()
    httpx.post(stack.gateway_url + "/v1/segments", json={"name": SEGMENT, "rule": "frequency >= 0"}, headers=admin,
               timeout=60).raise_for_status()
    size = httpx.post(stack.gateway_url + f"/v1/segments/{SEGMENT}/refresh", headers=admin, timeout=900).json()["size"]
    if size != recipients:
        raise RuntimeError(f"the segment holds {size} customers, not {recipients}")


def stop_unused(stack: Stack, names: tuple[str, ...] = ("campaign", "recommend")) -> None:
    """Stops the stack's own campaign (its idle workers poll their own database) and recommend (the bench's
    template has no recommended items), so the measured run shares the 2 cores only with what it uses."""
    for process in [p for p in stack.processes if p.name in names]:
        process.popen.terminate()
        process.popen.wait(30)
        stack.processes.remove(process)


class LoadWatch:
    """The host's 1-minute load average, sampled every second while a block runs (others share the 2 cores)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def describe(self) -> str:
        return (f"{min(self.samples):.1f}-{max(self.samples):.1f} "
                f"(mean {sum(self.samples) / len(self.samples):.1f})")


@contextmanager
def sampling(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples the process (raw collapsed stacks) while the block runs, when `out` is given."""
    if out is None:
        yield
        return
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-f", "raw",
                            "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)


def settle_background(stack: Stack, timeout_s: float = 600.0) -> float:
    """Waits until profile and segment have finished the background work the audience load started (portrait
    updates, segment's portrait sync): seconds waited. Measured with it, profile's first process spent ten
    times the CPU of the second, and the figure was the background work's, not dispatch's."""
    pids = [p.popen.pid for p in stack.processes if p.name.startswith(("profile", "segment"))]
    started = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - started < timeout_s:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(1.0)
        quiet = quiet + 1 if sum(cpu_seconds(pid) for pid in pids) - before < 0.05 else 0
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(database_url: str) -> float:
    """CPU time of the PostgreSQL cluster serving `database_url`: its postmaster with its reaped children, and
    its live backends."""
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    stats: dict[str, list[str]] = {}
    master = ""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stats[entry.name] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if "postgres" in command and f"-p {port}" in command:
            master = entry.name
    ticks = 0
    for pid, fields in stats.items():
        if pid == master:
            ticks += sum(int(f) for f in fields[11:15])
        elif master and fields[1] == master:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def campaign_service(stack: Stack, folder: Path, database_url: str, workers: int, claim_size: int = 0
                     ) -> Iterator[tuple[grpc.Channel, int]]:
    """One campaign process on its own database, reading contacts from the stack's profile and audiences from its segment."""
    grpc_port = free_port()
    env = {**os.environ, "MARKSMAN_AS_OF": AS_OF, "PYTHONUNBUFFERED": "1",
           "MARKSMAN_CAMPAIGN_HOST": "127.0.0.1", "MARKSMAN_CAMPAIGN_GRPC_PORT": str(grpc_port),
           "MARKSMAN_CAMPAIGN_METRICS_PORT": str(free_port()), "MARKSMAN_CAMPAIGN_PARTNER_PORT": "-1",
           "MARKSMAN_CAMPAIGN_DATA_DIR": str(folder), "MARKSMAN_CAMPAIGN_DATABASE_URL": database_url,
           # Every profile process, round-robined, as the stack gives its own campaign process.
           "MARKSMAN_CAMPAIGN_PROFILE_ADDR": stack.target("profile"),
           "MARKSMAN_CAMPAIGN_SEGMENT_ADDR": stack.grpc_address("segment"), "MARKSMAN_CAMPAIGN_RECOMMEND_ADDR": "",
           "MARKSMAN_CAMPAIGN_WORKERS": str(workers), "MARKSMAN_CAMPAIGN_LOG_LEVEL": "WARNING",
           **({"MARKSMAN_CAMPAIGN_CLAIM_SIZE": str(claim_size)} if claim_size else {})}
    log_path = folder / "campaign.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.campaign"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 300  # imports and migrations take minutes on a loaded host
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"campaign exited: {log_path.read_text(errors='replace')[-3000:]}")
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield channel, process.pid
    finally:
        channel.close()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class EndToEnd:
    launch_s: float
    total_s: float
    sent: int
    settled: int
    acknowledged: int

    @property
    def rate(self) -> float:
        return self.acknowledged / self.total_s


def end_to_end(channel: grpc.Channel, target: Receiver, recipients: int, batch_size: int,
               timeout_s: float = 900) -> EndToEnd:
    """Launch to the last acknowledgement: registers the receiver as a push partner, launches, waits until every delivery is settled."""
    stub = campaign_pb2_grpc.CampaignServiceStub(channel)
    stub.RegisterPartner(pb.RegisterPartnerRequest(partner=pb.Partner(
        name="bench", endpoint=target.endpoint, rate_limit_per_s=1_000_000, batch_size=batch_size,
        mode=pb.PARTNER_MODE_PUSH, channel=pb.CHANNEL_EMAIL), secret=SECRET), timeout=30)
    spec = pb.CampaignSpec(name="bench", goal=pb.GOAL_GROWTH, segment=SEGMENT, currency="GBP",
                           channels=[pb.ChannelRoute(channel=pb.CHANNEL_EMAIL, partner="bench", cost_per_contact_minor=500)],
                           subject="Picked for you", template="Hello {name}, " + BODY_TEXT[len("Hello {name}, "):])
    campaign_id = stub.CreateCampaign(pb.CreateCampaignRequest(spec=spec), timeout=30).campaign.id
    before = target.stats()["new"]
    started = time.perf_counter()
    stub.LaunchCampaign(pb.LaunchCampaignRequest(id=campaign_id), timeout=900)
    launched = time.perf_counter() - started
    # The clock stops at the receiver's last new message. Campaign counts (a GROUP BY over every delivery, a
    # quarter of the campaign process's time at 100,000 rows even once a second) are asked only when the
    # receiver has had nothing new for a second, to see whether the rest was settled without a message.
    counts = stub.GetCampaign(pb.GetCampaignRequest(id=campaign_id), timeout=30).campaign.counts
    received, grew = 0, time.perf_counter()
    while (now_received := target.stats()["new"] - before) < counts.targeted:
        if now_received > received:
            received, grew = now_received, time.perf_counter()
        elif time.perf_counter() - grew >= 1.0:
            counts = stub.GetCampaign(pb.GetCampaignRequest(id=campaign_id), timeout=30).campaign.counts
            grew = time.perf_counter()
            if counts.sent + counts.failed + counts.dead + counts.skipped >= counts.targeted:
                break  # some were not sent: settled without reaching the receiver
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"not every delivery reached the receiver or settled in {timeout_s:.0f} s")
        time.sleep(0.02)
    total = time.perf_counter() - started
    while True:  # not timed: the last outcomes are recorded
        counts = stub.GetCampaign(pb.GetCampaignRequest(id=campaign_id), timeout=30).campaign.counts
        settled = counts.sent + counts.failed + counts.dead + counts.skipped
        if settled >= counts.targeted:
            break
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"only {settled} of {counts.targeted} deliveries settled in {timeout_s:.0f} s")
        time.sleep(0.2)
    if counts.sent < settled:
        print(f"  not sent: {counts.skipped:,} skipped, {counts.failed:,} failed, {counts.dead:,} dead; reasons: "
              f"{unsent_reasons(stub, campaign_id)}")
    return EndToEnd(launched, total, counts.sent, settled, target.stats()["new"] - before)


def unsent_reasons(stub: campaign_pb2_grpc.CampaignServiceStub, campaign_id: int) -> dict[str, int]:
    """Reason -> deliveries, over the first page of each unsent state."""
    reasons: dict[str, int] = {}
    for state in (pb.DELIVERY_STATE_SKIPPED, pb.DELIVERY_STATE_FAILED, pb.DELIVERY_STATE_DEAD):
        page = stub.ListDeliveries(pb.ListDeliveriesRequest(campaign_id=campaign_id, state=state, page_size=1000),
                                   timeout=30)
        for delivery in page.deliveries:
            reasons[delivery.reason] = reasons.get(delivery.reason, 0) + 1
    return reasons


def run_backend(name: str, stack: Stack, folder: Path, database_url: str, workers: int, args: argparse.Namespace) -> None:
    with running(SECRET, ["--log-level", "WARNING"]) as target:
        intake, _ = intake_rate(target, args.recipients, args.batch_size, args.clients)
        with campaign_service(stack, folder, database_url, workers, args.claim_size) as (channel, pid):
            pids = {"campaign": pid, "receiver": target.process.pid,
                    **{p.name: p.popen.pid for p in stack.processes if p.name.startswith(("profile", "segment"))}}
            meters: dict[str, Callable[[], float]] = {name: partial(cpu_seconds, p) for name, p in pids.items()}
            if database_url.startswith("postgresql"):
                meters["postgresql"] = partial(cluster_cpu_seconds, database_url)
            before = {name: meter() for name, meter in meters.items()}
            spy_out = Path(f"{args.py_spy}.{name.lower()}.txt") if args.py_spy else None
            with sampling(pid, spy_out), LoadWatch() as load:
                result = end_to_end(channel, target, args.recipients, args.batch_size)
            used = {name: meter() - before[name] for name, meter in meters.items()}
    print(f"{name:<10} receiver intake (direct)  : {intake:>9,.0f} messages/s ({args.batch_size}-message signed "
          f"batches, the dispatcher's batch size, over {args.clients} keep-alive connections)")
    print(f"{name:<10} launch -> acknowledged    : {result.rate:>9,.0f} deliveries/s "
          f"({result.acknowledged:,} new at the receiver, {result.sent:,} sent of {result.settled:,} settled, "
          f"{result.total_s:.1f} s, of which launch {result.launch_s:.1f} s; {workers} worker(s))")
    print(f"{name:<10} share of receiver intake  : {result.rate / intake:>9.1%}")
    print(f"{name:<10} CPU s in launch->ack      : " + ", ".join(f"{k} {v:.1f}" for k, v in used.items()))
    print(f"{name:<10} CPU ms per delivery       : " + ", ".join(
        f"{k} {v * 1000 / max(1, result.acknowledged):.3f}" for k, v in used.items()))
    print(f"{name:<10} host load (1 min) in run  : {load.describe()} on {os.cpu_count()} cores (other work shares them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500, help="messages per request (the partner's batch size)")
    parser.add_argument("--clients", type=int, default=4, help="connections of the direct intake load")
    parser.add_argument("--workers", type=int, default=2, help="dispatch workers on PostgreSQL (SQLite runs one)")
    parser.add_argument("--claim-size", type=int, default=0, help="deliveries a worker claims at once (0: the service's default)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--py-spy", default="", help="path prefix: sample the campaign process into PREFIX.<backend>.txt")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"{args.recipients:,} recipients (email, consented), partner batches of {args.batch_size}; "
          f"2-core machine shared with other work: figures are noisy")
    with tempfile.TemporaryDirectory() as folder:
        # Recomputing 100,000 portraits takes longer than the gateway's default upstream deadline. The setup
        # recomputes portraits and syncs segment itself; their schedules are off, or profile's recompute of every
        # portrait and segment's re-export of all of them ran inside the measured window (profile's first process
        # spent ten times the CPU of the second, on that work, not on the lookups).
        stack = Stack(Path(folder) / "stack", ephemeral_ports=True,
                      env={"MARKSMAN_AS_OF": AS_OF, "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "900",
                           "MARKSMAN_GATEWAY_INGEST_TIMEOUT_S": "900", "MARKSMAN_PROFILE_RECOMPUTE_INTERVAL_S": "0",
                           "MARKSMAN_SEGMENT_SYNC_INTERVAL_S": "0"})
        with stack:
            started = time.perf_counter()
            load_audience(stack, args.recipients)
            print(f"setup (customers, portraits, segment; not timed below): {time.perf_counter() - started:.0f} s")
            stop_unused(stack)
            print(f"background work after the load (not timed): {settle_background(stack):.0f} s")
            if "sqlite" in backends:
                sqlite_dir = Path(folder) / "sqlite"
                sqlite_dir.mkdir()
                run_backend("SQLite", stack, sqlite_dir, f"sqlite:///{sqlite_dir / 'campaign.db'}", 1, args)
            if "postgresql" in backends:
                if postgres.pg_bin() is None:
                    print("PostgreSQL     : binaries not installed, skipped")
                    return
                pg_dir = Path(folder) / "pg"
                pg_dir.mkdir()
                with postgres.cluster() as admin_url:
                    run_backend("PostgreSQL", stack, pg_dir, postgres.create_database(admin_url, "campaign"),
                                args.workers, args)


if __name__ == "__main__":
    main()
