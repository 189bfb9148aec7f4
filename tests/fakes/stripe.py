"""A fake Stripe API: Checkout Sessions, PaymentIntents, charges, refunds, disputes, and
signed webhook deliveries.

Every request is checked against Stripe's OpenAPI document (API version 2023-08-16),
and one that Stripe would reject gets Stripe's error JSON. Objects the fake
returns or sends in events are built from Stripe's own fixtures and checked against the
same document. The spec is parsed once per process.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from chalicelib.payments.base import CallbackRequest
from tests.fakes.openapi_validation import provider_spec_path
from tests.fakes.server import FakeProvider, Request, Response

SPEC_DIR = provider_spec_path("stripe")
API_VERSION = "2023-08-16"  # the version of spec3.yaml in SPEC_DIR
SPEC_RESOURCE = "stripe-spec"
MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 10
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_UNIT_AMOUNT = 99_999_999  # Stripe's largest amount in minor units (eight digits)
SESSION_LIFETIME_SECONDS = 24 * 3600
# Smallest charge in minor units (USD 0.50, GBP 0.30, from Stripe's minimum-charge table).
# Stripe lists a minimum for every currency. The fake checks only these two.
MIN_CHARGE_AMOUNTS = {"usd": 50, "gbp": 30}
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

_KEY = re.compile(r"^(?P<name>[^\[\]]+)(?P<path>(?:\[[^\[\]]*\])*)$")
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# The OpenAPI document.


@functools.cache
def stripe_spec() -> dict[str, Any]:
    with open(SPEC_DIR / "spec3.yaml", encoding="utf-8") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)


@functools.cache
def stripe_fixtures() -> dict[str, Any]:
    with open(SPEC_DIR / "fixtures3.json", encoding="utf-8") as handle:
        return json.load(handle)["resources"]


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(SPEC_RESOURCE, Resource.from_contents(stripe_spec(), default_specification=DRAFT4))


def _nullable(keyword: str):
    """Wrap a keyword check so None passes where the schema sets `nullable: true`.

    openapi-schema-validator applies `nullable` to `type` only, but Stripe marks nullable
    fields that carry `anyOf` or `enum` too, and its own fixtures hold None there.
    """
    check = OAS30Validator.VALIDATORS[keyword]

    def nullable_check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return nullable_check


_StripeValidator = validators.extend(
    OAS30Validator, {keyword: _nullable(keyword) for keyword in ("anyOf", "oneOf", "enum", "type")}
)


def _validator(schema: Mapping[str, Any]):
    return _StripeValidator(schema, registry=_registry())


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = stripe_spec()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _operation(method: str, path: str) -> dict[str, Any]:
    return stripe_spec()["paths"][path][method.lower()]


def check_object(obj: Mapping[str, Any], schema_name: str) -> None:
    """Raise AssertionError when an object the fake built would not be valid Stripe output."""
    error = best_match(_validator({"$ref": f"{SPEC_RESOURCE}#/components/schemas/{schema_name}"}).iter_errors(obj))
    if error is not None:
        location = "/".join(str(part) for part in error.absolute_path)
        raise AssertionError(f"fake {schema_name} is not valid Stripe output at {location!r}: {error.message}")


# Request parameters: Stripe's bracket encoding, coerced by the schema, then validated.


class ParameterError(Exception):
    def __init__(self, message: str, param: str | None = None, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def decode_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode "a[b][0][c]=v" pairs into nested dicts and lists, as Stripe reads them."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise ParameterError(f"Invalid parameter name: {key}", key)
        parts: list[str] = [match["name"], *re.findall(r"\[([^\[\]]*)\]", match["path"])]
        _insert(root, parts, value, key)
    return _lists_from_indexes(root)


def _insert(node: dict[Any, Any], parts: list[str], value: str, key: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        slot: Any = part
        if part == "":
            slot = len(node)
        elif part.isdigit():
            slot = int(part)
        if last:
            if isinstance(node.get(slot), dict):
                raise ParameterError(f"Invalid hash: {key} is both a value and a hash", key)
            node[slot] = value
            return
        child = node.setdefault(slot, {})
        if not isinstance(child, dict):
            raise ParameterError(f"Invalid hash: {key} is both a value and a hash", key)
        node = child


def _lists_from_indexes(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexes(value) for key, value in node.items()}
    if converted and all(isinstance(key, int) for key in converted):
        return [converted[key] for key in sorted(converted)]
    return {str(key): value for key, value in converted.items()}


def coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """Turn form strings into the integers, booleans and numbers the schema expects."""
    schema = _resolve(schema)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            for option in schema[keyword]:
                candidate = coerce(value, option)
                if _validator(option).is_valid(candidate):
                    return candidate
            return value

    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {
            key: coerce(item, properties.get(key) or (extra if isinstance(extra, dict) else {}))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [coerce(item, schema.get("items", {})) for item in value]
    if isinstance(value, str):
        return _coerce_text(value, schema.get("type"))
    return value


def _coerce_text(value: str, schema_type: str | None) -> Any:
    if schema_type == "integer" and _INTEGER.match(value):
        return int(value)
    if schema_type == "number" and _NUMBER.match(value):
        return Decimal(value)
    if schema_type == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def validate_params(params: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce and validate decoded parameters; raise ParameterError as Stripe words it."""
    coerced = coerce(params, schema)
    error = best_match(_validator(schema).iter_errors(coerced))
    if error is not None:
        raise _parameter_error(error)
    return coerced


def _parameter_error(error: ValidationError) -> ParameterError:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - allowed)[0]
        param = _param_name([*path, unknown])
        return ParameterError(f"Received unknown parameter: {param}", param, "parameter_unknown")
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        param = _param_name([*path, missing])
        return ParameterError(f"Missing required param: {param}.", param, "parameter_missing")

    param = _param_name(path)
    if error.validator == "type":
        kind = error.validator_value if isinstance(error.validator_value, str) else "value"
        return ParameterError(f"Invalid {kind}: {error.instance}", param, f"parameter_invalid_{kind}")
    if error.validator == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return ParameterError(f"Invalid {param}: must be one of {choices}", param)
    return ParameterError(f"Invalid {param}: {error.message}", param)


def _param_name(path: list[Any]) -> str:
    if not path:
        return ""
    return str(path[0]) + "".join(f"[{part}]" for part in path[1:])


def query_schema(operation: Mapping[str, Any]) -> dict[str, Any]:
    """Build one closed object schema from an operation's query parameters."""
    parameters = [parameter for parameter in operation.get("parameters", []) if parameter["in"] == "query"]
    return {
        "type": "object",
        "properties": {parameter["name"]: parameter["schema"] for parameter in parameters},
        "required": [parameter["name"] for parameter in parameters if parameter.get("required")],
        "additionalProperties": False,
    }


def body_schema(operation: Mapping[str, Any]) -> dict[str, Any]:
    return operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]


# The fake server.


class FakeStripe(FakeProvider):
    """Stripe's API in memory, plus helpers that play the customer and Stripe's webhooks."""

    def __init__(self, secret_key: str = "sk_test_lobster", webhook_secret: str = "whsec_lobster") -> None:
        super().__init__()
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.objects: dict[str, dict[str, Any]] = {}  # every object by id, in creation order
        self._private: dict[str, dict[str, Any]] = {}  # per session: what Stripe keeps but does not return
        self._idempotent: dict[str, tuple[bytes, Response]] = {}
        self._state_lock = threading.RLock()
        self._sequence = 0
        self._responses_to_lose = 0

        self.route("POST", "/v1/checkout/sessions", self._create_session)
        self.route("GET", "/v1/checkout/sessions", self._lister("/v1/checkout/sessions", "checkout.session"))
        self.route("GET", "/v1/checkout/sessions/{session}", self._getter("/v1/checkout/sessions/{session}", "session"))
        self.route("GET", "/v1/payment_intents", self._lister("/v1/payment_intents", "payment_intent"))
        self.route("GET", "/v1/refunds", self._lister("/v1/refunds", "refund"))
        self.route("GET", "/v1/charges/{charge}", self._getter("/v1/charges/{charge}", "charge"))

    def dispatch(self, request: Request) -> Response:
        rejection = self._rejection(request)
        if rejection is not None:
            with self._lock:
                self.requests.append(request)
            return rejection
        if request.method != "POST":
            return super().dispatch(request)
        return self._dispatch_idempotent(request)

    def _rejection(self, request: Request) -> Response | None:
        problem = self._authentication_problem(request.headers.get("authorization", ""))
        if problem is not None:
            return _error(401, "invalid_request_error", problem)
        version = request.headers.get("stripe-version")
        if version is not None and version != API_VERSION:
            return _error(400, "invalid_request_error", f"Invalid Stripe API version: {version}")
        return None

    def lose_next_response(self, count: int = 1) -> None:
        """Carry out the next `count` POSTs but return 502, as if the response was lost on the way."""
        with self._state_lock:
            self._responses_to_lose += count

    def _authentication_problem(self, authorization: str) -> str | None:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential, validate=True).decode().partition(":")[0]
            except ValueError:
                return "Invalid Basic authorization header."
        elif scheme.lower() != "bearer":
            return (
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )
        if not hmac.compare_digest(credential.encode(), self.secret_key.encode()):
            return f"Invalid API Key provided: {credential[:8]}****{credential[-4:]}"
        return None

    def _dispatch_idempotent(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if key is None:
            return super().dispatch(request)
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            return _error(400, "invalid_request_error", f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH}")

        fingerprint = request.method.encode() + request.path.encode() + b"\n" + request.body
        with self._state_lock:
            stored = self._idempotent.get(key)
            if stored is None:
                # A failure injected by FakeProvider represents one in front of the API,
                # which never ran the request, so Stripe would not save it for the key.
                injected = bool(self._failures)
                response = super().dispatch(request)
                if not injected:
                    self._idempotent[key] = (fingerprint, response)
                if not injected and self._responses_to_lose:
                    self._responses_to_lose -= 1
                    return Response.text("upstream connection lost", 502)
                return response

        with self._lock:
            self.requests.append(request)
        if stored[0] != fingerprint:
            return _error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request.",
            )
        replayed = stored[1]
        return Response(replayed.status, replayed.body, {**replayed.headers, "Idempotent-Replayed": "true"})

    def not_found(self, request: Request) -> Response:
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {request.path}).")

    # Routes.

    def _create_session(self, request: Request) -> Response:
        operation = _operation("post", "/v1/checkout/sessions")
        try:
            params = validate_params(self._form(request), body_schema(operation))
            line_items = _checked_line_items(params)
        except ParameterError as error:
            return _error(400, "invalid_request_error", error.message, param=error.param, code=error.code)

        session = self._new_session(params, line_items)
        return Response.json(session)

    def _lister(self, path: str, object_type: str):
        operation = _operation("get", path)

        def list_objects(request: Request) -> Response:
            try:
                params = validate_params(decode_params(_query_pairs(request)), query_schema(operation))
                page, has_more = self._page(object_type, params)
            except ParameterError as error:
                return _error(400, "invalid_request_error", error.message, param=error.param, code=error.code)
            return Response.json({"object": "list", "data": page, "has_more": has_more, "url": path})

        return list_objects

    def _getter(self, path: str, id_param: str):
        operation = _operation("get", path)

        def get_object(request: Request) -> Response:
            try:
                validate_params(decode_params(_query_pairs(request)), query_schema(operation))
            except ParameterError as error:
                return _error(400, "invalid_request_error", error.message, param=error.param, code=error.code)
            object_id = request.params[id_param]
            with self._state_lock:
                obj = self.objects.get(object_id)
            if obj is None:
                return _error(
                    404,
                    "invalid_request_error",
                    f"No such {id_param}: '{object_id}'",
                    param="id",
                    code="resource_missing",
                )
            return Response.json(obj)

        return get_object

    def _page(self, object_type: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        limit = params.get("limit", DEFAULT_PAGE_LIMIT)
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise ParameterError(f"Invalid limit: must be between 1 and {MAX_PAGE_LIMIT}", "limit")

        with self._state_lock:
            items = [obj for obj in reversed(list(self.objects.values())) if obj["object"] == object_type]
        items = [item for item in items if _matches(item, params)]

        cursor = params.get("starting_after")
        if cursor:
            ids = [item["id"] for item in items]
            if cursor not in ids:
                raise ParameterError(f"No such {object_type}: '{cursor}'", "starting_after", "resource_missing")
            items = items[ids.index(cursor) + 1 :]
        return items[:limit], len(items) > limit

    # Helpers that play the customer and Stripe.

    def complete_session(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """Pay a session: create its PaymentIntent and charge, and mark the session complete."""
        with self._state_lock:
            session = self.objects[session_id]
            amount, currency = session["amount_total"], session["currency"]
            metadata = dict(self._private[session_id]["payment_intent_metadata"])
            intent = self._new_intent(amount, currency, metadata, succeeded=payment_status == "paid")
            if payment_status == "paid":
                self._new_charge(intent)
            session.update(status="complete", payment_status=payment_status, payment_intent=intent["id"])
            check_object(session, "checkout.session")
            return copy.deepcopy(session)

    def pay(self, amount: int, currency: str = "usd", metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a succeeded PaymentIntent and its charge without a Checkout Session, for bulk setup."""
        with self._state_lock:
            intent = self._new_intent(amount, currency, dict(metadata or {}), succeeded=True)
            self._new_charge(intent)
            return copy.deepcopy(self.objects[intent["id"]])

    def refund(self, payment_intent_id: str, amount: int, *, status: str = "succeeded") -> dict[str, Any]:
        """Refund `amount` (minor units) of a paid PaymentIntent's charge; return the refund."""
        with self._state_lock:
            charge = self.charge_of(payment_intent_id)
            if charge["amount_refunded"] + amount > charge["amount"]:
                raise ValueError(f"refund of {amount} exceeds what is left of {charge['id']}")
            refund = self._build("refund", "re_", amount=amount, currency=charge["currency"], status=status)
            refund.update(charge=charge["id"], payment_intent=payment_intent_id, reason="requested_by_customer")
            self._store(refund, "refund")
            if status not in ("failed", "canceled"):
                charge["amount_refunded"] += amount
                charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].insert(0, refund)
            check_object(charge, "charge")
            return copy.deepcopy(refund)

    def dispute(self, payment_intent_id: str, *, status: str = "needs_response") -> dict[str, Any]:
        """Open a dispute for the whole charge of a paid PaymentIntent; return the dispute."""
        with self._state_lock:
            charge = self.charge_of(payment_intent_id)
            dispute = self._build("dispute", "dp_", amount=charge["amount"], currency=charge["currency"], status=status)
            dispute.update(charge=charge["id"], payment_intent=payment_intent_id, reason="fraudulent")
            charge["disputed"] = True
            self._store(dispute, "dispute")
            return copy.deepcopy(dispute)

    def set_dispute_status(self, dispute_id: str, status: str) -> dict[str, Any]:
        with self._state_lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = status
            check_object(dispute, "dispute")
            return copy.deepcopy(dispute)

    def charge_of(self, payment_intent_id: str) -> dict[str, Any]:
        with self._state_lock:
            return self.objects[self.objects[payment_intent_id]["latest_charge"]]

    def event(self, event_type: str, obj: Mapping[str, Any], *, created: int | None = None) -> dict[str, Any]:
        """Build an event object of `event_type` carrying a snapshot of `obj`."""
        event = self._build("event", "evt_", type=event_type, api_version=API_VERSION, pending_webhooks=1)
        event.update(created=created or int(time.time()), data={"object": copy.deepcopy(dict(obj))})
        event["request"] = {"id": None, "idempotency_key": None}
        check_object(event, "event")
        return event

    def send_event(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        timestamp: int | None = None,
        received_at: datetime | None = None,
        extra_signatures: Iterable[str] = (),
    ) -> CallbackRequest:
        """Build, serialize once and sign an event, as the webhook endpoint receives it."""
        signed_at = timestamp if timestamp is not None else int(time.time())
        body = json.dumps(self.event(event_type, obj, created=signed_at), indent=2).encode()
        return self.deliver(body, timestamp=signed_at, received_at=received_at, extra_signatures=extra_signatures)

    def deliver(
        self,
        body: bytes,
        *,
        timestamp: int,
        received_at: datetime | None = None,
        extra_signatures: Iterable[str] = (),
        secret: str | None = None,
    ) -> CallbackRequest:
        signatures = [*extra_signatures, self.signature(body, timestamp, secret)]
        header = ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": header,
        }
        arrival = received_at or datetime.fromtimestamp(timestamp, UTC)
        return CallbackRequest(headers=headers, raw_body=body, query={}, received_at=arrival)

    def signature(self, body: bytes, timestamp: int, secret: str | None = None) -> str:
        key = (secret if secret is not None else self.webhook_secret).encode()
        return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()

    # Object construction.

    def _form(self, request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        try:
            pairs = parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=bool(request.body))
        except ValueError as exc:
            raise ParameterError(f"Invalid form body: {exc}") from exc
        return decode_params(pairs)

    def _new_session(self, params: Mapping[str, Any], line_items: list[Mapping[str, Any]]) -> dict[str, Any]:
        currency = line_items[0]["price_data"]["currency"].lower()
        total = sum(item["price_data"]["unit_amount"] * item["quantity"] for item in line_items)
        session = self._build("checkout.session", "cs_test_", mode=params["mode"], currency=currency)
        session.update(
            amount_subtotal=total,
            amount_total=total,
            cancel_url=params.get("cancel_url"),
            success_url=params["success_url"],
            client_reference_id=params.get("client_reference_id"),
            customer_details=None,
            metadata=dict(params.get("metadata") or {}),
            payment_intent=None,
            payment_status="unpaid",
            status="open",
        )
        session["expires_at"] = session["created"] + SESSION_LIFETIME_SECONDS
        session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
        intent_data = params.get("payment_intent_data") or {}
        private = {"line_items": line_items, "payment_intent_metadata": dict(intent_data.get("metadata") or {})}
        with self._state_lock:
            self._private[session["id"]] = private
        return self._store(session, "checkout.session")

    def _new_intent(self, amount: int, currency: str, metadata: dict[str, str], *, succeeded: bool) -> dict[str, Any]:
        intent = self._build("payment_intent", "pi_", amount=amount, currency=currency, metadata=metadata)
        intent.update(
            amount_received=amount if succeeded else 0,
            canceled_at=None,
            status="succeeded" if succeeded else "processing",
        )
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        return self._store(intent, "payment_intent")

    def _new_charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        charge = self._build("charge", "ch_", amount=intent["amount"], currency=intent["currency"])
        charge.update(amount_captured=intent["amount"], captured=True, paid=True, payment_intent=intent["id"])
        charge["refunds"] = {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{charge['id']}/refunds",
        }
        stored = self._store(charge, "charge")
        with self._state_lock:
            self.objects[intent["id"]]["latest_charge"] = charge["id"]
        return stored

    def _build(self, resource: str, prefix: str, **fields: Any) -> dict[str, Any]:
        with self._state_lock:
            self._sequence += 1
            sequence = self._sequence
        obj = copy.deepcopy(stripe_fixtures()[resource])
        obj.update(id=f"{prefix}{sequence:06d}{secrets.token_hex(6)}", created=int(time.time()), **fields)
        return obj

    def _store(self, obj: dict[str, Any], schema_name: str) -> dict[str, Any]:
        check_object(obj, schema_name)
        with self._state_lock:
            self.objects[obj["id"]] = obj
        return copy.deepcopy(obj)


def _checked_line_items(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Apply the Checkout rules the schema cannot express; raise ParameterError as Stripe would."""
    if "mode" not in params:
        raise ParameterError("Missing required param: mode.", "mode", "parameter_missing")
    if params["mode"] != "payment":
        raise ParameterError("This fake serves only mode=payment Checkout Sessions.", "mode")
    line_items = params.get("line_items") or []
    if not line_items:
        raise ParameterError("Missing required param: line_items.", "line_items", "parameter_missing")
    for field in ("success_url", "cancel_url"):
        if field in params and urlsplit(params[field]).scheme not in ("http", "https"):
            raise ParameterError(f"Not a valid URL: {params[field]}", field, "url_invalid")

    currencies = set()
    for index, item in enumerate(line_items):
        _check_line_item(item, f"line_items[{index}]")
        currencies.add(item["price_data"]["currency"].lower())
    if len(currencies) != 1:
        raise ParameterError("All line items must use the same currency.", "line_items")

    currency = currencies.pop()
    total = sum(item["price_data"]["unit_amount"] * item["quantity"] for item in line_items)
    minimum = MIN_CHARGE_AMOUNTS.get(currency)
    if minimum is not None and total < minimum:
        raise ParameterError(
            f"The Checkout Session's total amount due must add up to at least {minimum} {currency} minor units.",
            "line_items",
            "amount_too_small",
        )
    return list(line_items)


def _check_line_item(item: Mapping[str, Any], name: str) -> None:
    if "price" in item:
        raise ParameterError("This fake supports price_data line items only.", f"{name}[price]")
    price_data = item.get("price_data")
    if price_data is None:
        raise ParameterError(f"Missing required param: {name}[price_data].", f"{name}[price_data]", "parameter_missing")
    if "quantity" not in item:
        raise ParameterError(
            f"Quantity is required. Add `quantity` to `{name}`.", f"{name}[quantity]", "parameter_missing"
        )
    if ("product" in price_data) == ("product_data" in price_data):
        raise ParameterError(
            f"Pass exactly one of {name}[price_data][product] or [product_data].", f"{name}[price_data]"
        )
    if "unit_amount" not in price_data:
        raise ParameterError(
            f"Missing required param: {name}[price_data][unit_amount].", f"{name}[price_data][unit_amount]"
        )

    unit_amount = price_data["unit_amount"]
    if not 0 <= unit_amount <= MAX_UNIT_AMOUNT:
        raise ParameterError(
            f"Amount must be at most {MAX_UNIT_AMOUNT}.", f"{name}[price_data][unit_amount]", "amount_too_large"
        )
    if price_data["currency"].lower() in THREE_DECIMAL_CURRENCIES and unit_amount % 10:
        raise ParameterError(
            "Amounts in three-decimal currencies must end in 0.", f"{name}[price_data][unit_amount]", "invalid_amount"
        )
    if not re.fullmatch(r"[A-Za-z]{3}", price_data["currency"]):
        raise ParameterError(f"Invalid currency: {price_data['currency']}", f"{name}[price_data][currency]")


def _matches(item: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    for field in ("charge", "payment_intent", "customer"):
        if field in params and item.get(field) != params[field]:
            return False
    created = params.get("created")
    if isinstance(created, int):
        return item["created"] == created
    if isinstance(created, dict):
        bounds = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        return all(bounds[op](item["created"], limit) for op, limit in created.items())
    return True


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return [(name, value) for name, values in request.query.items() for value in values]


def _error(
    status: int, error_type: str, message: str, *, param: str | None = None, code: str | None = None
) -> Response:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return Response.json({"error": error}, status)
