"""Quote redemptions from an event batch: the order events naming a quote that profile accepted, recorded at once."""

from __future__ import annotations

import logging

from marksman.profile.v1 import profile_pb2
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.gateway.batch import Batch
from services.gateway.errors import ApiError
from services.gateway.event_structs import parse_instant
from services.gateway.metrics import count_redemptions
from services.gateway.store import PricingStore, Redemption

log = logging.getLogger(__name__)
# A re-sent event is recorded too: if the first attempt stored the event but not its redemption,
# sending the batch again completes it (redemptions are idempotent by event id).
_STORED = (profile_pb2.INGEST_STATUS_ACCEPTED, profile_pb2.INGEST_STATUS_DUPLICATE)


def of_batch(checked: Batch, answer: profile_pb2.IngestEventsResponse | None) -> list[Redemption]:
    """The redemptions in a batch; costs one pass over the events when none names a quote."""
    if answer is None:
        return []
    valid = checked.valid
    quoted = {i for i, event in enumerate(valid) if event.quote_id and event.type == "order"}
    if not quoted:
        return []
    found = []
    for result in answer.results:
        if result.index in quoted and result.status in _STORED:
            event = valid[result.index]
            found.append(Redemption(event.event_id, str(event.quote_id), parse_instant(event.occurred_at)))
    return found


async def record(store: PricingStore, redemptions: list[Redemption]) -> None:
    """One write for the batch; a failure is a 503 asking for the batch again (the events themselves are stored)."""
    try:
        outcomes = await run_in_threadpool(store.redeem, redemptions)
    except SQLAlchemyError:
        log.exception("recording quote redemptions failed")
        raise ApiError(503, "the events were stored, but their quote redemptions were not recorded: send the batch "
                            "again (events and redemptions are idempotent by event id)",
                       headers={"Retry-After": "1"}) from None
    count_redemptions(outcomes)
