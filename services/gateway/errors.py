"""The one mapping from gRPC status codes (and gateway errors) to HTTP responses with an ErrorOut body."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from services.gateway.requestid import request_id_of

log = logging.getLogger(__name__)

# INVALID_ARGUMENT and OUT_OF_RANGE become 422, not 400: the body was well-formed JSON but the service
# found a value it cannot accept, which is what 422 means everywhere else in this API; 400 is kept for
# bodies that cannot be parsed at all. ABORTED (a concurrent change) is a retryable 409.
_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}
# The caller can do something about these, so the service's message is passed on as is.
_PASS_DETAILS = {400, 403, 404, 409, 422}

_TITLES = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "content too large",
    415: "unsupported media type",
    422: "invalid request",
    500: "internal error",
    502: "bad gateway",
    503: "service unavailable",
}


class ApiError(Exception):
    """An error answer: HTTP status, a short message, optional structured detail and headers."""

    def __init__(
        self, status: int, error: str, detail: object | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


class UpstreamError(ApiError):
    """A failed gRPC call, already translated; `service` names the upstream ("profile")."""

    def __init__(self, service: str, code: grpc.StatusCode, details: str, timeout_s: float | None = None) -> None:
        self.service = service
        self.code = code
        status = http_status_for(code)
        super().__init__(status, upstream_message(service, code, details, timeout_s), {"grpc_status": code.name})
        if status == 503:
            self.headers["Retry-After"] = "1"


def http_status_for(code: grpc.StatusCode) -> int:
    """INVALID_ARGUMENT/OUT_OF_RANGE 422, NOT_FOUND 404, ALREADY_EXISTS/FAILED_PRECONDITION/ABORTED 409,
    PERMISSION_DENIED 403, UNAVAILABLE/DEADLINE_EXCEEDED 503, anything else 502."""
    return _STATUS.get(code, 502)


def upstream_message(service: str, code: grpc.StatusCode, details: str, timeout_s: float | None) -> str:
    status = http_status_for(code)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {timeout_s:g} s" if timeout_s is not None else " in time"
        return f"{service} service unavailable: no answer{within}"
    if status == 503:
        return f"{service} service unavailable: {details or code.name.lower()}"
    if status in _PASS_DETAILS:
        return details or code.name.lower().replace("_", " ")
    # Internal failures of an upstream: name it, but do not pass its internals to the caller.
    return f"{service} service failed ({code.name})"


def error_response(
    request: Request | None, status: int, error: str, detail: object | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": error, "detail": detail, "request_id": request_id_of(request) if request else None}
    return Response(
        orjson.dumps(body, default=str), status_code=status, media_type="application/json", headers=headers
    )


def _validation_detail(errors: Any) -> list[dict[str, Any]]:
    # "input" may echo a whole body (and personal data); the location and message are enough.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")} for e in errors]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, UpstreamError) and exc.status >= 500:
        log.warning("upstream call failed", extra={"upstream": exc.service, "grpc_status": exc.code.name})
    return error_response(request, exc.status, exc.error, exc.detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    decode = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if decode is not None:
        position = decode.get("loc", (None, None))[-1]
        reason = (decode.get("ctx") or {}).get("error", "")
        return error_response(request, 400, "malformed JSON", {"message": str(reason), "position": position})
    whole_body = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
    if whole_body and "json" not in request.headers.get("content-type", ""):
        # FastAPI parses JSON bodies only when they say so; without this the error would be a puzzle.
        return error_response(request, 415, "unsupported media type", "send the body as Content-Type: application/json")
    return error_response(request, 422, "invalid request", _validation_detail(errors))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _TITLES.get(exc.status_code, "error")
    same = isinstance(exc.detail, str) and exc.detail.lower() == title
    detail = None if same or not exc.detail else exc.detail
    return error_response(request, exc.status_code, title, detail, dict(exc.headers or {}))


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Starlette's outermost middleware sends this one, so the request id header is set here too.
    log.error("unhandled error", exc_info=exc)
    rid = request_id_of(request)
    return error_response(request, 500, "internal error; see the gateway log", None, {"X-Request-ID": rid or ""})


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
