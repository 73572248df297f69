"""POST /v1/events: a batch validated event by event, the valid ones sent to profile in one call."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request, Response
from marksman.profile.v1 import profile_pb2
from starlette.concurrency import run_in_threadpool

from services.gateway import batch, convert, pricing_redemptions
from services.gateway.auth import PLATFORM, require
from services.gateway.deps import upstreams
from services.gateway.metrics import count_events
from services.gateway.openapi import body_schema, either, errors
from services.gateway.schemas import EventsIn, EventsOut

router = APIRouter(tags=["events"])
# Bodies above this size (about 50 events) are parsed and validated in a worker thread.
OFFLOAD_ABOVE_BYTES = 32 * 1024
ALL_REJECTED = {"accepted": 0, "duplicates": 0, "rejected": 1, "results": [
    {"index": 0, "event_id": "e-1", "status": "rejected", "reason": "type: unknown event type 'teleport'"}]}


def prepare(body: bytes) -> tuple[batch.Batch, profile_pb2.IngestEventsRequest]:
    """Parses and validates the batch and builds profile's request from the valid events."""
    checked = batch.check(body)
    return checked, convert.events_request(checked.valid)


@router.post(
    "/v1/events",
    summary="Ingest a batch of events (at most 5,000; each validated on its own)",
    description=(
        "Each event is validated on its own: an invalid event gets a `rejected` result with the reason, "
        "and the others are stored. 200 when none was rejected, 207 when some were, 422 when all were."
    ),
    response_model=EventsOut,
    responses={
        207: {"model": EventsOut, "description": "Some events were rejected; see each result."},
        **errors(400, 401, 403, 413, 503),
        **either(422, "Every event was rejected (an EventsOut with each reason), or the body is not a batch "
                      "(an ErrorOut).", EventsOut, ALL_REJECTED),
    },
    openapi_extra=body_schema(EventsIn),
    dependencies=[Depends(require(PLATFORM))],
)
async def ingest_events(request: Request) -> Response:
    body = await request.body()
    # A large batch takes ~50 us of CPU per event: off the event loop, so other requests keep flowing.
    if len(body) > OFFLOAD_ABOVE_BYTES:
        checked, message = await run_in_threadpool(prepare, body)
    else:
        checked, message = prepare(body)
    answer = None
    # The body is checked before the upstream is even looked up: a bad batch never costs a call.
    if checked.valid:
        clients = upstreams(request)
        answer = await clients.call(
            "profile", clients.profile.IngestEvents, message, timeout_s=clients.ingest_timeout_s
        )
    status, out = batch.merge(checked, answer)
    redemptions = pricing_redemptions.of_batch(checked, answer)
    if redemptions:
        await pricing_redemptions.record(request.app.state.pricing, redemptions)
    count_events(out["accepted"], out["duplicates"], checked.rejections)
    return Response(orjson.dumps(out), status_code=status, media_type="application/json")
