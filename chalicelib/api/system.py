"""Health check for load balancers and uptime checks, which touches no database. The OpenAPI
document of the API, built from the registered routes. The error format for the responses
Chalice produces itself (405, 415), which no view sees.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.api.http import json_response, route
from chalicelib.clock import iso, now

blueprint = Blueprint(__name__)

# Chalice's own error bodies are {"Code": ..., "Message": ...}; these are their codes in
# Lobster's error format.
CHALICE_ERROR_CODES = {
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "BadRequest": "invalid_request",
    "InternalServerError": "internal_error",
}


@route(blueprint, "/health", ["GET"], public=True)
def health() -> object:
    return json_response({"status": "ok", "time": iso(now())})


@route(blueprint, "/openapi.json", ["GET"], public=True)
def get_openapi_document() -> object:
    """Return the OpenAPI 3.1 document of the customer and admin API."""
    from chalicelib.api.openapi import openapi_document

    return json_response(openapi_document())


@blueprint.middleware("http")
def use_error_format(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Rewrite an error response that Chalice produced itself, before any view ran, into the error format."""
    response = get_response(event)
    body = response.body
    if not isinstance(body, dict) or set(body) != {"Code", "Message"} or body["Code"] not in CHALICE_ERROR_CODES:
        return response

    error = {"error": {"code": CHALICE_ERROR_CODES[body["Code"]], "message": str(body["Message"]), "field": None}}
    kept = {name: value for name, value in (response.headers or {}).items() if name.lower() == "allow"}
    return json_response(error, response.status_code, kept)
