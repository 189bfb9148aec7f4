"""The HTTP edge: one error format for every route, the current account, JSON responses.

Every LobsterError becomes `{"error": {"code", "message", "field"}}` with its status;
anything else is logged and answered with a 500 that reveals no internals.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.accounts.service import authenticate
from chalicelib.errors import LobsterError, Unauthenticated
from chalicelib.log import logger
from chalicelib.models.accounts import Account

View = TypeVar("View", bound=Callable[..., Any])

JSON_HEADERS = {"Content-Type": "application/json"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers={**JSON_HEADERS, **SECURITY_HEADERS, **(headers or {})})


def error_response(error: LobsterError) -> Response:
    return json_response(error.to_body(), error.status)


def route(blueprint: Blueprint, path: str, methods: list[str]) -> Callable[[View], View]:
    """Register a view on `blueprint`, answering every failure in the one error format.

    Chalice turns exceptions into its own 500 body before middleware runs, so the mapping
    happens here, around each view.
    """

    def register(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except LobsterError as error:
                if error.status >= 500:
                    logger.error("request_failed", extra={"path": path, "code": error.code, "error": error.message})
                return error_response(error)
            except Exception:  # noqa: BLE001 - the edge answers every failure with a JSON 500
                logger.exception("request_crashed", extra={"path": path, "methods": methods})
                return json_response(INTERNAL_ERROR_BODY, 500)

        blueprint.route(path, methods=methods)(wrapped)
        return view

    return register


INTERNAL_ERROR_BODY = {"error": {"code": "internal_error", "message": "internal error; try again later", "field": None}}


def current_account(request: Request) -> Account:
    """Return the account of the request's bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an Authorization: Bearer <token> header; get a token from /v1/auth/login")
    return authenticate(token.strip())
