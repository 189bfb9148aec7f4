"""The OpenAPI 3.1 document of the customer and admin API, served at GET /openapi.json.

It is built from the route registry (`chalicelib.api.http.registered_routes`) and the same
Schema objects that validate bodies and query strings, so it cannot drift from validation.
Routes outside the JSON API are left out on purpose: see `UNDOCUMENTED_ROUTES`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from chalicelib.accounts import cookies
from chalicelib.accounts.ratelimit import ACCOUNT_LIMITS, IP_LIMITS
from chalicelib.api import idempotency
from chalicelib.api.http import MUTATING_METHODS, RouteSpec, registered_routes
from chalicelib.api.schema import Field, Schema

OPENAPI_VERSION = "3.1.0"
API_TITLE = "Lobster API"
API_VERSION = "1"
ADMIN_PREFIX = "/v1/admin/"
PATH_PARAMETER = re.compile(r"{([^}]+)}")

# Routes that the app serves but the document leaves out, with the reason.
UNDOCUMENTED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/webhooks/{gateway}"): "payment gateways call it in their own formats, verified by their own signatures",
    ("GET", "/"): "the web panel's HTML page",
    ("GET", "/assets/{name}"): "the web panel's scripts and styles",
}

DESCRIPTION = (
    "Prepaid hourly billing for virtual machines. Every request and response body is JSON, "
    "except the CSV statement. Every 4xx and 5xx response has the body "
    '`{"error": {"code", "message", "field"}}`, where `field` names the request field, query '
    "parameter or header at fault, or is null. Writes accept an `Idempotency-Key` header: a "
    "retry with the same key and body returns the first 2xx response again. Amounts are "
    "decimal text plus the integer number of micro-units (1/1,000,000 of the currency)."
)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, such as invalid_request or not_found"},
                "message": {"type": "string", "description": "What failed and what to do next"},
                "field": {"type": ["string", "null"], "description": "The request field, query parameter or header at fault"},
            },
        }
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "A session token from POST /v1/auth/login, or an API key (lbk_<id>_<secret>) where the route "
            "accepts one. Routes marked x-lobster-session-only reject API keys with 403."
        ),
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": cookies.SESSION_COOKIE,
        "description": (
            'The web panel\'s session, set by POST /v1/auth/login with "session": "cookie". It never carries '
            "an API key, and an Authorization header takes precedence over it."
        ),
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": (
            f"The value of the {cookies.CSRF_COOKIE} cookie, required with sessionCookie on every POST, PUT, "
            "PATCH and DELETE; without it the request is rejected with 403."
        ),
    },
}
READ_SECURITY: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": []}]
WRITE_SECURITY: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}]

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"Any 1 to {idempotency.MAX_KEY_LENGTH} printable ASCII characters, such as a UUID. A repeat with the same "
        "body returns the first 2xx response with Idempotent-Replayed: true; another body is a 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH, "pattern": "^[ -~]+$"},
}

ERROR_DESCRIPTIONS = {
    "400": "Invalid request: a body field, query parameter, path parameter or header is wrong",
    "401": "Missing, invalid or expired credentials",
    "403": "The credentials may not call this route",
    "404": "No such resource in the caller's account",
    "409": "Conflicts with the resource's state or with an earlier request of the same Idempotency-Key",
    "415": "The Content-Type is not application/json",
    "429": "Rate limited; the Retry-After header gives the seconds to wait",
    "4XX": "Another client error, such as 402 insufficient_credit",
    "5XX": "A server error, or the provider behind a region failed",
}
SUCCESS_DESCRIPTIONS = {200: "Success", 201: "Created", 202: "Accepted; the change completes in the background", 204: "Success, no body"}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """Build the document from every route registered so far; call it after all blueprints are imported."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for spec in registered_routes():
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation(spec)
        if spec.body is not None:
            schemas[spec.body.name] = spec.body.to_openapi()

    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": API_TITLE, "version": API_VERSION, "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "parameters": {"IdempotencyKey": IDEMPOTENCY_KEY_PARAMETER},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def operation(spec: RouteSpec) -> dict[str, Any]:
    """Describe one route method as an OpenAPI operation object."""
    document: dict[str, Any] = {
        "operationId": operation_id(spec),
        "summary": spec.summary or spec.view_name.replace("_", " ").capitalize(),
        "tags": [_tag(spec.path)],
        "parameters": _parameters(spec),
        "responses": {**_success_responses(spec), **_error_responses(spec)},
        "security": _security(spec),
        "x-lobster-action": spec.action,
        "x-lobster-session-only": spec.session_only,
    }
    if spec.body is not None:
        document["requestBody"] = _request_body(spec.body)
    if spec.path.startswith(ADMIN_PREFIX):
        document["description"] = "Admin role and a log-in session required; every successful call is audited."
    return document


def operation_id(spec: RouteSpec) -> str:
    """Return a unique operation id: the view's name, with admin_ in front on admin routes."""
    if spec.path.startswith(ADMIN_PREFIX) and not spec.view_name.startswith("admin_"):
        return f"admin_{spec.view_name}"
    return spec.view_name


def path_parameters(path: str) -> list[str]:
    return PATH_PARAMETER.findall(path)


def _tag(path: str) -> str:
    segments = [segment for segment in path.split("/") if segment and segment != "v1"]
    return segments[0].split(".")[0] if segments else "root"


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}} for name in path_parameters(spec.path)
    ]
    if spec.query is not None:
        parameters.extend(_query_parameter(field) for field in spec.query.fields)
    if spec.method in MUTATING_METHODS:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    return parameters


def _query_parameter(field: Field) -> dict[str, Any]:
    return {
        "name": field.name,
        "in": "query",
        "required": field.required,
        "description": field.description,
        "schema": {"type": "string", "maxLength": field.max_length},
    }


def _request_body(body: Schema) -> dict[str, Any]:
    # `request_body` reads a missing body as {} when no field is required.
    return {
        "required": any(field.required for field in body.fields),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.name}"}}},
    }


def _success_responses(spec: RouteSpec) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in spec.statuses:
        response: dict[str, Any] = {"description": SUCCESS_DESCRIPTIONS.get(status, "Success")}
        if status != 204:
            schema = {"type": "string"} if not spec.media_type.endswith("json") else {"type": "object"}
            response["content"] = {spec.media_type: {"schema": schema}}
        responses[str(status)] = response
    return responses


def _error_responses(spec: RouteSpec) -> dict[str, Any]:
    has_path_parameters = bool(path_parameters(spec.path))
    statuses = ["400"]
    if not spec.public:
        statuses += ["401", "403"]
    if has_path_parameters:
        statuses.append("404")
    if spec.method in MUTATING_METHODS:
        statuses.append("409")
    if spec.body is not None:
        statuses.append("415")
    if spec.action in IP_LIMITS or spec.action in ACCOUNT_LIMITS:
        statuses.append("429")
    statuses += ["4XX", "5XX"]
    return {status: _error_response(ERROR_DESCRIPTIONS[status]) for status in statuses}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _security(spec: RouteSpec) -> list[dict[str, list[str]]]:
    if spec.public:
        return []
    return WRITE_SECURITY if spec.method in MUTATING_METHODS else READ_SECURITY
