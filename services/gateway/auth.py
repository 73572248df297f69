"""API key authentication: `Authorization: Bearer mk_...`; scopes `platform` and `admin` (admin implies all)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from services.gateway.errors import ApiError
from services.gateway.ratelimit import enforce
from services.gateway.store import KeyStore, Principal, Scopes

ADMIN = "admin"
PLATFORM = "platform"

# auto_error=False: the 401 is ours (ErrorOut body); the scheme still appears in the OpenAPI document.
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer mk_...`.")


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


async def principal_of(store: KeyStore, key: str) -> Principal | None:
    """From the in-memory cache when fresh; otherwise the database, off the event loop."""
    hit, found = store.cached_principal(key)
    if hit:
        return found
    return await run_in_threadpool(store.principal, key)


def require(scope: str) -> Callable[..., Awaitable[Scopes]]:
    """A dependency that admits keys holding `scope` (or admin): 401 without a valid key, 403 without the scope,
    429 over the key's rate limit."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Scopes:
        if credentials is None or not credentials.credentials:
            raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        store: KeyStore = request.app.state.keys
        found = await principal_of(store, credentials.credentials)
        if found is None:
            raise _unauthorized("invalid or revoked API key", "invalid_token")
        if scope not in found.scopes and ADMIN not in found.scopes:
            raise ApiError(403, f"this API key lacks the '{scope}' scope")
        request.state.api_key_name = found.name
        await enforce(request, found)
        return found.scopes

    dependency.__name__ = f"require_{scope}"
    return dependency
