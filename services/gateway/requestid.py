"""Request ids: taken from X-Request-ID (or generated), echoed on every response and put in every log line."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_BYTES = HEADER.lower().encode()
# A caller's id is kept when it is short and plain; anything else is replaced (no log injection).
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)
# Generated ids are letters only: services.common.logs.redact() takes runs of 7+ digits for phone
# numbers, which would mangle about half of all hex uuids in the logs.
_LETTERS_FOR_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def new_request_id() -> str:
    """32 letters carrying a uuid4's 128 bits."""
    return uuid.uuid4().hex.translate(_LETTERS_FOR_DIGITS)


def request_id_of(request: Request) -> str | None:
    state = request.scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else _current.get()


def current() -> str | None:
    return _current.get()


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead on the hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == _HEADER_BYTES), b"")
        rid = given.decode() if _ACCEPTABLE.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = _current.set(rid)
        encoded = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_BYTES]
                headers.append((_HEADER_BYTES, encoded))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to records logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = _current.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


def install_log_filter() -> None:
    """Attaches the filter to the root handlers (call after services.common.logs.configure)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdLogFilter())
