"""A fake upstream profile service (ExportPortraits only) and portrait protos built from synthetic rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
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


def synthetic_protos(n: int, seed: int = 3) -> list[profile_pb2.Portrait]:
    return [portrait_proto({str(k): v for k, v in row.items()}) for row in synthetic.portraits(n, seed).to_dict("records")]


@dataclass
class FakeProfile(profile_pb2_grpc.ProfileServiceServicer):
    """Exports its portraits in the order they were put; the cursor is the count already sent."""

    changes: list[profile_pb2.Portrait] = field(default_factory=list)
    # Raise UNAVAILABLE after sending this many pages (None: never).
    fail_after_pages: int | None = None
    requests: list[profile_pb2.ExportPortraitsRequest] = field(default_factory=list)

    def put(self, portraits: list[profile_pb2.Portrait]) -> None:
        self.changes.extend(portraits)

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


def direct_export(fake: FakeProfile) -> Any:
    """The fake called in process, without gRPC (for store-level tests)."""
    class _Context:
        def abort(self, code: grpc.StatusCode, details: str) -> None:
            raise _Aborted(code, details)

    return lambda request: fake.ExportPortraits(request, _Context())


class _Aborted(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details
