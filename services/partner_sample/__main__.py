"""Runs the sample partner receiver: `python -m services.partner_sample --port N --secret S [faults]`."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from services.common import gctune, logs
from services.partner_sample.app import create_app
from services.partner_sample.faults import Faults

log = logging.getLogger("services.partner_sample")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.partner_sample", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--secret", default=os.environ.get("MARKSMAN_PARTNER_SAMPLE_SECRET", ""),
                        help="the shared signing secret (or MARKSMAN_PARTNER_SAMPLE_SECRET)")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N", help="answer the first N batches with an error")
    parser.add_argument("--fail-for", type=float, default=0.0, metavar="S", help="answer every batch with an error for S seconds")
    parser.add_argument("--fail-status", type=int, default=500, help="the status of injected failures (400-599)")
    parser.add_argument("--delay-ms", type=int, default=0, metavar="D", help="hold each answer D ms (after recording)")
    parser.add_argument("--delay-first", type=int, default=0, metavar="N",
                        help="only the first N answers are slow (0: all while --delay-ms is set)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("--secret is required (or MARKSMAN_PARTNER_SAMPLE_SECRET)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs.configure("partner_sample", args.log_level)
    faults = Faults()
    try:
        faults.set(fail_next=args.fail_first, fail_status=args.fail_status, fail_for_s=args.fail_for,
                   delay_ms=args.delay_ms, delay_next=args.delay_first)
    except ValueError as error:
        raise SystemExit(f"partner_sample: {error}") from None
    app = create_app(args.secret, faults=faults)
    log.info("starting", extra={"host": args.host, "port": args.port, "faults": faults.describe()})
    gctune.tune()
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_config=None,
                access_log=False)


if __name__ == "__main__":
    main()
