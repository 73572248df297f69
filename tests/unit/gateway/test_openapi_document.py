"""The gateway's OpenAPI document is complete: every operation summarised, every answer with a schema, every
request body and error with an example that fits it, and the errors each kind of route can give documented."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore

Document = dict[str, Any]
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def document(settings: GatewaySettings, keys: KeyStore) -> Document:
    # The document is built from the routes alone: no lifespan, no upstream call.
    found: Document = create_app(settings, keys=keys).openapi()
    return found


def operations(document: Document) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def resolve(document: Document, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def has_example(document: Document, media: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    alternatives = [s for s in schema.get("anyOf") or schema.get("oneOf") or [schema] if s != {"type": "null"}]
    return all(any(key in resolve(document, s) for key in ("example", "examples")) for s in alternatives)


def problems_of(document: Document) -> list[str]:
    """Every way an operation falls short, one line each."""
    problems: list[str] = []
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        responses: dict[str, Any] = operation.get("responses", {})
        if not operation.get("summary"):
            problems.append(f"{where}: no summary")
        successes = [code for code in responses if code.startswith("2")]
        if not successes:
            problems.append(f"{where}: no 2xx response")
        for code, response in responses.items():
            content = response.get("content") or {}
            if not content:
                problems.append(f"{where} {code}: no content")
            for media_type, media in content.items():
                if "schema" not in media:
                    problems.append(f"{where} {code} {media_type}: no schema")
                elif media_type == "application/json" and not code.startswith("2") and not has_example(document, media):
                    problems.append(f"{where} {code}: no example")
        expected = {"400"}  # uvicorn's answer to a request it cannot parse
        if operation.get("security"):
            expected |= {"401", "403", "429"}
        if operation.get("parameters") or "requestBody" in operation:
            expected.add("422")
        if "requestBody" in operation:
            expected |= {"413"}
        for code in sorted(expected - set(responses)):
            problems.append(f"{where}: {code} not documented")
        body = operation.get("requestBody")
        if body is not None:
            media = body.get("content", {}).get("application/json")
            if media is None or "schema" not in media:
                problems.append(f"{where}: request body without a JSON schema")
            elif not has_example(document, media):
                problems.append(f"{where}: request body without an example")
    return problems


def test_every_operation_is_summarised_with_schemas_examples_and_its_errors(document: Document) -> None:
    assert len(operations(document)) >= 40
    assert problems_of(document) == []


def test_the_walk_fails_on_what_it_should(document: Document) -> None:
    operation = document["paths"]["/v1/events"]["post"]
    del operation["summary"]
    del operation["responses"]["429"]
    operation["responses"]["200"]["content"]["application/json"].pop("schema")
    assert problems_of(document) == [
        "POST /v1/events: no summary",
        "POST /v1/events 200 application/json: no schema",
        "POST /v1/events: 429 not documented",
    ]


def test_shared_errors_carry_schema_example_and_retry_after(document: Document) -> None:
    responses = document["paths"]["/v1/customers/{customer_id}/profile"]["get"]["responses"]
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert responses["503"]["content"]["application/json"]["example"]["error"].startswith("profile service")
    assert responses["400"]["content"]["text/plain"]["example"] == "Invalid HTTP request received."
    # A batch whose every item failed is answered with the batch's own body; a malformed one with ErrorOut.
    events_422 = document["paths"]["/v1/events"]["post"]["responses"]["422"]["content"]["application/json"]
    assert events_422["schema"]["anyOf"] == [{"$ref": "#/components/schemas/EventsOut"},
                                             {"$ref": "#/components/schemas/ErrorOut"}]
    assert "healthz" not in str(document["paths"]["/healthz"]["get"]["responses"].keys())
    assert "429" not in document["paths"]["/healthz"]["get"]["responses"]


def examples_of(document: Document) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example the document gives, of bodies sent and answered."""
    found: list[tuple[str, dict[str, Any], Any]] = []
    for method, path, operation in operations(document):
        medias = [("request", operation.get("requestBody", {}).get("content", {}).get("application/json"))]
        medias += [(code, r.get("content", {}).get("application/json")) for code, r in operation["responses"].items()]
        for what, media in medias:
            if media is None or "schema" not in media:
                continue
            examples = [media["example"]] if "example" in media else []
            schema = media["schema"]
            for alternative in schema.get("anyOf") or [schema]:
                examples += resolve(document, alternative).get("examples", [])
            found += [(f"{method} {path} {what}", schema, example) for example in examples]
    return found


def test_every_example_matches_its_schema(document: Document) -> None:
    found = examples_of(document)
    assert len(found) > 100
    wrong = []
    for where, schema, example in found:
        # The component schemas are reachable from the example's schema by the document's own $refs.
        validator = Draft202012Validator({**schema, "components": document["components"]})
        wrong += [f"{where}: {error.message}" for error in validator.iter_errors(example)]
    assert wrong == []


# Admin routes whose success answers have no example yet (segments, models, campaigns): the list may only
# shrink. Every platform route has one.
WITHOUT_SUCCESS_EXAMPLE = {
    "GET /v1/segments 200", "POST /v1/segments 201", "GET /v1/segments/{name} 200",
    "POST /v1/admin/segments/sync 200", "POST /v1/predictive-models/{goal}/train 201",
    "GET /v1/predictive-models 200", "GET /v1/predictive-models/{goal} 200", "POST /v1/items 200",
    "POST /v1/items 207", "POST /v1/models/train 202", "POST /v1/models/train 200", "GET /v1/models 200",
    "GET /v1/models/{version} 200", "POST /v1/campaigns 201", "GET /v1/campaigns 200",
    "GET /v1/campaigns/{campaign_id} 200", "POST /v1/campaigns/{campaign_id}/launch 200",
    "POST /v1/campaigns/{campaign_id}/pause 200", "POST /v1/campaigns/{campaign_id}/resume 200",
    "POST /v1/campaigns/{campaign_id}/cancel 200", "GET /v1/campaigns/{campaign_id}/report 200",
    "GET /v1/campaigns/{campaign_id}/deliveries 200", "GET /v1/partners 200", "POST /v1/partners 201",
    "POST /v1/campaigns/estimate 200", "POST /v1/campaigns/estimate/compare 200",
    "GET /v1/campaigns/{campaign_id}/compare/{other_id} 200",
}


def test_success_answers_have_examples(document: Document) -> None:
    missing = {f"{method} {path} {code}" for method, path, operation in operations(document)
               for code, response in operation["responses"].items()
               if code.startswith("2") and "application/json" in response.get("content", {})
               and not has_example(document, response["content"]["application/json"])}
    assert missing - WITHOUT_SUCCESS_EXAMPLE == set(), "add an example to these"
    assert WITHOUT_SUCCESS_EXAMPLE - missing == set(), "these have one now: take them off the list"
