"""Quote routes: price a cart for a customer (POST /v1/quotes) and read a quote given before."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from services.common import clock
from services.gateway import pricing_facts, pricing_quotes
from services.gateway.auth import PLATFORM, require
from services.gateway.deps import settings, upstreams
from services.gateway.errors import ApiError
from services.gateway.metrics import count_quote
from services.gateway.openapi import error_example, errors, ok
from services.gateway.pricing import CustomerFacts, Usage, needed_sources, price, usage_needed
from services.gateway.pricing_schemas import QUOTE_EXAMPLE, QuoteIn, QuoteOut
from services.gateway.routes.pricing import Store
from services.gateway.schemas import ID_PATTERN
from services.gateway.store import PricingStore

router = APIRouter(tags=["pricing"], dependencies=[Depends(require(PLATFORM))])
QuoteId = Annotated[str, Path(pattern=ID_PATTERN, description="The quote's id.", examples=["q-5f0c2a9d41b7e3a8c6d2f1e0"])]
_RID = "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"
_WALLET = {"rule_id": "wallets", "kind": "payment", "name": "Wallet payment", "rule_set_version": 1,
           "reason": "Wallet payment: paying by wechat_pay; 2% off"}
_DECEMBER = {"rule_id": "december-deals", "kind": "offer", "name": "December deals", "rule_set_version": 1,
             "reason": "December deals: price_sensitivity 0.61 >= 0.60, 2011-12-01T00:00:00Z to "
                       "2012-01-01T00:00:00Z; 10% off"}
# A quote of the demo stack (services/demo): a price-sensitive customer paying by wechat_pay.
QUOTE_OUT_EXAMPLE = {
    "quote_id": "q-a9aa3978540f0348c8e06bd2", "created_at": "2011-12-10T00:00:00Z",
    "expires_at": "2011-12-10T00:15:00Z", "expired": False, "rule_set_version": 1, "customer_id": "13261",
    "currency": "GBP", "sales_channel": "app", "payment_channel": "wechat_pay", "at": "2011-12-10T00:00:00Z",
    "list_minor": 590, "final_minor": 520, "discount_minor": 70,
    "discounts": [{**_DECEMBER, "amount_minor": 59}, {**_WALLET, "amount_minor": 11}],
    "not_applied": [{"rule_id": "vip", "kind": "vip_tiers", "name": "VIP",
                     "reason": "spend 944.10 GBP in the last 365 days is below the lowest tier 'silver' (1,000.00 GBP)"}],
    "lines": [{"index": 0, "sku": "85123A", "quantity": 2, "unit_list_price_minor": 295, "list_minor": 590,
               "floor_minor": 295, "final_minor": 520, "discount_minor": 70,
               "discounts": [{**_DECEMBER, "amount_minor": 59}, {**_WALLET, "amount_minor": 11}], "not_applied": []}],
    "degraded": False, "unavailable": {},
    "request": {"lines": [{"sku": "85123A", "list_price_minor": 295, "quantity": 2, "cost_price_minor": None,
                           "category": "Candles & Lights"}]}}


@router.post(
    "/v1/quotes",
    status_code=201,
    summary="Price a cart for a customer (or an anonymous shopper) under the current rule set",
    description="Every line gets its list and final price, the discounts applied in order (each naming its rule, "
                "the rule-set version and the reason) and the rules that were not applied, with why. The quote is "
                "stored under `quote_id` until `expires_at`; an order event carrying that `quote_id` redeems it. "
                "When profile or segment cannot answer in time the quote is still given, without the rules that "
                "need their data: `degraded` is true and `unavailable` names the upstream and why.",
    response_model=QuoteOut,
    responses={**ok(QUOTE_OUT_EXAMPLE, 201), **errors(400, 401, 403, 413, 415, 422),
               **error_example(409, "No rule set has been saved yet.", {
                   "error": "no pricing rule set has been saved yet: PUT /v1/pricing/rule-set first",
                   "detail": None, "request_id": _RID})},
    openapi_extra={"requestBody": {"content": {"application/json": {"example": QUOTE_EXAMPLE}}}},
)
async def create_quote(body: QuoteIn, request: Request) -> Response:
    store: PricingStore = request.app.state.pricing
    rule_set = store.current_rule_set()
    if rule_set is None:
        raise ApiError(409, "no pricing rule set has been saved yet: PUT /v1/pricing/rule-set first")
    if body.currency != rule_set.spec.currency:
        raise ApiError(422, f"the rule set prices in {rule_set.spec.currency}; got a quote in {body.currency}")
    config = settings(request)
    now = clock.now()
    quote = pricing_quotes.to_request(body, body.at or now)
    facts: CustomerFacts | None = None
    unavailable: dict[str, str] = {}
    if quote.customer_id is not None:
        sources = needed_sources(rule_set, quote)
        if sources:
            facts, unavailable = await pricing_facts.gather(
                upstreams(request), quote.customer_id, sources, rule_set.window_days(), quote.at,
                config.pricing_timeout_s)
    offers = usage_needed(rule_set, quote, facts)
    usage = Usage()
    if offers:
        usage = (store.usage(quote.customer_id, offers) if store.inline_reads
                 else await run_in_threadpool(store.usage, quote.customer_id, offers))
    priced = price(rule_set, quote, facts, usage)
    stored, answer = pricing_quotes.build(quote, priced, unavailable, now, timedelta(seconds=config.quote_ttl_s))
    await request.app.state.quote_writer.save(stored)
    count_quote(bool(unavailable), [applied.kind for applied in priced.discounts])
    return Response(answer, status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/quotes/{stored.quote_id}"})


@router.get(
    "/v1/quotes/{quote_id}",
    summary="A quote given before, as it was given; `expired` says whether it still holds",
    response_model=QuoteOut,
    responses={**ok(QUOTE_OUT_EXAMPLE), **errors(401, 403, 422), **error_example(404, "No quote by that id.", {
        "error": "there is no quote q-5f0c2a9d41b7e3a8c6d2f1e0", "detail": None, "request_id": _RID})},
)
async def get_quote(quote_id: QuoteId, store: Store) -> Response:
    found = await run_in_threadpool(store.quote, quote_id)
    if found is None:
        raise ApiError(404, f"there is no quote {quote_id}")
    return Response(pricing_quotes.with_expiry(found.body, clock.now(), found.expires_at),
                    media_type="application/json")
