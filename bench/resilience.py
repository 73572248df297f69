"""What the gateway's resilience costs per upstream call: client CPU µs of a bare stub, of a channel with the
read retry policy, and of Upstreams.call (retry policy + circuit breaker), against one profile-like server."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.gateway.clients import CHANNEL_OPTIONS, Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.retries import service_config


class Echo(profile_pb2_grpc.ProfileServiceServicer):
    def GetCustomer(self, request: Any, context: Any) -> Any:
        return profile_pb2.GetCustomerResponse()


def serve(port: Any) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(Echo(), server)
    port.value = server.add_insecure_port("127.0.0.1:0")
    server.start()
    server.wait_for_termination()


async def cpu_per_call(call: Any, calls: int, concurrency: int) -> float:
    """Client CPU µs per call, `concurrency` calls in flight."""
    request = profile_pb2.GetCustomerRequest(customer_id="c-1")

    async def worker(n: int) -> None:
        for _ in range(n):
            await call(request)

    await worker(50)  # connect and warm up
    started = time.process_time()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / calls * 1e6


async def measure(address: str, calls: int, concurrency: int) -> dict[str, float]:
    found: dict[str, float] = {}
    bare = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    stub = profile_pb2_grpc.ProfileServiceStub(bare)
    found["bare stub"] = await cpu_per_call(lambda r: stub.GetCustomer(r, timeout=5), calls, concurrency)
    retrying = grpc.aio.insecure_channel(address, options=[
        *CHANNEL_OPTIONS, ("grpc.enable_retries", 1), ("grpc.service_config", service_config("profile", 2, 0.05))])
    retry_stub = profile_pb2_grpc.ProfileServiceStub(retrying)
    found["retry policy"] = await cpu_per_call(lambda r: retry_stub.GetCustomer(r, timeout=5), calls, concurrency)
    with tempfile.TemporaryDirectory() as folder:
        clients = Upstreams.connect(GatewaySettings(data_dir=Path(folder), profile_addr=address))
        found["Upstreams.call"] = await cpu_per_call(
            lambda r: clients.call("profile", clients.profile.GetCustomer, r), calls, concurrency)
        await clients.close()
    await bare.close(None)
    await retrying.close(None)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    while port.value == 0:
        time.sleep(0.05)
    address = f"127.0.0.1:{port.value}"
    rounds = [asyncio.run(measure(address, args.calls, args.concurrency)) for _ in range(args.rounds)]
    server.terminate()
    print(f"{args.calls} unary calls per variant, {args.concurrency} in flight, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} (client CPU per call, median of rounds)")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(f"  {name:15s} {statistics.median(values):7.1f} µs  (rounds: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
