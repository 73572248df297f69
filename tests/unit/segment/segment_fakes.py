"""A fake upstream profile service (ExportPortraits, ExportInteractions) and its protos from synthetic rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common import protoenums as pe
from services.common.grpc_server import Registration, RunningServer, start
from services.segment import synthetic
from services.segment.traits import CATEGORY_SLOTS

NOW = datetime(2011, 12, 10, tzinfo=UTC)


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def portrait_proto(row: dict[str, Any], computed_at: datetime = NOW) -> profile_pb2.Portrait:
    """The portrait profile would export for one synthetic row."""
    consents = [
        profile_pb2.Consent(channel=pe.to_number(pe.CONTACT_CHANNEL, channel), granted=bool(row[f"consent_{channel}"]))
        for channel in ("email", "sms", "push")
    ]
    return profile_pb2.Portrait(
        customer_id=row["customer_id"], computed_at=_stamp(computed_at), has_orders=bool(row["has_orders"]),
        recency_days=int(row["recency_days"]), frequency=int(row["frequency"]),
        monetary=common_pb2.Money(amount_minor=int(row["monetary_minor"]), currency=row["currency"]),
        average_order_value=common_pb2.Money(amount_minor=int(row["average_order_value_minor"]),
                                             currency=row["currency"]),
        r_score=int(row["r_score"]), f_score=int(row["f_score"]), m_score=int(row["m_score"]),
        rfm_segment=row["rfm_segment"], lifecycle_stage=pe.to_number(pe.LIFECYCLE_STAGE, row["lifecycle"]),
        purchasing_power=float(row["purchasing_power"]), price_sensitivity=float(row["price_sensitivity"]),
        brand_loyalty=float(row["brand_loyalty"]), category_loyalty=float(row["category_loyalty"]),
        top_categories=[row[s] for s in CATEGORY_SLOTS if row[s]],
        preferred_payment_channel=pe.to_number(pe.PAYMENT_CHANNEL, row["preferred_payment"]),
        preferred_sales_channel=pe.to_number(pe.SALES_CHANNEL, row["preferred_sales_channel"]),
        region=row["region"], views=int(row["views"]), carts=int(row["carts"]), searches=int(row["searches"]),
        refunds=int(row["refunds"]), purchase_interval_days=float(row["purchase_interval_days"]), consents=consents,
    )


def interaction_events(lines: pd.DataFrame) -> list[list[profile_pb2.Interaction]]:
    """Predict's line frame as profile exports it: one event per order id, its lines as Interactions
    (refund amounts positive, as profile keeps them), in the frame's order."""
    seconds = ((lines["occurred_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).tolist()
    events: dict[str, list[profile_pb2.Interaction]] = {}
    for customer, order, second, amount, category, refund in zip(
            lines["customer_id"].tolist(), lines["order_id"].tolist(), seconds, lines["amount_minor"].tolist(),
            lines["category"].tolist(), lines["is_refund"].tolist(), strict=True):
        kind = profile_pb2.EVENT_TYPE_REFUND if refund else profile_pb2.EVENT_TYPE_ORDER
        events.setdefault(order, []).append(profile_pb2.Interaction(
            customer_id=customer, sku=f"sku-{category}", type=kind, quantity=1, amount_minor=abs(amount),
            occurred_at=Timestamp(seconds=second), category=category, event_id=order))
    return list(events.values())


def synthetic_protos(n: int, seed: int = 3) -> list[profile_pb2.Portrait]:
    return [portrait_proto({str(k): v for k, v in row.items()}) for row in synthetic.portraits(n, seed).to_dict("records")]


@dataclass
class FakeProfile(profile_pb2_grpc.ProfileServiceServicer):
    """Exports its portraits in the order they were put; the cursor is the count already sent."""

    changes: list[profile_pb2.Portrait] = field(default_factory=list)
    # Raise UNAVAILABLE after sending this many pages (None: never).
    fail_after_pages: int | None = None
    requests: list[profile_pb2.ExportPortraitsRequest] = field(default_factory=list)
    # ExportInteractions: events (each its lines) in export order; the cursor is the count already sent.
    events: list[list[profile_pb2.Interaction]] = field(default_factory=list)
    interaction_requests: list[profile_pb2.ExportInteractionsRequest] = field(default_factory=list)
    interactions_unavailable: bool = False
    # Seconds each interaction page takes (a slow profile).
    interaction_delay_s: float = 0.0

    def put(self, portraits: list[profile_pb2.Portrait]) -> None:
        self.changes.extend(portraits)

    def put_lines(self, lines: pd.DataFrame) -> None:
        self.events.extend(interaction_events(lines))

    def ExportInteractions(self, request: profile_pb2.ExportInteractionsRequest, context: Any) -> Iterator[profile_pb2.ExportInteractionsResponse]:
        self.interaction_requests.append(request)
        if self.interactions_unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "profile is restarting")
        position = int(request.since_cursor or 0)
        size = request.page_size or 1000
        while True:
            time.sleep(self.interaction_delay_s)
            page = self.events[position : position + size]
            position += len(page)
            yield profile_pb2.ExportInteractionsResponse(interactions=[i for event in page for i in event],
                                                         next_cursor=str(position))
            if len(page) < size:
                return

    def ExportPortraits(self, request: profile_pb2.ExportPortraitsRequest, context: Any) -> Iterator[profile_pb2.ExportPortraitsResponse]:
        self.requests.append(request)
        position = int(request.since_cursor or 0)
        size = request.page_size or 1000
        pages = 0
        while True:
            if self.fail_after_pages is not None and pages >= self.fail_after_pages:
                context.abort(grpc.StatusCode.UNAVAILABLE, "profile is restarting")
            page = self.changes[position : position + size]
            position += len(page)
            pages += 1
            yield profile_pb2.ExportPortraitsResponse(portraits=page, next_cursor=str(position))
            if len(page) < size:
                return


def start_fake_profile(fake: FakeProfile) -> RunningServer:
    return start("fake-profile", [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, fake,
                                               "marksman.profile.v1.ProfileService")], metrics_port=None, workers=4)


class _Context:
    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


def direct_export(fake: FakeProfile) -> Any:
    """The fake called in process, without gRPC (for store-level tests)."""
    return lambda request: fake.ExportPortraits(request, _Context())


def direct_interactions(fake: FakeProfile) -> Any:
    """The fake's interaction export called in process, without gRPC."""
    return lambda request: fake.ExportInteractions(request, _Context())


class _Aborted(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

