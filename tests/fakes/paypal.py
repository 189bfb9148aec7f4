"""A fake PayPal (REST API and IPN postback endpoint) on 127.0.0.1 for gateway tests.

It rejects what PayPal rejects: token requests without the client's Basic credentials,
API calls without a live Bearer token, and Orders v2 requests that break PayPal's
published OpenAPI spec. It verifies only callbacks it sent itself: a webhook only with
the transmission headers and exact event bytes it signed, an IPN only with the exact
bytes it posted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

from openapi_schema_validator import OAS30Validator, oas30_format_checker

from chalicelib import clock
from tests.fakes.openapi_validation import load_validator, provider_spec_path
from tests.fakes.server import FakeProvider, Request, Response

SPEC_DIR = provider_spec_path("paypal")
LIVE_API_URL = "https://api-m.paypal.com"  # a server URL of the Orders v2 spec

TOKEN_LIFETIME_SECONDS = 32400  # 9 hours, the expires_in of PayPal's example token responses
REPORT_MAX_PAGE_SIZE = 500
REPORT_MAX_RANGE = timedelta(days=31)
IPN_POSTBACK_PREFIX = b"cmd=_notify-validate&"
AUTH_ALGO = "SHA256withRSA"
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})

SCHEMA_ERROR = {
    "name": "INVALID_REQUEST",
    "message": "Request is not well-formed, syntactically incorrect, or violates schema.",
}
AUTHENTICATION_FAILURE = {
    "name": "AUTHENTICATION_FAILURE",
    "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
}


@dataclass(frozen=True)
class Transmission:
    """One webhook the fake sent: its signature fields and the exact event bytes."""

    transmission_id: str
    transmission_time: str
    transmission_sig: str
    cert_url: str
    webhook_id: str
    raw_event: bytes


class FakePayPal(FakeProvider):
    """PayPal's OAuth, Orders v2, webhook verification, Transaction Search and IPN postback."""

    def __init__(
        self,
        client_id: str = "AYfake-client-id",
        client_secret: str = "EFfake-client-secret",
        webhook_id: str = "1JE4291016473214C",
        receiver_email: str = "billing@lobster.example",
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.receiver_email = receiver_email
        self.base_url = ""
        self.token_lifetime_seconds = TOKEN_LIFETIME_SECONDS
        self.next_capture_status = "COMPLETED"

        self.token_requests = 0
        self.tokens: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.transmissions: dict[str, Transmission] = {}
        self.sent_ipns: set[bytes] = set()
        self.ipn_postbacks: list[bytes] = []
        self.report_requests: list[dict[str, str]] = []

        self._order_requests: dict[str, str] = {}
        self._capture_responses: dict[tuple[str, str], dict[str, Any]] = {}
        self._signing_key = secrets.token_bytes(32)
        self._state = threading.Lock()

        self.route("POST", "/v1/oauth2/token", self._issue_token)
        self.route("POST", "/v2/checkout/orders", self._create_order)
        self.route("POST", "/v2/checkout/orders/{order_id}/capture", self._capture_order)
        self.route("POST", "/v1/notifications/verify-webhook-signature", self._verify_webhook_signature)
        self.route("GET", "/v1/reporting/transactions", self._list_transactions)
        self.route("POST", "/cgi-bin/webscr", self._validate_ipn)

    def start(self) -> str:
        self.base_url = super().start()
        return self.base_url

    @property
    def ipn_url(self) -> str:
        return f"{self.base_url}/cgi-bin/webscr"

    # Test helpers: the payer's side and PayPal's own notifications.

    def approve_order(self, order_id: str) -> None:
        """Record that the payer approved the order on PayPal's site."""
        with self._state:
            self.orders[order_id]["status"] = "APPROVED"

    def add_transaction(
        self,
        transaction_id: str,
        value: str,
        *,
        event_code: str = "T0006",
        status: str = "S",
        currency: str = "USD",
        custom_field: str | None = None,
        initiated_at: datetime | None = None,
    ) -> None:
        """Add a row to the Transaction Search report."""
        moment = (initiated_at or clock.now()).replace(microsecond=0)  # report times have whole seconds
        info: dict[str, Any] = {
            "paypal_account_id": "FAKEPAYERID01",
            "transaction_id": transaction_id,
            "transaction_event_code": event_code,
            "transaction_initiation_date": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "transaction_updated_date": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "transaction_amount": {"currency_code": currency, "value": value},
            "transaction_status": status,
        }
        if custom_field is not None:
            info["custom_field"] = custom_field
        with self._state:
            self.transactions.append({"transaction_info": info, "_initiated_at": moment})

    def capture_resource(
        self,
        capture_id: str,
        value: str,
        *,
        currency: str = "USD",
        custom_id: str | None = "acct-1",
        status: str = "COMPLETED",
        order_id: str = "5O190127TN364715T",
    ) -> dict[str, Any]:
        """Build a Payments v2 capture as PAYMENT.CAPTURE.* webhooks carry it."""
        now = clock.iso(clock.now())
        resource: dict[str, Any] = {
            "id": capture_id,
            "status": status,
            "amount": {"currency_code": currency, "value": value},
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED"]},
            "supplementary_data": {"related_ids": {"order_id": order_id}},
            "create_time": now,
            "update_time": now,
            "links": [
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "self", "method": "GET"},
                {
                    "href": f"{self.base_url}/v2/payments/captures/{capture_id}/refund",
                    "rel": "refund",
                    "method": "POST",
                },
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "up", "method": "GET"},
            ],
        }
        if custom_id is not None:
            resource["custom_id"] = custom_id
        if status == "PENDING":
            resource["status_details"] = {"reason": "PENDING_REVIEW"}
        return resource

    def refund_resource(self, refund_id: str, capture_id: str, value: str, *, currency: str = "USD") -> dict[str, Any]:
        """Build a Payments v2 refund; its "up" link names the refunded capture."""
        now = clock.iso(clock.now())
        return {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": {"currency_code": currency, "value": value},
            "seller_payable_breakdown": {
                "gross_amount": {"currency_code": currency, "value": value},
                "net_amount": {"currency_code": currency, "value": value},
            },
            "create_time": now,
            "update_time": now,
            "links": [
                {"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"},
            ],
        }

    def dispute_resource(
        self,
        dispute_id: str,
        capture_id: str,
        value: str,
        *,
        outcome_code: str = "RESOLVED_BUYER_FAVOUR",
        currency: str = "USD",
    ) -> dict[str, Any]:
        """Build a resolved Disputes v1 dispute over one capture."""
        money = {"currency_code": currency, "value": value}
        return {
            "dispute_id": dispute_id,
            "create_time": clock.iso(clock.now()),
            "update_time": clock.iso(clock.now()),
            "disputed_transactions": [{"seller_transaction_id": capture_id, "custom": "acct-1", "gross_amount": money}],
            "reason": "UNAUTHORISED",
            "status": "RESOLVED",
            "dispute_amount": money,
            "dispute_outcome": {"outcome_code": outcome_code, "amount_refunded": money},
            "dispute_life_cycle_stage": "CHARGEBACK",
        }

    def send_webhook(
        self,
        event_type: str,
        resource: dict[str, Any],
        *,
        event_id: str | None = None,
        resource_type: str = "capture",
        transmitted_at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Sign and "send" a webhook event: return its lower-cased headers and raw body."""
        event_id = event_id or "WH-" + secrets.token_hex(8).upper() + "-" + secrets.token_hex(8).upper()
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": clock.iso(clock.now()),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"{event_type} for {resource.get('id') or resource.get('dispute_id')}",
            "resource": resource,
            "links": [
                {
                    "href": f"{self.base_url}/v1/notifications/webhooks-events/{event_id}",
                    "rel": "self",
                    "method": "GET",
                },
            ],
        }
        raw_event = json.dumps(event, separators=(",", ":")).encode("utf-8")

        transmission_id = str(uuid.uuid1())
        transmission_time = clock.iso(transmitted_at or clock.now())
        signature = self._sign(transmission_id, transmission_time, self.webhook_id, raw_event)
        cert_url = f"{self.base_url}/v1/notifications/certs/CERT-360caa42-fca2a594-{secrets.token_hex(4)}"
        with self._state:
            self.transmissions[transmission_id] = Transmission(
                transmission_id, transmission_time, signature, cert_url, self.webhook_id, raw_event
            )

        headers = {
            "content-type": "application/json",
            "paypal-auth-algo": AUTH_ALGO,
            "paypal-cert-url": cert_url,
            "paypal-transmission-id": transmission_id,
            "paypal-transmission-sig": signature,
            "paypal-transmission-time": transmission_time,
        }
        return headers, raw_event

    def ipn_fields(self, **overrides: str | None) -> list[tuple[str, str]]:
        """Return the fields of a verified web_accept payment IPN, in PayPal's order.

        An override replaces a field's value; None removes the field.
        """
        fields: dict[str, str] = {
            "mc_gross": "20.00",
            "protection_eligibility": "Eligible",
            "payer_id": "LPLWNMTBWMFAY",
            "payment_date": "20:12:59 Jan 13, 2009 PST",
            "payment_status": "Completed",
            "charset": "windows-1252",
            "first_name": "Test",
            "mc_fee": "0.88",
            "notify_version": "3.9",
            "custom": "acct-1",
            "payer_status": "verified",
            "business": self.receiver_email,
            "quantity": "1",
            "verify_sign": "AtkOfCXbDm2hu0ZELryHFjY-Vb7PAUvS6nMXgysbElEn9v-1XcmSoGtf",
            "payer_email": "buyer@example.com",
            "txn_id": "61E67681CH3238416",
            "payment_type": "instant",
            "last_name": "User",
            "receiver_email": self.receiver_email,
            "receiver_id": "S8XGHLYDW9T3S",
            "txn_type": "web_accept",
            "item_name": "Lobster credit",
            "mc_currency": "USD",
            "residence_country": "US",
            "ipn_track_id": secrets.token_hex(7)[:13],
        }
        for name, value in overrides.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        return list(fields.items())

    def send_ipn(
        self,
        fields: Iterable[tuple[str, str]] | None = None,
        *,
        quote_via: Callable[..., str] = quote_plus,
        **overrides: str | None,
    ) -> tuple[dict[str, str], bytes]:
        """Encode and "send" an IPN: return its lower-cased headers and raw body.

        `fields` defaults to `ipn_fields(**overrides)`; values are encoded in the IPN's
        charset, with `quote_via` choosing how (PayPal's own encoding is quote_plus).
        """
        pairs = list(fields) if fields is not None else self.ipn_fields(**overrides)
        charset = dict(pairs).get("charset", "windows-1252")
        raw = urlencode(pairs, encoding=charset, quote_via=quote_via).encode("ascii")
        with self._state:
            self.sent_ipns.add(raw)
        return {"content-type": f"application/x-www-form-urlencoded; charset={charset}"}, raw

    # OAuth 2.0.

    def _issue_token(self, request: Request) -> Response:
        if not self._has_client_credentials(request.headers.get("authorization", "")):
            return Response.json({"error": "invalid_client", "error_description": "Client Authentication failed"}, 401)
        if request.form().get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, 400)

        token = "A21AA" + secrets.token_urlsafe(32)
        with self._state:
            self.token_requests += 1
            self.tokens[token] = time.monotonic() + self.token_lifetime_seconds
        return Response.json(
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/reporting/search/read",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": self.token_lifetime_seconds,
                "nonce": f"{clock.iso(clock.now())}{secrets.token_hex(8)}",
            }
        )

    def _has_client_credentials(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, client_secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(client_secret, self.client_secret)

    def _reject_unauthorized(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._state:
            expires = self.tokens.get(token) if scheme == "Bearer" else None
        if expires is None or expires < time.monotonic():
            return Response.json(AUTHENTICATION_FAILURE, 401)
        return None

    # Orders v2.

    def _create_order(self, request: Request) -> Response:
        rejection = self._reject_unauthorized(request) or _reject_invalid_order_request(request)
        if rejection is not None:
            return rejection

        body = request.json()
        unit_errors = [issue for unit in body["purchase_units"] for issue in _amount_issues(unit["amount"])]
        if unit_errors:
            return _unprocessable(unit_errors)

        request_id = request.headers.get("paypal-request-id", "")
        with self._state:
            if request_id and request_id in self._order_requests:
                return Response.json(self.orders[self._order_requests[request_id]], 200)
            order = self._new_order(body)
            if request_id:
                self._order_requests[request_id] = order["id"]
        return Response.json(_order_view(order, request), 201)

    def _new_order(self, body: dict[str, Any]) -> dict[str, Any]:
        order_id = _paypal_id()
        paypal_source = (body.get("payment_source") or {}).get("paypal")
        links = [{"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"}]
        if paypal_source is not None:
            status = "PAYER_ACTION_REQUIRED"
            links.append(
                {"href": f"https://www.paypal.com/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"}
            )
        else:
            status = "CREATED"
            links.append(
                {"href": f"https://www.paypal.com/checkoutnow?token={order_id}", "rel": "approve", "method": "GET"}
            )

        units = [dict(unit, reference_id=unit.get("reference_id", "default")) for unit in body["purchase_units"]]
        order = {
            "id": order_id,
            "intent": body["intent"],
            "status": status,
            "purchase_units": units,
            "create_time": clock.iso(clock.now()),
            "links": links,
        }
        if paypal_source is not None:
            order["payment_source"] = {"paypal": {}}
        self.orders[order_id] = order
        return order

    def _capture_order(self, request: Request) -> Response:
        rejection = self._reject_unauthorized(request) or _reject_invalid_order_request(request)
        if rejection is not None:
            return rejection

        order_id = request.params["order_id"]
        request_id = request.headers.get("paypal-request-id", "")
        with self._state:
            order = self.orders.get(order_id)
            if order is None:
                return _not_found(order_id)
            replay = self._capture_responses.get((order_id, request_id)) if request_id else None
            if replay is not None:
                return Response.json(replay, 200)
            if order["status"] == "COMPLETED":
                return _unprocessable(["ORDER_ALREADY_CAPTURED"])
            if order["status"] != "APPROVED":
                return _unprocessable(["ORDER_NOT_APPROVED"])

            self._capture_purchase_units(order)
            view = _order_view(order, request)
            if request_id:
                self._capture_responses[(order_id, request_id)] = view
        return Response.json(view, 201)

    def _capture_purchase_units(self, order: dict[str, Any]) -> None:
        for unit in order["purchase_units"]:
            capture = self.capture_resource(
                _paypal_id(),
                unit["amount"]["value"],
                currency=unit["amount"]["currency_code"],
                custom_id=unit.get("custom_id"),
                status=self.next_capture_status,
                order_id=order["id"],
            )
            unit["payments"] = {"captures": [capture]}
            self.captures[capture["id"]] = capture
            self.transactions.append(_report_row(capture, "S" if capture["status"] == "COMPLETED" else "P"))
        order["status"] = "COMPLETED"

    # Webhooks.

    def _verify_webhook_signature(self, request: Request) -> Response:
        rejection = self._reject_unauthorized(request)
        if rejection is not None:
            return rejection

        try:
            body = request.json()
        except ValueError:
            return Response.json(SCHEMA_ERROR, 400)
        issues = _schema_issues(_verify_signature_validator(), body)
        raw_event = extract_raw_member(request.body, "webhook_event")
        if issues or raw_event is None:
            return Response.json(dict(SCHEMA_ERROR, details=issues), 400)

        verified = self._is_own_transmission(body, raw_event)
        return Response.json({"verification_status": "SUCCESS" if verified else "FAILURE"})

    def _is_own_transmission(self, body: dict[str, Any], raw_event: bytes) -> bool:
        """Check the signature over the exact event bytes, then the record of what was sent."""
        expected = self._sign(body["transmission_id"], body["transmission_time"], body["webhook_id"], raw_event)
        if not hmac.compare_digest(body["transmission_sig"], expected):
            return False

        with self._state:
            sent = self.transmissions.get(body["transmission_id"])
        return (
            sent is not None
            and sent.raw_event == raw_event
            and sent.transmission_time == body["transmission_time"]
            and sent.cert_url == body["cert_url"]
            and sent.webhook_id == body["webhook_id"] == self.webhook_id
            and body["auth_algo"] == AUTH_ALGO
        )

    def _sign(self, transmission_id: str, transmission_time: str, webhook_id: str, raw_event: bytes) -> str:
        """Sign PayPal's message "<id>|<time>|<webhook id>|<CRC32 of the body>".

        An HMAC with the fake's own key replaces PayPal's SHA256withRSA signature over
        the same message, so only the fake can produce a valid signature.
        """
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(raw_event)}"
        return hmac.new(self._signing_key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    # Transaction Search.

    def _list_transactions(self, request: Request) -> Response:
        rejection = self._reject_unauthorized(request)
        if rejection is not None:
            return rejection

        params = {name: request.arg(name) or "" for name in ("start_date", "end_date", "fields", "page_size", "page")}
        self.report_requests.append(params)
        try:
            start, end = clock.parse_iso(params["start_date"]), clock.parse_iso(params["end_date"])
            page_size, page = int(params["page_size"] or 100), int(params["page"] or 1)
        except ValueError:
            return _invalid_request("start_date", "start_date, end_date, page_size and page must be valid")
        if end - start > REPORT_MAX_RANGE or end < start:
            return _invalid_request("start_date", "Date range is greater than 31 days")
        if not 1 <= page_size <= REPORT_MAX_PAGE_SIZE or page < 1:
            return _invalid_request("page_size", "page_size must be 1 to 500 and page at least 1")

        with self._state:
            rows = [row for row in self.transactions if start <= row["_initiated_at"] <= end]
        total_pages = max(1, -(-len(rows) // page_size))
        page_rows = rows[(page - 1) * page_size : page * page_size]
        return Response.json(
            {
                "transaction_details": [{"transaction_info": row["transaction_info"]} for row in page_rows],
                "account_number": "FAKEMERCHANT1",
                "start_date": params["start_date"],
                "end_date": params["end_date"],
                "last_refreshed_datetime": clock.iso(clock.now()),
                "page": page,
                "total_items": len(rows),
                "total_pages": total_pages,
            }
        )

    # IPN.

    def _validate_ipn(self, request: Request) -> Response:
        with self._state:
            self.ipn_postbacks.append(request.body)
            sent = (
                request.body.startswith(IPN_POSTBACK_PREFIX)
                and request.body[len(IPN_POSTBACK_PREFIX) :] in self.sent_ipns
            )
        return Response(200, b"VERIFIED" if sent else b"INVALID", {"Content-Type": "text/html; charset=UTF-8"})


# Request validation against PayPal's OpenAPI documents.


@functools.cache
def _verify_signature_validator() -> OAS30Validator:
    # The event's fields are read-only in the spec, yet PayPal's own example request sends
    # them, so this checks the schema without openapi-core's read-only rule for requests.
    document = json.loads((SPEC_DIR / "notifications_webhooks_v1.json").read_text())
    schema = {"$ref": "#/components/schemas/verify_webhook_signature", "components": document["components"]}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def _reject_invalid_order_request(request: Request) -> Response | None:
    """Validate an Orders v2 request's parameters and body; return PayPal's 400 if invalid."""
    validator = load_validator(str(SPEC_DIR / "checkout_orders_v2.json"), LIVE_API_URL)
    check = validator.check(
        request.method,
        request.path,
        query=request.query,
        headers=request.headers,
        body=request.body,
        content_type=request.headers.get("content-type", ""),
    )
    if check.ok:
        return None
    details = [{"issue": "INVALID_PARAMETER_SYNTAX", "description": error} for error in check.errors]
    return Response.json(dict(SCHEMA_ERROR, details=details), 400)


def _schema_issues(validator: OAS30Validator, body: Any) -> list[dict[str, str]]:
    return [
        {
            "field": "/" + "/".join(str(part) for part in error.absolute_path),
            "issue": "INVALID_PARAMETER_SYNTAX",
            "description": error.message,
        }
        for error in validator.iter_errors(body)
    ]


def _amount_issues(amount: dict[str, Any]) -> list[str]:
    """Return PayPal's business-rule issues for an order amount, which the schema allows."""
    value = amount["value"]
    decimals = len(value.partition(".")[2])
    allowed = 0 if amount["currency_code"] in ZERO_DECIMAL_CURRENCIES else 2
    if decimals > allowed or (allowed == 0 and "." in value):
        return ["DECIMAL_PRECISION"]
    if value.startswith("-") or not value.strip("0.-"):
        return ["CANNOT_BE_ZERO_OR_NEGATIVE"]
    return []


def extract_raw_member(document: bytes, name: str) -> bytes | None:
    """Return the exact bytes of a top-level member's value in a JSON object, or None."""
    text = document.decode("utf-8", errors="strict")
    decoder = json.JSONDecoder()
    index = _skip_space(text, 0)
    if not text.startswith("{", index):
        return None
    index += 1

    try:
        while True:
            index = _skip_space(text, index)
            if text.startswith("}", index):
                return None
            key, index = decoder.raw_decode(text, index)
            index = _skip_space(text, index)
            if not text.startswith(":", index):
                return None
            index = _skip_space(text, index + 1)
            _, end = decoder.raw_decode(text, index)
            if key == name:
                return text[index:end].encode("utf-8")
            index = _skip_space(text, end)
            if text.startswith(",", index):
                index += 1
    except ValueError:
        return None


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _order_view(order: dict[str, Any], request: Request) -> dict[str, Any]:
    """Return the full order for Prefer: return=representation, else PayPal's minimal view."""
    if request.headers.get("prefer") == "return=representation":
        return json.loads(json.dumps(order))
    return {key: order[key] for key in ("id", "status", "links")}


def _report_row(capture: dict[str, Any], status: str) -> dict[str, Any]:
    moment = clock.parse_iso(capture["create_time"])
    info: dict[str, Any] = {
        "paypal_account_id": "FAKEPAYERID01",
        "transaction_id": capture["id"],
        "transaction_event_code": "T0006",
        "transaction_initiation_date": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "transaction_updated_date": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "transaction_amount": dict(capture["amount"]),
        "transaction_status": status,
    }
    if capture.get("custom_id"):
        info["custom_field"] = capture["custom_id"]
    return {"transaction_info": info, "_initiated_at": moment}


def _paypal_id() -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(17))


def _not_found(resource_id: str) -> Response:
    return Response.json(
        {
            "name": "RESOURCE_NOT_FOUND",
            "message": "The specified resource does not exist.",
            "details": [{"field": "order_id", "value": resource_id, "issue": "INVALID_RESOURCE_ID"}],
        },
        404,
    )


def _unprocessable(issues: list[str]) -> Response:
    return Response.json(
        {
            "name": "UNPROCESSABLE_ENTITY",
            "message": "The requested action could not be performed, semantically incorrect, or failed business validation.",
            "details": [{"issue": issue} for issue in issues],
        },
        422,
    )


def _invalid_request(field: str, description: str) -> Response:
    return Response.json(
        dict(SCHEMA_ERROR, details=[{"field": field, "issue": "INVALID_REQUEST", "description": description}]), 400
    )
