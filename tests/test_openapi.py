"""The OpenAPI document at GET /openapi.json: a valid OpenAPI 3.1 document that lists every
route the app serves, built from the schemas that validate requests, and the error format
of the responses Chalice produces itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from app import app
from chalicelib import clock
from chalicelib.api.http import MUTATING_METHODS, registered_routes
from chalicelib.api.openapi import UNDOCUMENTED_ROUTES, operation_id, path_parameters
from tests.api_calls import ApiCaller

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    reply = ApiCaller(app).call("GET", "/openapi.json")
    assert reply.status == 200, reply.body
    return reply.body


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): item for path, methods in document["paths"].items() for method, item in methods.items()}


def served_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, methods in app.routes.items() for method in methods}


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    OpenAPIV31SpecValidator(document).validate()

    assert document["openapi"] == "3.1.0"


def test_every_served_route_accounted_for(document: dict[str, Any]) -> None:
    documented = set(operations(document))

    missing = served_routes() - documented - set(UNDOCUMENTED_ROUTES)
    assert missing == set()
    assert documented <= served_routes()
    assert documented.isdisjoint(UNDOCUMENTED_ROUTES)


def test_every_registered_route_is_in_document(document: dict[str, Any]) -> None:
    documented = operations(document)

    for spec in registered_routes():
        assert (spec.method, spec.path) in documented, spec
        assert documented[(spec.method, spec.path)]["operationId"] == operation_id(spec)


def test_customer_and_admin_areas_are_both_documented(document: dict[str, Any]) -> None:
    paths = set(document["paths"])

    assert {"/v1/vms", "/v1/vms/{vm_id}", "/v1/ssh-keys", "/v1/tickets", "/v1/api-keys", "/v1/payments"} <= paths
    assert {"/v1/admin/users/{account_id}/credit", "/v1/admin/plans/{plan_id}/regions/{region_id}"} <= paths


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [item["operationId"] for item in operations(document).values()]

    assert len(ids) == len(set(ids))


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for (method, path), item in operations(document).items():
        declared = [parameter["name"] for parameter in item["parameters"] if parameter.get("in") == "path"]
        assert declared == path_parameters(path), (method, path)
        assert all(parameter["required"] for parameter in item["parameters"] if parameter.get("in") == "path")


def test_request_bodies_come_from_route_schemas(document: dict[str, Any]) -> None:
    documented = operations(document)
    components = document["components"]["schemas"]

    for spec in registered_routes():
        item = documented[(spec.method, spec.path)]
        if spec.body is None:
            assert "requestBody" not in item, (spec.method, spec.path)
            continue
        reference = item["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = components[reference.rsplit("/", 1)[1]]
        assert component == spec.body.to_openapi(), spec.body.name
        assert component["additionalProperties"] is False
        assert component["required"] == [field.name for field in spec.body.fields if field.required]


def test_body_strings_have_max_length(document: dict[str, Any]) -> None:
    for name, component in document["components"]["schemas"].items():
        if name == "Error":
            continue
        for field_name, field in component["properties"].items():
            kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
            if "string" in kinds:
                assert isinstance(field["maxLength"], int), (name, field_name)
            if "array" in kinds:
                assert isinstance(field["items"]["maxLength"], int), (name, field_name)
                assert isinstance(field["maxItems"], int), (name, field_name)


def test_create_vm_body_is_described(document: dict[str, Any]) -> None:
    component = document["components"]["schemas"]["CreateVm"]

    assert component["required"] == ["name", "region", "plan", "image"]
    assert component["properties"]["name"]["maxLength"] == 64
    assert component["properties"]["ssh_key"]["type"] == ["string", "null"]


def test_query_parameters_come_from_route_schemas(document: dict[str, Any]) -> None:
    documented = operations(document)

    for spec in registered_routes():
        query = [parameter for parameter in documented[(spec.method, spec.path)]["parameters"] if parameter.get("in") == "query"]
        expected = [field.name for field in spec.query.fields] if spec.query is not None else []
        assert [parameter["name"] for parameter in query] == expected, (spec.method, spec.path)
        assert all(parameter["schema"]["maxLength"] > 0 for parameter in query)


def test_every_error_response_uses_error_schema(document: dict[str, Any]) -> None:
    for key, item in operations(document).items():
        errors = {status: response for status, response in item["responses"].items() if status[0] in "45"}
        assert {"400", "4XX", "5XX"} <= set(errors), key
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ERROR_REF, (key, status)


def test_error_schema_requires_code_message_and_field(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]["properties"]["error"]

    assert error["required"] == ["code", "message", "field"]
    assert error["properties"]["field"]["type"] == ["string", "null"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("POST", "/v1/vms", ["201"]),
        ("DELETE", "/v1/vms/{vm_id}", ["200", "202"]),
        ("POST", "/v1/images", ["202"]),
        ("POST", "/v1/vms/{vm_id}/snapshots", ["202"]),
        ("POST", "/v1/auth/reset-request", ["202"]),
        ("DELETE", "/v1/api-keys/{key_id}", ["204"]),
        ("POST", "/v1/auth/signup", ["201"]),
        ("POST", "/v1/admin/plans", ["201"]),
        ("GET", "/v1/vms", ["200"]),
    ],
)
def test_success_statuses_match_routes(document: dict[str, Any], method: str, path: str, statuses: list[str]) -> None:
    responses = document["paths"][path][method.lower()]["responses"]

    assert [status for status in responses if status.startswith("2")] == statuses


def test_empty_response_has_no_content(document: dict[str, Any]) -> None:
    response = document["paths"]["/v1/api-keys/{key_id}"]["delete"]["responses"]["204"]

    assert "content" not in response


def test_statement_is_csv(document: dict[str, Any]) -> None:
    response = document["paths"]["/v1/ledger.csv"]["get"]["responses"]["200"]

    assert list(response["content"]) == ["text/csv"]


def test_security_schemes_describe_bearer_and_cookie(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    assert (schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == ("cookie", "lobster_session")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")


def test_security_by_route_kind(document: dict[str, Any]) -> None:
    documented = operations(document)

    for spec in registered_routes():
        security = documented[(spec.method, spec.path)]["security"]
        if spec.public:
            assert security == [], (spec.method, spec.path)
        elif spec.method in MUTATING_METHODS:
            assert {"sessionCookie": [], "csrfToken": []} in security, (spec.method, spec.path)
            assert {"bearerToken": []} in security
        else:
            assert security == [{"bearerToken": []}, {"sessionCookie": []}], (spec.method, spec.path)


def test_writes_document_idempotency_key(document: dict[str, Any]) -> None:
    for (method, path), item in operations(document).items():
        has_key = {"$ref": "#/components/parameters/IdempotencyKey"} in item["parameters"]
        assert has_key == (method in MUTATING_METHODS), (method, path)


def test_session_only_and_admin_routes_are_marked(document: dict[str, Any]) -> None:
    documented = operations(document)

    assert documented[("POST", "/v1/api-keys")]["x-lobster-session-only"] is True
    assert documented[("GET", "/v1/vms")]["x-lobster-session-only"] is False
    assert documented[("GET", "/v1/vms")]["x-lobster-action"] == "vms:read"
    assert all(item["x-lobster-session-only"] for (_, path), item in documented.items() if path.startswith("/v1/admin/"))


def test_unsupported_method_uses_error_format() -> None:
    reply = ApiCaller(app).call("PUT", "/v1/vms")

    assert reply.status == 405
    assert reply.body["error"]["code"] == "method_not_allowed"
    assert set(reply.body["error"]) == {"code", "message", "field"}
    assert "POST" in reply.headers["Allow"]


def test_unsupported_media_type_uses_error_format() -> None:
    reply = ApiCaller(app).call("POST", "/v1/auth/signup", raw=b"email=a", headers={"Content-Type": "text/plain"})

    assert reply.status == 415
    assert reply.body["error"]["code"] == "unsupported_media_type"


@pytest.mark.usefixtures("demo_catalog", "clock")
def test_unknown_query_parameter_is_rejected() -> None:
    clock.set_time(T0)
    api = ApiCaller(app)
    token = api.verified_session("ann@example.com")

    typo = api.call("GET", "/v1/ledger?mnth=2026-12", token=token)
    repeated = api.call("GET", "/v1/ledger?month=2026-12&month=2026-11", token=token)
    known = api.call("GET", "/v1/ledger?month=2026-12", token=token)

    assert (typo.status, typo.error_field) == (400, "mnth")
    assert (repeated.status, repeated.error_field) == (400, "month")
    assert known.status == 200
