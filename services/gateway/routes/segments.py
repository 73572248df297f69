"""Segment routes: create (by rule or by model), check and preview rules, refresh, read segments and their
members (admin), the segments of one customer (platform), and the portrait sync of the segment service (admin).
The predictive model routes (routes/predictive_models.py) ride on this router: the segment service serves both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from marksman.segment.v1 import segment_pb2
from pydantic import AfterValidator

from services.gateway import convert
from services.gateway.auth import ADMIN, PLATFORM, require
from services.gateway.clients import Upstreams
from services.gateway.deps import SegmentStub, segment, upstreams
from services.gateway.errors import ApiError, UpstreamError
from services.gateway.openapi import error_example, errors
from services.gateway.routes import predictive_models
from services.gateway.routes.customers import CustomerId
from services.gateway.schemas import (
    MAX_MEMBERS_PAGE,
    SEGMENT_NAME_PATTERN,
    SEGMENT_NAME_RULE,
    CustomerSegmentOut,
    CustomerSegmentsOut,
    MembersOut,
    PreviewIn,
    PreviewOut,
    RefreshOut,
    RuleCheckOut,
    RuleIn,
    SegmentDetailOut,
    SegmentIn,
    SegmentOut,
    SegmentsOut,
    SyncOut,
    check_segment_name,
)

SERVICE = "segment"
router = APIRouter(tags=["segments"])
Admin = [Depends(require(ADMIN))]
Clients = Annotated[Upstreams, Depends(upstreams)]
Segment = Annotated[SegmentStub, Depends(segment)]
SegmentName = Annotated[
    str,
    Path(description=f"The segment's name: {SEGMENT_NAME_RULE}.", examples=["big-spenders"],
         json_schema_extra={"pattern": SEGMENT_NAME_PATTERN}),
    AfterValidator(check_segment_name),
]
Version = Annotated[
    int, Path(ge=0, le=2**31 - 1, description="The version number; 0 for the current version.", examples=[3])
]
# Opaque to the caller: whatever a previous page returned as next_cursor.
Cursor = Annotated[
    str | None,
    Query(max_length=256, pattern=r"^[\x21-\x7e]+$",
          description="The `next_cursor` of the previous page; omit for the first page."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_MEMBERS_PAGE, description="Customer ids per page.")]

Response = TypeVar("Response")

_RULE_PROBLEMS_EXAMPLE = {
    "error": "line 1, column 18: unknown trait 'recncy_days' — did you mean 'recency_days'?",
    "detail": {"grpc_status": "INVALID_ARGUMENT",
               "problems": [{"line": 1, "column": 18,
                             "message": "unknown trait 'recncy_days' — did you mean 'recency_days'?"}]},
    "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f",
}
RULE_422 = error_example(
    422, "The rule has problems (each with its line and column in `detail.problems`), or a field or "
         "parameter failed validation.", _RULE_PROBLEMS_EXAMPLE,
)
NOT_FOUND_404 = error_example(
    404, "No segment by that name (or no such version).",
    {"error": "there is no segment named 'big-spenders'", "detail": {"grpc_status": "NOT_FOUND"},
     "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"},
)
UNAVAILABLE_503 = error_example(
    503, "The segment service is not configured (MARKSMAN_GATEWAY_SEGMENT_ADDR is empty), unavailable, "
         "or did not answer in time.",
    {"error": "segment service not configured",
     "detail": "the gateway has no MARKSMAN_GATEWAY_SEGMENT_ADDR; segment routes are off",
     "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"},
)


async def _checked(
    clients: Upstreams, method: Callable[..., Awaitable[Response]], request: Any, *, timeout_s: float | None = None
) -> Response:
    """A call whose errors may be about a rule: the problems the message names go into detail.problems."""
    try:
        return await clients.call(SERVICE, method, request, timeout_s=timeout_s)
    except UpstreamError as error:
        problems = convert.parse_problems(error.error) if error.status in (409, 422) else []
        if problems:
            base = error.detail if isinstance(error.detail, dict) else {}
            error.detail = {**base, "problems": [p.model_dump() for p in problems]}
        raise


@router.post(
    "/v1/segments",
    status_code=201,
    summary="Create a segment from a rule (checked first) or a model audience",
    description="The segment has no members until it is refreshed. A rule naming an unknown trait, or comparing a "
                "trait with a value of the wrong type, is refused here with its line and column. Instead of a rule, "
                '`model` (`{"goal": "retention", "top_k": 500}` or `{"goal": ..., "threshold": 0.6}`) makes a model '
                "audience: each refresh scores the customers with the goal's current model.",
    response_model=SegmentOut,
    responses={**errors(400, 401, 403, 409, 415, 502), **RULE_422, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def create_segment(body: SegmentIn, clients: Clients, stub: Segment) -> SegmentOut:
    request = segment_pb2.CreateSegmentRequest(name=body.name, rule=body.rule or "", description=body.description)
    if body.model is not None:
        request.model.CopyFrom(convert.audience_to_proto(body.model))
    response = await _checked(clients, stub.CreateSegment, request)
    return convert.segment_out(response.segment)


@router.post(
    "/v1/segments/preview",
    summary="Count the customers an unsaved rule selects now, with a sample",
    response_model=PreviewOut,
    responses={**errors(400, 401, 403, 415, 502), **RULE_422, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def preview_rule(body: PreviewIn, clients: Clients, stub: Segment) -> PreviewOut:
    request = segment_pb2.PreviewRuleRequest(rule=body.rule, sample_size=body.sample_size)
    return convert.preview_out(await _checked(clients, stub.PreviewRule, request))


@router.post(
    "/v1/segments/validate",
    summary="Check a rule without storing it: 200 when it can be used, 422 with every problem's position",
    response_model=RuleCheckOut,
    responses={**errors(400, 401, 403, 415, 502), **RULE_422, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def validate_rule(body: RuleIn, clients: Clients, stub: Segment) -> RuleCheckOut:
    response = await clients.call(SERVICE, stub.ValidateRule, segment_pb2.ValidateRuleRequest(rule=body.rule))
    if not response.valid:
        problems = convert.problems_out(response.problems)
        raise ApiError(422, convert.problems_text(problems) or "the rule cannot be used",
                       {"problems": [p.model_dump() for p in problems]})
    return RuleCheckOut(valid=True, traits=list(response.traits), segments=list(response.segments))


@router.get(
    "/v1/segments",
    summary="Every segment (the built-in RFM segments included) with its current version",
    response_model=SegmentsOut,
    responses={**errors(401, 403, 502), **UNAVAILABLE_503},
    dependencies=Admin,
)
async def list_segments(clients: Clients, stub: Segment) -> SegmentsOut:
    response = await clients.call(SERVICE, stub.ListSegments, segment_pb2.ListSegmentsRequest())
    return SegmentsOut(segments=[convert.segment_out(s) for s in response.segments])


@router.get(
    "/v1/segments/{name}",
    summary="A segment with its retained versions and their sizes, newest first",
    response_model=SegmentDetailOut,
    responses={**errors(401, 403, 422, 502), **NOT_FOUND_404, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def get_segment(name: SegmentName, clients: Clients, stub: Segment) -> SegmentDetailOut:
    response = await clients.call(SERVICE, stub.GetSegment, segment_pb2.GetSegmentRequest(name=name))
    return convert.segment_detail_out(response)


@router.post(
    "/v1/segments/{name}/refresh",
    summary="Evaluate the segment over every portrait and store its members as a new version",
    description="Returns the new version with its size and the time it took. Versions never change once "
                "written; old ones stay readable until the retention limit. 409 when the stored rule no "
                "longer checks (e.g. a segment it reads was removed), with the problems' positions, or when a "
                "model audience's goal has no trained model yet.",
    response_model=RefreshOut,
    responses={**errors(401, 403, 409, 422, 502), **NOT_FOUND_404, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def refresh_segment(name: SegmentName, clients: Clients, stub: Segment) -> RefreshOut:
    # Evaluating a large base and writing its members takes as long as a big ingest: the longer deadline.
    request = segment_pb2.RefreshSegmentRequest(name=name)
    response = await _checked(clients, stub.RefreshSegment, request, timeout_s=clients.ingest_timeout_s)
    return convert.refresh_out(name, response)


@router.get(
    "/v1/segments/{name}/versions/{version}/members",
    summary="The members of one version, a page at a time",
    description="Pages follow the segment service's own token, so a page never skips or repeats a member even "
                "when customers are erased between pages. Pass `next_cursor` back as `cursor` until it is null.",
    response_model=MembersOut,
    responses={**errors(401, 403, 422, 502), **NOT_FOUND_404, **UNAVAILABLE_503,
               **error_example(409, "The segment has no version yet: refresh it first.",
                               {"error": "segment 'big-spenders' has no version yet; refresh it first",
                                "detail": {"grpc_status": "FAILED_PRECONDITION"},
                                "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"})},
    dependencies=Admin,
)
async def list_members(
    name: SegmentName, version: Version, clients: Clients, stub: Segment, cursor: Cursor = None, limit: Limit = 1000
) -> MembersOut:
    # One message of `limit` ids, and the service stops after `limit` ids whatever its page size.
    request = segment_pb2.StreamMembersRequest(
        name=name, version=version, page_size=limit, page_token=cursor or "", limit=limit
    )
    pages = await clients.stream(SERVICE, stub.StreamMembers, request)
    customer_ids = [customer_id for page in pages for customer_id in page.customer_ids]
    scores = [score for page in pages for score in page.scores]
    last = pages[-1] if pages else None
    return MembersOut(
        name=name,
        version=last.version if last is not None and last.version else version,
        customer_ids=customer_ids,
        scores=scores if scores and len(scores) == len(customer_ids) else None,
        next_cursor=(last.next_page_token or None) if last is not None else None,
    )


@router.get(
    "/v1/customers/{customer_id}/segments",
    summary="The segments whose current version holds the customer",
    response_model=CustomerSegmentsOut,
    responses={**errors(401, 403, 422, 502), **UNAVAILABLE_503},
    dependencies=[Depends(require(PLATFORM))],
)
async def customer_segments(customer_id: CustomerId, clients: Clients, stub: Segment) -> CustomerSegmentsOut:
    request = segment_pb2.ListCustomerSegmentsRequest(customer_id=customer_id)
    response = await clients.call(SERVICE, stub.ListCustomerSegments, request)
    return CustomerSegmentsOut(
        customer_id=customer_id,
        segments=[CustomerSegmentOut(name=s.name, version=s.version) for s in response.segments],
    )


@router.post(
    "/v1/admin/segments/sync",
    summary="Pull the portraits changed in profile into the segment service's cache",
    description="Refreshes evaluate the cached portraits: sync after recomputing portraits. `full=true` pulls "
                "every portrait again instead of those changed since the last sync.",
    response_model=SyncOut,
    responses={**errors(401, 403, 409, 422, 502), **UNAVAILABLE_503},
    dependencies=Admin,
)
async def sync_portraits(
    clients: Clients, stub: Segment,
    full: Annotated[bool, Query(description="Pull every portrait, not only the changed ones.")] = False,
) -> SyncOut:
    request = segment_pb2.SyncPortraitsRequest(full=full)
    response = await clients.call(SERVICE, stub.SyncPortraits, request, timeout_s=clients.ingest_timeout_s)
    return convert.sync_out(response)


router.include_router(predictive_models.router)
