"""The `marksman` command: `up` runs the whole local stack, `demo` loads the real retail data into it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from services import localprom
from services.stack import GRPC_SERVICES, Stack

DEFAULT_DATA_DIR = Path("var")
DEMO_AS_OF = "2011-12-10T00:00:00Z"
# services/demo/campaigns.py CUTOFF (kept here: the demo package needs the demo extra).
DEMO_CAMPAIGN_AS_OF = "2011-11-01T00:00:00Z"


def _print_stack(stack: Stack) -> None:
    keys = stack.api_keys()
    print("Marksman is up:")
    print(f"  gateway     {stack.gateway_url}   (OpenAPI docs: {stack.gateway_url}/docs)")
    for name in GRPC_SERVICES:
        for replica in stack.replica_names(name):
            print(f"  {replica:<11} grpc {stack.grpc_address(replica)}   metrics {stack.metrics_url(replica)}")
    print(f"  admin key   {keys.get('admin', '?')}")
    print(f"  platform key {keys.get('platform', '?')}")
    print(f"  keys file   {stack.data_dir / 'api-keys.txt'}   logs {stack.data_dir / 'logs'}/")


def cmd_up(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    service_env: dict[str, dict[str, str]] = {}
    if args.demo and not os.environ.get("MARKSMAN_AS_OF"):
        # The retail data ends on 2011-12-09: pin the clock so its customers are not all "churned".
        env["MARKSMAN_AS_OF"] = DEMO_AS_OF
        # The demo's campaign pair is sent at its cut-off and measured on the real orders after it.
        service_env["campaign"] = {"MARKSMAN_AS_OF": DEMO_CAMPAIGN_AS_OF}
    stack = Stack(Path(args.data_dir), env=env, service_env=service_env)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    stack.start()
    prometheus: localprom.LocalPrometheus | None = None
    try:
        _print_stack(stack)
        if args.prometheus:
            started = localprom.start(stack)
            if isinstance(started, localprom.LocalPrometheus):
                prometheus = started
                print(f"  prometheus  {started.url}")
            else:
                print(f"  prometheus  not started: {started}")
        if args.demo:
            from services.demo.run import run_demo

            run_demo(stack.gateway_url, stack.api_keys())
            print(f"\nTry: curl -H 'Authorization: Bearer {stack.api_keys().get('platform')}' "
                  f"{stack.gateway_url}/v1/customers/12347/profile")
        if args.exit_after_demo:
            return 0
        print("\nPress Ctrl-C to stop.")
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    finally:
        print("stopping ...", flush=True)
        if prometheus is not None:
            prometheus.stop()
        stack.stop()
        print("stopped")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from services.demo.run import run_demo

    keys = Stack(Path(args.data_dir)).api_keys() if not args.key else {"admin": args.key, "platform": args.key}
    run_demo(args.url, keys)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="marksman", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service and the gateway locally (SQLite stores)")
    up.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="SQLite files, logs and keys (default: var)")
    up.add_argument("--demo", action="store_true", help="load the Online Retail demo data once the stack is up")
    up.add_argument("--exit-after-demo", action="store_true", help="stop after the demo instead of serving")
    up.add_argument("--no-prometheus", dest="prometheus", action="store_false",
                    help="do not start a local Prometheus (started when the prometheus binary is installed)")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="load the demo data into a running stack and print a summary")
    demo.add_argument("--url", default="http://127.0.0.1:8080")
    demo.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="where `marksman up` wrote its keys")
    demo.add_argument("--key", default="", help="an admin API key (default: the keys file of --data-dir)")
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
