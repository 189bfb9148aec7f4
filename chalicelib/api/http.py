"""The HTTP edge: one error format for every route, who is calling and what they may do,
rate limits, Idempotency-Key handling, JSON responses.

Every LobsterError becomes `{"error": {"code", "message", "field"}}` with its status;
anything else is logged and returned as a 500 that reveals no internals. Every route has
an action name ("vms:create"), which API keys are limited by and rate limits are keyed on.
The client address is API Gateway's `requestContext.identity.sourceIp`, never a header.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.accounts import apikeys
from chalicelib.accounts.principal import Principal, authenticate_request
from chalicelib.accounts.ratelimit import RateLimitExceeded, address_key, hit_account_limit, hit_ip_limit
from chalicelib.api import idempotency
from chalicelib.api.schema import Schema
from chalicelib.errors import Forbidden, LobsterError, Unauthenticated
from chalicelib.log import logger
from chalicelib.models.accounts import Account

View = TypeVar("View", bound=Callable[..., Any])
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

JSON_HEADERS = {"Content-Type": "application/json"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# An account whose e-mail address is not verified may do everything else, including adding
# credit, but these actions wait until it sends back the mailed verification token.
VERIFIED_EMAIL_ACTIONS = frozenset({"vms:create", "images:create"})
INTERNAL_ERROR_BODY = {"error": {"code": "internal_error", "message": "internal error; try again later", "field": None}}

# Action names of the registered routes that an API key may be limited to.
_key_actions: set[str] = set()


@dataclass(frozen=True)
class RouteSpec:
    """One method of a registered route: what the OpenAPI document states about it, and the
    body and query schemas that `request_body` and `request_query` validate with."""

    path: str
    method: str
    view_name: str
    summary: str
    action: str | None
    public: bool
    session_only: bool
    body: Schema | None = None
    query: Schema | None = None
    statuses: tuple[int, ...] = (200,)
    media_type: str = "application/json"


_routes: list[RouteSpec] = []


@dataclass
class _Call:
    """The request being handled, with its principal once authenticated."""

    request: Request
    action: str | None
    session_only: bool
    public: bool
    address: Address | None
    principal: Principal | None = None
    failure: LobsterError | None = None
    authenticated: bool = False
    admitted: bool = False
    spec: RouteSpec | None = None


_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("lobster_current_call", default=None)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str | list[str]] | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers={**JSON_HEADERS, **SECURITY_HEADERS, **(headers or {})})


def empty_response(status: int = 204) -> Response:
    return Response(body="", status_code=status, headers=dict(SECURITY_HEADERS))


def error_response(error: LobsterError) -> Response:
    headers = {}
    if isinstance(error, RateLimitExceeded):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return json_response(error.to_body(), error.status, headers)


def action_name(method: str, path: str) -> str:
    """Name a route's action "<resource>:<verb>" from its first path segment after /v1.

    GET reads, DELETE deletes, POST to the collection itself creates, and any other write
    updates: POST /v1/vms is "vms:create", POST /v1/vms/{vm_id}/{action} is "vms:update".
    """
    segments = [segment for segment in path.split("/") if segment]
    if segments and segments[0] == "v1":
        segments = segments[1:]
    resource = segments[0].split(".")[0] if segments else "root"
    if method in ("GET", "HEAD"):
        verb = "read"
    elif method == "DELETE":
        verb = "delete"
    elif method == "POST" and len(segments) == 1:
        verb = "create"
    else:
        verb = "update"
    return f"{resource}:{verb}"


def key_actions() -> frozenset[str]:
    """Action names of the registered routes that an API key may call."""
    return frozenset(_key_actions)


def registered_routes() -> tuple[RouteSpec, ...]:
    """Return every route registered through `route`, in registration order."""
    return tuple(_routes)


def route(
    blueprint: Blueprint,
    path: str,
    methods: list[str],
    *,
    action: str | None = None,
    session_only: bool = False,
    public: bool = False,
    secret_fields: tuple[str, ...] = (),
    body: Schema | None = None,
    query: Schema | None = None,
    status: int | tuple[int, ...] = 200,
    media_type: str = "application/json",
) -> Callable[[View], View]:
    """Register a view on `blueprint`, answering every failure in the one error format.

    `action` overrides the name `action_name` derives. A `session_only` route rejects API
    keys, and a `public` route needs no credentials; neither is offered as an API key action.
    `secret_fields` are response fields that an Idempotency-Key replay returns as null.
    `body` and `query` are the schemas the view reads through `request_body` and
    `request_query`; with `status` (the success statuses) and the response `media_type`
    they are recorded for the OpenAPI document. Chalice turns exceptions into its own 500
    body before middleware runs, so the mapping happens here, around each view.
    """
    actions = {method: action or action_name(method, path) for method in methods}
    if not session_only and not public:
        _key_actions.update(actions.values())
    statuses = (status,) if isinstance(status, int) else status

    def register(view: View) -> View:
        summary = (view.__doc__ or "").strip().split("\n")[0]
        specs = {
            method: RouteSpec(path, method, view.__name__, summary, actions[method], public, session_only, body, query, statuses, media_type)
            for method in methods
        }
        _routes.extend(specs.values())

        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            request = blueprint.current_request
            call = _Call(request, actions.get(request.method), session_only, public, client_address(request), spec=specs.get(request.method))
            token = _current_call.set(call)
            try:
                return _respond(blueprint, call, path, secret_fields, lambda: view(*args, **kwargs))
            finally:
                _current_call.reset(token)

        blueprint.route(path, methods=methods)(wrapped)
        return view

    return register


def _respond(blueprint: Blueprint, call: _Call, path: str, secret_fields: tuple[str, ...], run_view: Callable[[], Any]) -> Response:
    def produce() -> Response:
        return _run_view(call, path, run_view)

    try:
        request = call.request
        key = idempotency.read_key(request.headers) if request.method in MUTATING_METHODS else None
        if key is None:
            return produce()
        return idempotency.run_once(
            _idempotency_scope(call),
            key,
            _request_id(request),
            request.raw_body,
            produce,
            secret_fields,
            _lambda_context(blueprint),
        )
    except LobsterError as error:
        return error_response(error)
    except Exception:  # noqa: BLE001 - the edge answers every failure with a JSON 500
        logger.exception("request_crashed", extra={"path": path, "action": call.action})
        return json_response(INTERNAL_ERROR_BODY, 500)


def _run_view(call: _Call, path: str, run_view: Callable[[], Any]) -> Response:
    try:
        if call.action is not None:
            hit_ip_limit(call.action, call.address)
        result = run_view()
    except LobsterError as error:
        if error.status >= 500:
            logger.error("request_failed", extra={"path": path, "code": error.code, "error": error.message})
        return error_response(error)
    except Exception:  # noqa: BLE001 - the edge answers every failure with a JSON 500
        logger.exception("request_crashed", extra={"path": path, "action": call.action})
        return json_response(INTERNAL_ERROR_BODY, 500)
    return result if isinstance(result, Response) else json_response(result)


def request_body() -> dict[str, Any]:
    """Return the current request's body, validated by the schema its route declares.

    A body whose schema has no required field may be left out, which reads as `{}`.
    """
    call = _current_call.get()
    if call is None or call.spec is None or call.spec.body is None:
        raise TypeError("request_body() needs a route registered with body=<Schema>")
    schema = call.spec.body
    if not call.request.raw_body and not any(field.required for field in schema.fields):
        return {}
    return schema.parse_body(call.request.raw_body)


def request_query() -> dict[str, Any]:
    """Return the current request's query parameters, validated by the schema its route declares."""
    call = _current_call.get()
    if call is None or call.spec is None or call.spec.query is None:
        raise TypeError("request_query() needs a route registered with query=<Schema>")
    return call.spec.query.parse_query(call.request.query_params)


def client_address(request: Request) -> Address | None:
    """Return the caller's address as API Gateway saw the connection, IPv4 or IPv6."""
    identity = (request.context or {}).get("identity") or {}
    try:
        return ipaddress.ip_address(identity.get("sourceIp") or "")
    except ValueError:
        return None


def current_principal(request: Request) -> Principal:
    """Return the authenticated caller, checked against the route's action.

    Raises Unauthenticated without valid credentials, Forbidden when the credential or the
    account may not call this action, and RateLimitExceeded past the account's limit.
    """
    call = _current_call.get()
    if call is None:
        call = _Call(request, None, False, False, client_address(request))
    principal = _authenticated(call)
    if not call.admitted:
        _admit(call, principal)
        call.admitted = True
    return principal


def current_account(request: Request) -> Account:
    """Return the account of the request's bearer token or API key."""
    return current_principal(request).account


def _authenticated(call: _Call) -> Principal:
    if not call.authenticated:
        call.authenticated = True
        try:
            call.principal = authenticate_request(call.request.method, call.request.headers)
        except LobsterError as error:
            call.failure = error
    if call.failure is not None:
        raise call.failure
    if call.principal is None:
        raise Unauthenticated("send an Authorization: Bearer <token> header")
    return call.principal


def _admit(call: _Call, principal: Principal) -> None:
    key = principal.api_key
    if key is not None:
        apikeys.check_address(key, call.address)
        if call.session_only:
            raise Forbidden("this route needs a session token from /v1/auth/login; API keys cannot manage credentials")
        apikeys.check_action(key, call.action)

    if call.action in VERIFIED_EMAIL_ACTIONS and not principal.account.email_verified:
        raise Forbidden(
            f"verify your e-mail address before {call.action}: send the token from the sign-up e-mail to "
            "/v1/auth/verify, or POST /v1/auth/verify-request for a new one"
        )
    if call.action is not None:
        hit_account_limit(call.action, principal.account.account_id)
    if key is not None:
        apikeys.record_use(key, call.address)


def _idempotency_scope(call: _Call) -> str:
    """Return the owner of an Idempotency-Key: the account, or the client address on a public
    route or when the request carries no valid credentials."""
    if call.public:
        return "address:" + address_key(call.address)
    try:
        return "account:" + _authenticated(call).account.account_id
    except LobsterError:
        return "address:" + address_key(call.address)


def _request_id(request: Request) -> str:
    parameters = json.dumps(request.uri_params or {}, sort_keys=True)
    query = json.dumps(request.query_params or {}, sort_keys=True)
    return f"{request.method} {request.path} {parameters} {query}"


def _lambda_context(blueprint: Blueprint) -> Any:
    try:
        return blueprint.lambda_context
    except RuntimeError:
        return None
