"""OpenAPI helpers: declared error responses per route, and schemas of bodies a route parses itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

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


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code with the ErrorOut body."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


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


def install(app: FastAPI, extra_models: list[type[BaseModel]]) -> None:
    """Adds `extra_models` (and the models they use) to components.schemas of the generated document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in extra_models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
