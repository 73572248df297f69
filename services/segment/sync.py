"""Pulls changed portraits from profile's ExportPortraits into the cache, a committed page at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import grpc
from marksman.profile.v1 import profile_pb2

from services.common import protoenums as pe
from services.common.errors import Unavailable, rpc_failure
from services.segment.store import SegmentStore
from services.segment.traits import CATEGORY_SLOTS, TOP_CATEGORY_SLOTS

log = logging.getLogger(__name__)

Export = Callable[[profile_pb2.ExportPortraitsRequest], Iterable[profile_pb2.ExportPortraitsResponse]]
# Text columns are VARCHAR(128) on PostgreSQL; longer values are cut rather than fail the page.
MAX_TEXT = 128
_CONSENT_COLUMNS = {"email": "consent_email", "sms": "consent_sms", "push": "consent_push"}


def _name(enum: Any, number: int) -> str:
    return pe.to_name(enum, number) or ""


def record_from_proto(p: profile_pb2.Portrait, synced_at: datetime) -> dict[str, Any]:
    """The cache row of one exported portrait (the store's columns, without the key)."""
    top = [c[:MAX_TEXT] for c in p.top_categories[:TOP_CATEGORY_SLOTS]]
    top += [""] * (TOP_CATEGORY_SLOTS - len(top))
    record: dict[str, Any] = {
        "customer_id": p.customer_id,
        "computed_at": p.computed_at.ToDatetime(tzinfo=UTC) if p.HasField("computed_at") else None,
        "synced_at": synced_at,
        "has_orders": p.has_orders,
        "recency_days": p.recency_days,
        "frequency": p.frequency,
        "monetary_minor": p.monetary.amount_minor,
        "average_order_value_minor": p.average_order_value.amount_minor,
        "currency": (p.monetary.currency or p.average_order_value.currency)[:3],
        "r_score": p.r_score,
        "f_score": p.f_score,
        "m_score": p.m_score,
        "rfm_segment": p.rfm_segment[:32],
        "lifecycle": _name(pe.LIFECYCLE_STAGE, p.lifecycle_stage),
        "purchasing_power": p.purchasing_power,
        "price_sensitivity": p.price_sensitivity,
        "brand_loyalty": p.brand_loyalty,
        "category_loyalty": p.category_loyalty,
        **dict(zip(CATEGORY_SLOTS, top, strict=True)),
        "preferred_payment": _name(pe.PAYMENT_CHANNEL, p.preferred_payment_channel),
        "preferred_sales_channel": _name(pe.SALES_CHANNEL, p.preferred_sales_channel),
        "region": p.region[:MAX_TEXT],
        "views": p.views,
        "carts": p.carts,
        "searches": p.searches,
        "refunds": p.refunds,
        "purchase_interval_days": p.purchase_interval_days,
        **dict.fromkeys(_CONSENT_COLUMNS.values(), False),
    }
    for consent in p.consents:
        column = _CONSENT_COLUMNS.get(_name(pe.CONTACT_CHANNEL, consent.channel))
        if column:
            record[column] = consent.granted
    return record


def pull(export: Export, store: SegmentStore, cursor: str, page_size: int, now: datetime,
         on_page: Callable[[list[tuple[Any, ...]]], None]) -> int:
    """Caches every page after `cursor`, each with its next cursor in the same transaction (an
    interrupted sync resumes where it stopped); hands each page's cached rows to on_page. Returns
    the portraits received; Unavailable when profile cannot be reached."""
    received = 0
    request = profile_pb2.ExportPortraitsRequest(since_cursor=cursor, page_size=page_size)
    try:
        for page in export(request):
            records = [record_from_proto(p, now) for p in page.portraits]
            on_page(store.upsert_portraits(records, page.next_cursor))
            received += len(records)
    except grpc.RpcError as error:
        raise Unavailable(f"profile's portrait export failed ({rpc_failure(error)}); "
                          f"{received} portraits were cached before it stopped") from None
    return received


class PeriodicSync:
    """Runs a sync now and then every `interval_s` seconds on a daemon thread, logging failures."""

    def __init__(self, run: Callable[[], object], interval_s: float) -> None:
        self.run = run
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="segment-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run()
            except Exception:
                log.exception("portrait sync failed; retrying in %.0f s", self.interval_s)
            if self.interval_s <= 0 or self._stop.wait(self.interval_s):
                return
