"""A quote's life outside the engine: the request as the engine takes it, the answer as given and stored."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.gateway.pricing import Priced, QuoteLine, QuoteRequest
from services.gateway.pricing_schemas import QuoteIn
from services.gateway.store import NewQuote

QUOTE_ID_PREFIX = "q-"


def new_quote_id() -> str:
    """'q-' and 24 hex digits (96 random bits); valid wherever the API takes an id (an order's quote_id)."""
    return QUOTE_ID_PREFIX + secrets.token_hex(12)


def to_request(body: QuoteIn, at: datetime) -> QuoteRequest:
    lines = tuple(QuoteLine(ln.sku, ln.list_price_minor, ln.quantity, ln.cost_price_minor, ln.category)
                  for ln in body.lines)
    return QuoteRequest(body.customer_id, body.currency, lines, body.sales_channel, body.payment_channel,
                        at.astimezone(UTC))


def build(request: QuoteRequest, priced: Priced, unavailable: dict[str, str], now: datetime,
          ttl: timedelta) -> tuple[NewQuote, bytes]:
    """The stored quote and the answer's JSON (the same bytes GET returns, `expired` aside)."""
    quote_id = new_quote_id()
    expires = now + ttl
    answer: dict[str, Any] = {
        "quote_id": quote_id,
        "created_at": now,
        "expires_at": expires,
        "expired": False,
        "rule_set_version": priced.rule_set_version,
        "customer_id": request.customer_id,
        "currency": priced.currency,
        "sales_channel": request.sales_channel,
        "payment_channel": request.payment_channel,
        "at": request.at,
        "list_minor": priced.list_minor,
        "final_minor": priced.final_minor,
        "discount_minor": priced.discount_minor,
        "discounts": priced.discounts,
        "not_applied": priced.not_applied,
        "lines": priced.lines,
        "degraded": bool(unavailable),
        "unavailable": unavailable,
        # The request as priced (cost prices and categories are not in the lines above).
        "request": {"lines": request.lines},
    }
    body = orjson.dumps(answer, option=orjson.OPT_UTC_Z)
    discounts = [(d.rule_id, d.amount_minor) for d in priced.discounts]
    return NewQuote(quote_id, request.customer_id, priced.rule_set_version, now, expires, discounts, body), body


def with_expiry(body: str, now: datetime, expires_at: datetime) -> bytes:
    """A stored answer, saying whether it has expired by now."""
    answer = orjson.loads(body)
    answer["expired"] = now >= expires_at
    return orjson.dumps(answer)
