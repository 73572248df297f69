"""Synthetic shoppers for the recommend service's tests: groups with their own items, and a fake profile over gRPC."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common.grpc_server import Registration, RunningServer, start
from services.recommend.frames import customer_features, interactions_frame
from services.recommend.store import CustomerFeatures

NOW = datetime(2011, 12, 10, tzinfo=UTC)
START = datetime(2011, 1, 1, tzinfo=UTC)
GROUPS = 6
ITEMS_PER_GROUP = 15
SEGMENTS = ("champions", "loyal", "at_risk")
_TYPES = {"view": profile_pb2.EVENT_TYPE_VIEW, "cart": profile_pb2.EVENT_TYPE_ADD_TO_CART,
          "order": profile_pb2.EVENT_TYPE_ORDER, "refund": profile_pb2.EVENT_TYPE_REFUND}


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def sku_of(group: int, n: int) -> str:
    return f"G{group}-{n:02d}"


def synthetic_interactions(customers: int = 120, per_customer: int = 30, seed: int = 7) -> list[profile_pb2.Interaction]:
    """Customer c belongs to group c % GROUPS and mostly buys that group's items, spread over 2011."""
    rng = random.Random(seed)
    out: list[profile_pb2.Interaction] = []
    span = int((NOW - START).total_seconds() // 3600) - 48
    for c in range(customers):
        group = c % GROUPS
        for n in range(per_customer):
            own = rng.random() < 0.85
            g = group if own else rng.randrange(GROUPS)
            sku = sku_of(g, rng.randrange(ITEMS_PER_GROUP))
            kind = rng.choice(("order", "order", "view", "cart"))
            when = START + timedelta(hours=rng.randrange(span))
            price = 100 + 50 * (int(sku[-2:]) % 5)
            out.append(profile_pb2.Interaction(
                customer_id=f"c{c}", sku=sku, type=_TYPES[kind], quantity=1 + rng.randrange(3),
                amount_minor=price, occurred_at=_ts(when), category=f"cat{g}", brand=f"brand{g % 2}",
                unit_price_minor=price, event_id=f"e{c}-{n}"))
    return out


def synthetic_portraits(customers: int = 120) -> list[profile_pb2.Portrait]:
    return [profile_pb2.Portrait(customer_id=f"c{c}", has_orders=True, rfm_segment=SEGMENTS[c % len(SEGMENTS)],
                                 region="United Kingdom" if c % 2 else "France", purchasing_power=(c % 10) / 10)
            for c in range(customers)]


class FrameSource:
    """The training Source from protos in memory; `fail` makes the next read raise, `gate` holds reads back."""

    def __init__(self, interactions: list[profile_pb2.Interaction], portraits: list[profile_pb2.Portrait]) -> None:
        self.interactions_protos = interactions
        self.portraits = portraits
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None
        self.reads = 0

    def interactions(self) -> pd.DataFrame:
        self.reads += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        return interactions_frame([self.interactions_protos])

    def customer_features(self) -> list[CustomerFeatures]:
        return customer_features(self.portraits)


class FakeProfile(profile_pb2_grpc.ProfileServiceServicer):
    """ExportInteractions and ExportPortraits in pages, from protos in memory."""

    def __init__(self, interactions: list[profile_pb2.Interaction], portraits: list[profile_pb2.Portrait]) -> None:
        self.interactions = interactions
        self.portraits = portraits

    def ExportInteractions(self, request: Any, context: Any) -> Iterator[profile_pb2.ExportInteractionsResponse]:
        size = request.page_size or 1000
        for begin in range(0, max(len(self.interactions), 1), size):
            yield profile_pb2.ExportInteractionsResponse(interactions=self.interactions[begin:begin + size],
                                                         next_cursor=str(begin + size))

    def ExportPortraits(self, request: Any, context: Any) -> Iterator[profile_pb2.ExportPortraitsResponse]:
        size = request.page_size or 1000
        for begin in range(0, max(len(self.portraits), 1), size):
            yield profile_pb2.ExportPortraitsResponse(portraits=self.portraits[begin:begin + size],
                                                      next_cursor=str(begin + size))


def start_fake_profile(fake: FakeProfile) -> RunningServer:
    return start("profile", [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, fake,
                                          "marksman.profile.v1.ProfileService")], metrics_port=None, workers=4)


def rpc_code(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        return code
    raise AssertionError("the call succeeded")
