"""Pricing admin routes: save a rule set as a new version, read the current one or any version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from services.common import clock
from services.gateway.auth import ADMIN, require
from services.gateway.errors import ApiError
from services.gateway.openapi import error_example, errors
from services.gateway.pricing_rules import RuleSet, RuleSetIn
from services.gateway.pricing_schemas import RuleSetOut
from services.gateway.store import PricingStore

router = APIRouter(tags=["pricing"], dependencies=[Depends(require(ADMIN))])
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number.", examples=[3])]
_RID = "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"
RULE_SET_422 = error_example(
    422, "The rule set failed validation: each problem with its location (unknown rule kind, tiers out of "
         "order, a window ending before it starts, a discount below 0% or above 100%, ...).",
    {"error": "invalid request",
     "detail": [{"loc": ["body", "rules", 0, "vip_tiers"],
                 "msg": "Value error, rule 'vip': tiers overlap or are out of order: 'gold' starts at 100000, not "
                        "above 'silver' at 100000; list tiers by ascending min", "type": "value_error"}],
     "request_id": _RID},
)


async def pricing_store(request: Request) -> PricingStore:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request for nothing.
    store: PricingStore = request.app.state.pricing
    return store


Store = Annotated[PricingStore, Depends(pricing_store)]


def _out(rule_set: RuleSet) -> RuleSetOut:
    return RuleSetOut(version=rule_set.version, created_at=rule_set.created_at, rule_set=rule_set.spec)


@router.put(
    "/v1/pricing/rule-set",
    status_code=201,
    summary="Save a rule set as the next version; quotes use it from now on",
    description="The whole rule set is checked first. Quotes already given keep the version they were priced "
                "with; a version never changes once saved.",
    response_model=RuleSetOut,
    responses={**errors(400, 401, 403, 413, 415), **RULE_SET_422},
)
async def save_rule_set(body: RuleSetIn, store: Store) -> RuleSetOut:
    return _out(await run_in_threadpool(store.save_rule_set, body, clock.now()))


@router.get(
    "/v1/pricing/rule-set",
    summary="The current rule set (the newest version)",
    response_model=RuleSetOut,
    responses={**errors(401, 403), **error_example(404, "No rule set has been saved yet.", {
        "error": "no pricing rule set has been saved yet", "detail": None, "request_id": _RID})},
)
async def current_rule_set(store: Store) -> RuleSetOut:
    found = await run_in_threadpool(store.current_rule_set)
    if found is None:
        raise ApiError(404, "no pricing rule set has been saved yet")
    return _out(found)


@router.get(
    "/v1/pricing/rule-set/versions/{version}",
    summary="One saved version of the rule set",
    response_model=RuleSetOut,
    responses={**errors(401, 403, 422), **error_example(404, "No such version.", {
        "error": "there is no rule set version 7", "detail": None, "request_id": _RID})},
)
async def rule_set_version(version: Version, store: Store) -> RuleSetOut:
    found = await run_in_threadpool(store.rule_set, version)
    if found is None:
        raise ApiError(404, f"there is no rule set version {version}")
    return _out(found)
