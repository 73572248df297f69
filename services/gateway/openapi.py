"""OpenAPI helpers: declared error responses per route, and schemas of bodies a route parses itself."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from services.gateway.schemas import ErrorOut

_DESCRIPTIONS = {
    400: "Malformed JSON (the detail gives the position).",
    401: "Missing, invalid or revoked API key.",
    403: "The API key lacks the scope this route needs.",
    404: "Not found.",
    409: "Conflict with the current state.",
    413: "Body over the size limit, or a batch over 5,000 items: split it.",
    415: "The body is not sent as Content-Type: application/json.",
    422: "The body or a parameter failed validation.",
    429: "The API key is over its rate limit (pricing rule set, channel_rules): retry after `Retry-After` seconds.",
    502: "An upstream service failed.",
    503: "An upstream service is unavailable or did not answer in time; retry.",
}


_RID = "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"
# One typical body per code, as the gateway words it (errors.py, auth.py, limits.py, ratelimit.py).
_EXAMPLES: dict[int, tuple[str, object]] = {
    400: ("malformed JSON", {"message": "expected value", "position": 0}),
    401: ("missing API key: send 'Authorization: Bearer <key>'", None),
    403: ("this API key lacks the 'admin' scope", None),
    404: ("customer 17850 not found", {"grpc_status": "NOT_FOUND"}),
    409: ("conflict with the current state", {"grpc_status": "FAILED_PRECONDITION"}),
    413: ("content too large", "request body is larger than 10485760 bytes; split the batch"),
    415: ("unsupported media type", "send the body as Content-Type: application/json"),
    422: ("invalid request", [{"loc": ["query", "k"], "msg": "Input should be less than or equal to 100",
                              "type": "less_than_equal"}]),
    429: ("rate limit exceeded", {"scope": "platform", "requests_per_s": 100.0, "burst": 200, "retry_after_s": 1}),
    502: ("profile service failed (INTERNAL)", {"grpc_status": "INTERNAL"}),
    503: ("profile service unavailable: no answer within 2 s", {"grpc_status": "DEADLINE_EXCEEDED"}),
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
# uvicorn answers a request it cannot parse (a request line or headers over its limits, about 64 KB) itself,
# before any route runs: 400 in plain text. Every operation can get it, so every operation documents it.
_UNPARSABLE = "Invalid HTTP request received."


def example_body(code: int) -> dict[str, Any]:
    """A typical ErrorOut body for `code`."""
    error, detail = _EXAMPLES[code]
    return {"error": error, "detail": detail, "request_id": _RID}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code with the ErrorOut body and a typical example."""
    return {
        code: {"model": ErrorOut, "description": _DESCRIPTIONS[code],
               "content": {"application/json": {"example": example_body(code)}}}
        for code in codes
    }


def ok(example: dict[str, Any], code: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry giving the success answer's example (its schema comes from `response_model`)."""
    return {code: {"content": {"application/json": {"example": example}}}}


def either(code: int, description: str, model: type[BaseModel], example: dict[str, Any]) -> dict[int | str, Any]:
    """`responses=` entry for a code answered with `model` (a batch whose every item failed) or ErrorOut."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in (model.__name__, ErrorOut.__name__)]
    return {code: {"description": description,
                   "content": {"application/json": {"schema": {"anyOf": refs}, "example": example}}}}


def error_example(code: int, description: str, example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for one code with the ErrorOut body, its own description and an example body."""
    return {
        code: {"model": ErrorOut, "description": description, "content": {"application/json": {"example": example}}}
    }


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` describing a JSON body the route reads itself, by reference to the model."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def install(app: FastAPI, extra_models: list[type[BaseModel]], routes: Sequence[BaseRoute] = ()) -> None:
    """Adds `extra_models` (and the models they use) to components.schemas of the generated document, the
    responses every operation shares, and the response examples of `routes` as they were declared."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        # A copy: FastAPI builds the document from the routes' own `responses` dicts, which must stay as declared.
        document = copy.deepcopy(get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        ))
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in extra_models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        schemas.setdefault(ErrorOut.__name__, ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        _restore_examples(document, routes)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                _add_shared_responses(operation)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _restore_examples(document: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Puts the declared response examples back as written: FastAPI drops every null from the document, so an
    example's `"detail": null` vanished and the example no longer matched a schema that requires the field."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        for code, declared in route.responses.items():
            example = declared.get("content", {}).get("application/json", {}).get("example")
            if example is None:
                continue
            for method in route.methods or ():
                operation = document["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operation["responses"][str(code)]["content"]["application/json"]["example"] = copy.deepcopy(example)


def _add_shared_responses(operation: dict[str, Any]) -> None:
    """Responses any operation can give whatever its route says: uvicorn's plain-text 400, and on routes behind
    an API key the per-key rate limit's 429 (ratelimit.py, enforced in auth.require)."""
    responses = operation.setdefault("responses", {})
    unparsable = responses.setdefault("400", {"description": "The request could not be parsed.", "content": {}})
    if "content" not in unparsable:
        unparsable["content"] = {}
    unparsable["description"] += " A request the HTTP server cannot parse (for example a URL over about 64 KB) " \
                                 "is answered in plain text before it reaches the API."
    unparsable["content"]["text/plain"] = {"schema": {"type": "string"}, "example": _UNPARSABLE}
    if "requestBody" in operation:
        # Every body passes the size limit (limits.py) and is parsed as JSON before the route sees it.
        unparsable["content"].setdefault("application/json", _error_content(400))
        responses.setdefault("413", {"description": _DESCRIPTIONS[413], "content": _error_content(413)})
    if operation.get("security") and "429" not in responses:
        responses["429"] = {
            "description": "The API key is over its rate limit (the rule set's channel_rules); retry after "
                           "`Retry-After` seconds.",
            "headers": _RETRY_AFTER,
            "content": _error_content(429),
        }
    if "503" in responses:
        responses["503"].setdefault("headers", _RETRY_AFTER)


def _error_content(code: int) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}, "example": example_body(code)}}
