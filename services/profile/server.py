"""The profile gRPC servicer: protos to domain values and back, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common import protoenums as pe
from services.common.errors import InvalidArgument, NotFound
from services.common.ids import is_valid_id
from services.profile import ingest_metrics
from services.profile.domain import (
    Consent,
    ContactChannel,
    Customer,
    Event,
    EventType,
    Line,
    PaymentChannel,
    Portrait,
    SalesChannel,
)
from services.profile.portraits import PortraitKeeper
from services.profile.regions import default_time_zone
from services.profile.store import IngestOutcome, ProfileStore, Status, StoredPortrait
from services.profile.totals import MAX_WINDOWS, window_totals
from services.profile.validation import event_problem

StrEnumT = TypeVar("StrEnumT", bound=StrEnum)
MAX_PAGE = 5000
MAX_BATCH_READ = 1000
ID_RULE = "must be 1-128 characters of letters, digits and ._:@+=-"
DEFAULT_PAGE = 1000
_STATUS = {
    Status.ACCEPTED: profile_pb2.INGEST_STATUS_ACCEPTED,
    Status.DUPLICATE: profile_pb2.INGEST_STATUS_DUPLICATE,
    Status.REJECTED: profile_pb2.INGEST_STATUS_REJECTED,
}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def _dt(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _members(enum_cls: type[StrEnumT], proto_enum: object) -> dict[int, StrEnumT]:
    """proto number -> domain member, built once (ingest converts thousands of events a second)."""
    return {number: enum_cls(name) for name in pe.names(proto_enum) if (number := pe.to_number(proto_enum, name))}


EVENT_TYPES = _members(EventType, pe.EVENT_TYPE)
SALES_CHANNELS = _members(SalesChannel, pe.SALES_CHANNEL)
PAYMENT_CHANNELS = _members(PaymentChannel, pe.PAYMENT_CHANNEL)
ITEM_EVENT_TYPES = (EventType.VIEW, EventType.ADD_TO_CART)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_new_line = tuple.__new__
# Timestamp's documented range: 0001-01-01 to 9999-12-31.
MIN_SECONDS, MAX_SECONDS = -62135596800, 253402300799


def event_from_proto(message: profile_pb2.Event) -> Event | str:
    """The domain event, or the reason the message cannot be one."""
    kind = EVENT_TYPES.get(message.type)
    if kind is None:
        return "type is missing or unknown; expected one of: " + ", ".join(pe.names(pe.EVENT_TYPE))
    if not message.HasField("occurred_at"):
        return "occurred_at is required"
    stamp = message.occurred_at
    if not MIN_SECONDS <= stamp.seconds <= MAX_SECONDS or not 0 <= stamp.nanos < 1_000_000_000:
        return "occurred_at is out of range"
    occurred = EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
    sales = SALES_CHANNELS.get(message.sales_channel) if message.sales_channel else None
    if message.sales_channel and sales is None:
        return "sales_channel is unknown"
    payment = PAYMENT_CHANNELS.get(message.payment_channel) if message.payment_channel else None
    if message.payment_channel and payment is None:
        return "payment_channel is unknown"
    # A viewed or carted item without a quantity is one item; orders and refunds must say how many.
    default_quantity = 1 if kind in ITEM_EVENT_TYPES else 0
    return Event(
        event_id=message.event_id,
        type=kind,
        occurred_at=occurred,
        customer_id=message.customer_id,
        anonymous_id=message.anonymous_id,
        sales_channel=sales,
        payment_channel=payment if kind is EventType.ORDER else None,
        currency=message.currency,
        order_id=message.order_id,
        quote_id=message.quote_id,
        query=message.query,
        # tuple.__new__ skips the NamedTuple's Python-level __new__: half the cost of a line, the bulk of this call.
        lines=tuple([
            _new_line(Line, (ln.sku, ln.quantity or default_quantity, ln.unit_price_minor, ln.list_price_minor,
                             ln.discount_minor, ln.category, ln.brand))
            for ln in message.lines
        ]),
    )


def consent_from_proto(message: profile_pb2.Consent, now: datetime) -> Consent:
    name = pe.to_name(pe.CONTACT_CHANNEL, message.channel)
    if name is None:
        raise InvalidArgument("consent channel is missing or unknown; expected email, sms or push")
    return Consent(ContactChannel(name), message.granted, _dt(message.changed_at) if message.HasField("changed_at") else now)


def consent_to_proto(consent: Consent) -> profile_pb2.Consent:
    return profile_pb2.Consent(
        channel=pe.to_number(pe.CONTACT_CHANNEL, consent.channel.value),
        granted=consent.granted,
        changed_at=_ts(consent.changed_at),
    )


def _money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def portrait_to_proto(stored: StoredPortrait) -> profile_pb2.Portrait:
    p: Portrait = stored.portrait
    return profile_pb2.Portrait(
        customer_id=p.customer_id,
        computed_at=_ts(p.computed_at),
        has_orders=p.has_orders,
        recency_days=p.recency_days,
        frequency=p.frequency,
        monetary=_money(p.monetary_minor, p.currency),
        average_order_value=_money(p.average_order_value_minor, p.currency),
        r_score=p.r_score,
        f_score=p.f_score,
        m_score=p.m_score,
        rfm_segment=p.rfm_segment,
        lifecycle_stage=pe.to_number(pe.LIFECYCLE_STAGE, p.lifecycle_stage.value),
        purchasing_power=p.purchasing_power,
        purchasing_power_by_category=[
            profile_pb2.CategoryPower(category=c, percentile=v)
            for c, v in sorted(p.purchasing_power_by_category.items())
        ],
        price_sensitivity=p.price_sensitivity,
        brand_loyalty=p.brand_loyalty,
        category_loyalty=p.category_loyalty,
        top_categories=p.top_categories,
        preferred_payment_channel=pe.to_number(
            pe.PAYMENT_CHANNEL, p.preferred_payment_channel.value if p.preferred_payment_channel else None),
        preferred_sales_channel=pe.to_number(
            pe.SALES_CHANNEL, p.preferred_sales_channel.value if p.preferred_sales_channel else None),
        first_order_at=_ts(p.first_order_at),
        last_order_at=_ts(p.last_order_at),
        last_event_at=_ts(p.last_event_at),
        region=stored.region,
        time_zone=stored.time_zone,
        consents=[consent_to_proto(c) for c in stored.consents],
        views=p.views,
        carts=p.carts,
        searches=p.searches,
        refunds=p.refunds,
        purchase_interval_days=p.purchase_interval_days,
        base_computed_at=_ts(p.base_computed_at),
    )


def customer_to_proto(customer: Customer) -> profile_pb2.Customer:
    return profile_pb2.Customer(
        customer_id=customer.customer_id, name=customer.name, email=customer.email, phone=customer.phone,
        push_token=customer.push_token, region=customer.region, time_zone=customer.time_zone,
        signup_at=_ts(customer.signup_at), consents=[consent_to_proto(c) for c in customer.consents],
    )


def _customer_id(value: str) -> str:
    if not is_valid_id(value):
        raise InvalidArgument(f"customer_id {ID_RULE}")
    return value


def _cursor(text: str, parts: int) -> list[int]:
    if not text:
        return [0] * parts
    try:
        values = [int(v) for v in text.split(":")]
    except ValueError:
        values = []
    if len(values) != parts or any(v < 0 for v in values):
        raise InvalidArgument("since_cursor is not a cursor this service gave out")
    return values


def _page(size: int) -> int:
    if size < 0 or size > MAX_PAGE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE}")
    return size or DEFAULT_PAGE


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, store: ProfileStore, keeper: PortraitKeeper, clock: Callable[[], datetime],
                 on_ingest: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.keeper = keeper
        self.clock = clock
        self.on_ingest = on_ingest

    def UpsertCustomers(self, request: profile_pb2.UpsertCustomersRequest, context: grpc.ServicerContext) -> profile_pb2.UpsertCustomersResponse:
        now = self.clock()
        valid: list[Customer] = []
        results: dict[int, profile_pb2.UpsertResult] = {}
        for index, message in enumerate(request.customers):
            try:
                valid.append(self._customer(message, now))
            except InvalidArgument as error:
                results[index] = profile_pb2.UpsertResult(customer_id=message.customer_id, ok=False, error=str(error))
        outcomes = iter(self.store.upsert_customers(valid, now))
        ordered = []
        for index, message in enumerate(request.customers):
            if index in results:
                ordered.append(results[index])
            else:
                outcome = next(outcomes)
                ordered.append(profile_pb2.UpsertResult(customer_id=message.customer_id, ok=True, created=outcome.created))
        self.on_ingest()
        return profile_pb2.UpsertCustomersResponse(results=ordered)

    def _customer(self, message: profile_pb2.Customer, now: datetime) -> Customer:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        _customer_id(message.customer_id)
        if message.time_zone:
            try:
                ZoneInfo(message.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidArgument(f"time_zone {message.time_zone!r} is not an IANA time zone") from None
        return Customer(
            customer_id=message.customer_id,
            name=message.name,
            email=message.email,
            phone=message.phone,
            push_token=message.push_token,
            region=message.region,
            # DESIGN.md section 8: a customer's zone defaults from their region (quiet hours use it).
            time_zone=message.time_zone or default_time_zone(message.region),
            signup_at=_dt(message.signup_at) if message.HasField("signup_at") else None,
            consents=[consent_from_proto(c, now) for c in message.consents],
        )

    def GetCustomer(self, request: profile_pb2.GetCustomerRequest, context: grpc.ServicerContext) -> profile_pb2.GetCustomerResponse:
        customer = self.store.get_customer(_customer_id(request.customer_id))
        if customer is None:
            raise NotFound(f"customer {request.customer_id} not found")
        return profile_pb2.GetCustomerResponse(customer=customer_to_proto(customer))

    def GetCustomers(self, request: profile_pb2.GetCustomersRequest, context: grpc.ServicerContext) -> profile_pb2.GetCustomersResponse:
        ids = list(dict.fromkeys(request.customer_ids))
        if not 1 <= len(ids) <= MAX_BATCH_READ:
            raise InvalidArgument(f"customer_ids must hold 1 to {MAX_BATCH_READ:,} distinct ids; got {len(ids):,}")
        bad = [i for i, cid in enumerate(request.customer_ids) if not is_valid_id(cid)]
        if bad:
            raise InvalidArgument(f"customer_ids at positions {', '.join(map(str, bad[:10]))}"
                                  f"{' ...' if len(bad) > 10 else ''} are malformed: {ID_RULE}")
        found = self.store.get_customers(ids)
        channels = self.store.preferred_sales_channels(ids) if request.with_sales_channels else {}
        return profile_pb2.GetCustomersResponse(
            customers=[customer_to_proto(found[cid]) for cid in ids if cid in found],
            not_found=[cid for cid in ids if cid not in found],
            sales_channels={cid: pe.to_number(pe.SALES_CHANNEL, name) or 0  # type: ignore[misc]
                            for cid, name in channels.items()})

    def _ingest(self, messages: Iterable[profile_pb2.Event]) -> list[IngestOutcome]:
        now = self.clock()
        valid: list[tuple[int, Event]] = []
        rejected: dict[int, IngestOutcome] = {}
        for index, message in enumerate(messages):
            event = event_from_proto(message)
            problem = event if isinstance(event, str) else event_problem(event, now)
            if problem is not None or isinstance(event, str):
                rejected[index] = IngestOutcome(index, message.event_id, Status.REJECTED, problem or "")
            else:
                valid.append((index, event))
        stored = {o.position: o for o in self.store.ingest(valid, now)} if valid else {}
        if stored:
            self.on_ingest()
        outcomes = [rejected.get(i) or stored[i] for i in range(len(rejected) + len(valid))]
        ingest_metrics.count(outcomes)
        return outcomes

    @staticmethod
    def _response(outcomes: list[IngestOutcome]) -> profile_pb2.IngestEventsResponse:
        counts = {Status.ACCEPTED: 0, Status.DUPLICATE: 0, Status.REJECTED: 0}
        results = []
        for o in outcomes:
            counts[o.status] += 1
            results.append(profile_pb2.IngestResult(event_id=o.event_id, status=_STATUS[o.status], reason=o.reason, index=o.position))
        return profile_pb2.IngestEventsResponse(
            results=results, accepted=counts[Status.ACCEPTED], duplicates=counts[Status.DUPLICATE],
            rejected=counts[Status.REJECTED])

    def IngestEvents(self, request: profile_pb2.IngestEventsRequest, context: grpc.ServicerContext) -> profile_pb2.IngestEventsResponse:
        return self._response(self._ingest(request.events))

    def StreamEvents(self, request_iterator: Iterator[profile_pb2.IngestEventsRequest], context: grpc.ServicerContext) -> profile_pb2.IngestEventsResponse:
        outcomes: list[IngestOutcome] = []
        for batch in request_iterator:
            offset = len(outcomes)
            outcomes.extend(IngestOutcome(o.position + offset, o.event_id, o.status, o.reason) for o in self._ingest(batch.events))
        return self._response(outcomes)

    def MergeIdentity(self, request: profile_pb2.MergeIdentityRequest, context: grpc.ServicerContext) -> profile_pb2.MergeIdentityResponse:
        if not is_valid_id(request.anonymous_id):
            raise InvalidArgument("anonymous_id is malformed")
        moved = self.store.merge_identity(_customer_id(request.customer_id), request.anonymous_id, self.clock())
        if moved is None:
            raise NotFound(f"customer {request.customer_id} not found")
        self.on_ingest()
        return profile_pb2.MergeIdentityResponse(events_moved=moved)

    def UpdateConsent(self, request: profile_pb2.UpdateConsentRequest, context: grpc.ServicerContext) -> profile_pb2.UpdateConsentResponse:
        now = self.clock()
        consents = [consent_from_proto(c, now) for c in request.consents]
        current = self.store.update_consent(_customer_id(request.customer_id), consents)
        if current is None:
            raise NotFound(f"customer {request.customer_id} not found")
        self.on_ingest()
        return profile_pb2.UpdateConsentResponse(consents=[consent_to_proto(c) for c in current])

    def GetPortrait(self, request: profile_pb2.GetPortraitRequest, context: grpc.ServicerContext) -> profile_pb2.GetPortraitResponse:
        stored = self.keeper.current(_customer_id(request.customer_id))
        if stored is None:
            raise NotFound(f"customer {request.customer_id} not found")
        return profile_pb2.GetPortraitResponse(portrait=portrait_to_proto(stored))

    def ExportPortraits(self, request: profile_pb2.ExportPortraitsRequest, context: grpc.ServicerContext) -> Iterator[profile_pb2.ExportPortraitsResponse]:
        revision, key = _cursor(request.since_cursor, 2)
        size = _page(request.page_size)
        while True:
            rows = self.store.export_portraits(revision, key, size)
            if rows:
                revision, key = rows[-1][0], rows[-1][1]
            yield profile_pb2.ExportPortraitsResponse(
                portraits=[portrait_to_proto(stored) for _, _, stored in rows], next_cursor=f"{revision}:{key}")
            if len(rows) < size:
                return

    def ExportInteractions(self, request: profile_pb2.ExportInteractionsRequest, context: grpc.ServicerContext) -> Iterator[profile_pb2.ExportInteractionsResponse]:
        (seq,) = _cursor(request.since_cursor, 1)
        size = _page(request.page_size)
        while True:
            rows = self.store.export_interactions(seq, size)
            if rows:
                seq = rows[-1].seq
            items: list[profile_pb2.Interaction] = []
            for row in rows:
                event = row.event
                kind = pe.to_number(pe.EVENT_TYPE, event.type.value)
                items.extend(
                    profile_pb2.Interaction(
                        customer_id=row.customer_id, sku=line.sku, type=kind, quantity=line.quantity,
                        amount_minor=line.paid_minor, occurred_at=_ts(event.occurred_at), category=line.category,
                        brand=line.brand, unit_price_minor=line.unit_price_minor, event_id=event.event_id,
                    )
                    for line in event.lines
                )
            yield profile_pb2.ExportInteractionsResponse(interactions=items, next_cursor=str(seq))
            if len(rows) < size:
                return

    def RecomputePortraits(self, request: profile_pb2.RecomputePortraitsRequest, context: grpc.ServicerContext) -> profile_pb2.RecomputePortraitsResponse:
        result = self.keeper.recompute_all()
        return profile_pb2.RecomputePortraitsResponse(customers=result.customers, seconds=result.seconds,
                                                      computed_at=_ts(result.computed_at))

    def SummarizeBase(self, request: profile_pb2.SummarizeBaseRequest, context: grpc.ServicerContext) -> profile_pb2.SummarizeBaseResponse:
        s = self.store.summary()
        return profile_pb2.SummarizeBaseResponse(
            customers=s.customers, customers_with_orders=s.customers_with_orders, orders=s.orders, events=s.events,
            revenue=_money(s.revenue_minor, s.currency),
            rfm_segments=[profile_pb2.SegmentSize(name=n, customers=c) for n, c in sorted(s.rfm_segments.items())],
            lifecycle_stages=[profile_pb2.SegmentSize(name=n, customers=c) for n, c in sorted(s.lifecycle_stages.items())],
            base_computed_at=_ts(s.base_computed_at), pending_portraits=s.pending_portraits,
        )

    def GetCustomerTotals(self, request: profile_pb2.GetCustomerTotalsRequest, context: grpc.ServicerContext) -> profile_pb2.GetCustomerTotalsResponse:
        customer_id = _customer_id(request.customer_id)
        if not 1 <= len(request.since) <= MAX_WINDOWS:
            raise InvalidArgument(f"since must hold 1 to {MAX_WINDOWS} window starts; got {len(request.since)}")
        stamps = [*request.since, *([request.until] if request.HasField("until") else [])]
        if any(not MIN_SECONDS <= stamp.seconds <= MAX_SECONDS for stamp in stamps):
            raise InvalidArgument("since and until must be times between the years 1 and 9999")
        starts = [_dt(stamp) for stamp in request.since]
        until = _dt(request.until) if request.HasField("until") else None
        found = self.store.money_events(customer_id, min(starts), until, request.with_portrait)
        if found is None:
            raise NotFound(f"customer {request.customer_id} not found")
        events, portrait = found
        return profile_pb2.GetCustomerTotalsResponse(
            totals=[profile_pb2.CustomerTotals(since=_ts(t.since), net_spend=_money(t.net_spend_minor, t.currency),
                                               orders=t.orders)
                    for t in window_totals(customer_id, events, starts, until)],
            # Pricing reads traits only: no region, time zone or consent leaves with it.
            portrait=portrait_to_proto(StoredPortrait(portrait, "", "", [])) if portrait is not None else None,
        )

    def EraseCustomer(self, request: common_pb2.EraseCustomerRequest, context: grpc.ServicerContext) -> common_pb2.EraseCustomerResponse:
        erased, count = self.store.erase(_customer_id(request.customer_id), self.clock())
        return common_pb2.EraseCustomerResponse(erased=erased, records_deleted=count)
