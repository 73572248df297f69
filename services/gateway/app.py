"""create_app(): the gateway's FastAPI application (routes, middleware, error mapping, lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.gateway import errors, openapi
from services.gateway.clients import Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.limits import BodyLimitMiddleware
from services.gateway.metrics import MetricsMiddleware
from services.gateway.pricing_writer import QuoteWriter
from services.gateway.ratelimit import KeyRateLimiter
from services.gateway.requestid import RequestIdMiddleware
from services.gateway.routes import admin, campaigns, customers, events, ops, recommendations, segments
from services.gateway.routes import campaign_compare as compare_routes
from services.gateway.routes import pricing as pricing_routes
from services.gateway.routes import quotes as quote_routes
from services.gateway.schemas import EventsIn
from services.gateway.store import KeyStore, PricingStore

DESCRIPTION = (
    "The public API of Marksman for the e-commerce platform. Authenticate with "
    "`Authorization: Bearer <API key>`; errors are JSON `ErrorOut` bodies carrying the request id "
    "(also in the `X-Request-ID` header)."
)


def create_app(
    settings: GatewaySettings,
    *,
    keys: KeyStore | None = None,
    connect: Callable[[GatewaySettings], Upstreams] = Upstreams.connect,
) -> FastAPI:
    """The app; `keys` defaults to the gateway's database (migrated now), `connect` opens the upstream
    channels when the app starts (tests may pass their own)."""
    owns_keys = keys is None
    key_store = keys or KeyStore.open(settings.resolved_database_url(), cache_ttl_s=settings.key_cache_ttl_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # grpc.aio channels belong to the running event loop: open them here, not at import or build time.
        app.state.upstreams = connect(settings)
        try:
            yield
        finally:
            clients, app.state.upstreams = app.state.upstreams, None
            await clients.close()
            if owns_keys:
                key_store.close()

    app = FastAPI(
        title="Marksman gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keys = key_store
    # Pricing lives in the gateway's own database, beside the keys (one engine, one migration history).
    app.state.pricing = PricingStore(key_store.engine, current_ttl_s=settings.rule_set_cache_s)
    app.state.quote_writer = QuoteWriter(app.state.pricing.save_quotes)
    # Per-key limits of the current rule set, counted in this process (auth.require enforces them).
    app.state.rate_limiter = KeyRateLimiter()
    app.state.upstreams = None
    # Quotes first: FastAPI tries the routers in this order, twice per request (~5 us a route), and a quote is the
    # platform's most frequent call (bench/gateway.py).
    routers = (quote_routes.router, customers.router, events.router, segments.router, recommendations.router,
               admin.router, ops.router, pricing_routes.router, campaigns.router, compare_routes.router)
    for router in routers:
        app.include_router(router)
    errors.install(app)
    routes = [route for router in routers for route in router.routes]
    openapi.install(app, [EventsIn, recommendations.ItemsIn], routes)
    # Last added runs first: request id, then metrics (which logs with the id), then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, routes=routes)
    app.add_middleware(RequestIdMiddleware)
    return app
