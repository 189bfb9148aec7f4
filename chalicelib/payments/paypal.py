"""The PayPal gateway: Orders v2 checkout, REST webhooks and classic IPN callbacks.

No callback becomes a PaymentEvent before PayPal itself confirms it: a webhook through
verify-webhook-signature, an IPN by posting its raw body back untouched. Every
money-moving event's payment_id is the capture (transaction) id, so all deliveries about
one payment carry the same id whatever their event id, channel or payload.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from chalicelib import clock
from chalicelib.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    WebhookRejected,
    WebhookSignatureInvalid,
)
from chalicelib.log import logger
from chalicelib.money import MICROS_PER_UNIT, InvalidAmount, format_micros, parse_micros, require_int
from chalicelib.net.http import HttpClient
from chalicelib.payments.base import CallbackRequest, Checkout, Gateway, PaymentEvent, Transition

NAME = "paypal"
DEFAULT_API_URL = "https://api-m.paypal.com"
DEFAULT_IPN_URL = "https://ipnpb.paypal.com/cgi-bin/webscr"

# The access token is renewed this long before PayPal's `expires_in` runs out, so no
# request leaves with a token that expires on the way.
TOKEN_RENEWAL_MARGIN = timedelta(minutes=5)

# A webhook whose PAYPAL-TRANSMISSION-TIME is further than this from its arrival is
# rejected as a replay.
# NOTE: this assumes PayPal signs each retry afresh with its own transmission time, which
# its docs do not state. If a retry kept the first time, it would be rejected once older
# than this, and only the daily reconciliation would find the payment.
TRANSMISSION_TIME_TOLERANCE = timedelta(minutes=5)

# Webhook signature headers, keyed by the verify-webhook-signature field each fills.
WEBHOOK_SIGNATURE_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}
# Patterns and maximum lengths of signature fields in PayPal's verify-webhook-signature
# schema. A header outside them cannot come from PayPal, and PayPal would reject it with a
# 400. The transmission time is checked separately, as a time.
WEBHOOK_SIGNATURE_FORMATS = {
    "auth_algo": (re.compile(r"^[a-zA-Z0-9]+$"), 100),
    "cert_url": (re.compile(r"^https?://"), 500),
    "transmission_id": (re.compile(r"^(?!\d+$)\w+\S+"), 50),
    "transmission_sig": (re.compile(r"^(?!\d+$)\w+\S+"), 500),
}

IPN_POSTBACK_PREFIX = b"cmd=_notify-validate&"
IPN_VERIFIED = b"VERIFIED"
IPN_INVALID = b"INVALID"
IPN_DEFAULT_CHARSET = "windows-1252"  # used when an IPN does not name its charset
MAX_CALLBACK_BYTES = 64 * 1024

# IPN transaction types of a one-off payment: buttons, Express Checkout and the cart. An
# IPN with no txn_type (a refund, reversal or cancelled reversal) is mapped by its status.
IPN_PAYMENT_TXN_TYPES = frozenset({"web_accept", "express_checkout", "cart"})
IPN_FAILED_STATUSES = frozenset({"Denied", "Expired", "Failed", "Voided"})

# PayPal's currency code list marks these as taking no decimals; it rejects decimal amounts.
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
MAX_CUSTOM_ID_LENGTH = 127  # purchase_unit.custom_id in Orders v2
ORDER_ID_PATTERN = re.compile(r"^[A-Z0-9]{1,36}$")

CAPTURE_TRANSITIONS = {
    "COMPLETED": Transition.COMPLETED,
    "PENDING": Transition.PENDING,
    "DECLINED": Transition.FAILED,
    "FAILED": Transition.FAILED,
}
WEBHOOK_CAPTURE_TRANSITIONS = {
    "PAYMENT.CAPTURE.COMPLETED": Transition.COMPLETED,
    "PAYMENT.CAPTURE.PENDING": Transition.PENDING,
    "PAYMENT.CAPTURE.DECLINED": Transition.FAILED,
    "PAYMENT.CAPTURE.DENIED": Transition.FAILED,
}
# The dispute outcome in which the merchant loses the money.
DISPUTE_LOST_OUTCOMES = frozenset({"RESOLVED_BUYER_FAVOUR"})

# Transaction Search (GET /v1/reporting/transactions) limits: at most 500 rows a page and
# 31 days a request. T0006 is a PayPal Checkout API payment, T0007 a Website Payments
# Standard one; "S" is a completed transaction.
REPORT_PAGE_SIZE = 500
REPORT_MAX_RANGE = timedelta(days=31)
REPORT_MAX_PAGES = 200
REPORT_PAYMENT_CODES = frozenset({"T0006", "T0007"})
REPORT_COMPLETED_STATUS = "S"

IPN_TIME_ZONES = {"PST": timezone(timedelta(hours=-8)), "PDT": timezone(timedelta(hours=-7))}


@dataclass(frozen=True)
class _AccessToken:
    value: str
    expires_at: datetime


# Tokens outlive one gateway object: a warm Lambda reuses them across invocations.
_token_cache: dict[tuple[str, str], _AccessToken] = {}
_token_lock = threading.Lock()


class _Unmappable(Exception):
    """An authentic callback that cannot be turned into a money transition."""


class PayPalGateway(Gateway):
    """PayPal through its REST API (Orders v2, webhooks, Transaction Search) and classic IPN.

    Settings: `api_url`, `ipn_url`, `webhook_id` (needed for REST webhooks) and
    `receiver_email` (checked against IPNs when set). Secrets: `client_id`, `client_secret`.
    """

    NAME = NAME

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(settings, secrets)
        self.api_url = str(self.settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self.ipn_url = str(self.settings.get("ipn_url") or DEFAULT_IPN_URL)
        self.webhook_id = str(self.settings.get("webhook_id") or "")
        self.receiver_email = str(self.settings.get("receiver_email") or "").strip().lower()
        self.api = HttpClient(provider="PayPal", base_url=self.api_url, describe_error=describe_paypal_error)
        self.ipn = HttpClient(provider="PayPal IPN", base_url=self.ipn_url)

    # Checkout.

    def start_checkout(self, account_id: str, amount_micros: int, currency: str, return_url: str) -> Checkout:
        """Create an Orders v2 order and return its id and the page where the payer approves it."""
        if not account_id or len(account_id) > MAX_CUSTOM_ID_LENGTH:
            raise InvalidRequest(f"account id must be 1 to {MAX_CUSTOM_ID_LENGTH} characters for PayPal")
        amount_text = format_amount(amount_micros, currency)

        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {"amount": {"currency_code": currency, "value": amount_text}, "custom_id": account_id},
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": return_url,
                        "cancel_url": return_url,
                        "shipping_preference": "NO_SHIPPING",
                        "user_action": "PAY_NOW",
                    }
                }
            },
        }
        # Each checkout gets a fresh key. HttpClient retries resend the same key, so a
        # retried request cannot create a second order.
        headers = {"PayPal-Request-Id": str(uuid.uuid4())}
        order = self._call("POST", "/v2/checkout/orders", json=body, headers=headers)

        order_id = order.get("id")
        redirect_url = _find_link(order, "payer-action") or _find_link(order, "approve")
        if not isinstance(order_id, str) or not redirect_url:
            raise BackendError("PayPal created an order without an id or an approval link")

        logger.info(
            "paypal_order_created",
            extra={
                "account_id": account_id,
                "order_id": order_id,
                "amount_micros": amount_micros,
                "currency": currency,
            },
        )
        return Checkout(payment_id=order_id, redirect_url=redirect_url)

    def capture_order(self, order_id: str) -> list[PaymentEvent]:
        """Capture an approved order and return one event per capture it reports.

        The PayPal-Request-Id is derived from the order id, so capturing the same order
        again returns the first capture instead of failing, for as long as PayPal keeps
        the key (6 hours by default).
        """
        if not ORDER_ID_PATTERN.match(order_id or ""):
            raise InvalidRequest(f"PayPal order id {order_id!r} is not valid", field="order_id")

        headers = {"PayPal-Request-Id": f"lobster-capture-{order_id}", "Prefer": "return=representation"}
        order = self._call("POST", f"/v2/checkout/orders/{order_id}/capture", json={}, headers=headers)

        events = parse_order_captures(order, event_id=f"orders-capture-{order_id}", received_at=clock.now())
        for event in events:
            logger.info(
                "paypal_order_captured",
                extra={"order_id": order_id, "payment_id": event.payment_id, "transition": event.transition.value},
            )
        return events

    # Callbacks.

    def verify_callback(self, request: CallbackRequest) -> list[PaymentEvent]:
        """Verify a PayPal callback with PayPal and return the one event it reports.

        The Content-Type selects the kind: application/json is a REST webhook and
        application/x-www-form-urlencoded a classic IPN. Anything else is rejected. Every
        rejection is logged here with the transmission id when there is one.
        """
        media_type = _media_type_of(request.headers)
        try:
            event = self._verify_by_kind(request, media_type)
        except WebhookRejected as exc:
            logger.warning(
                "paypal_callback_rejected",
                extra={
                    "content_type": media_type,
                    "error_code": exc.code,
                    "error": exc.message,
                    "transmission_id": _header(request.headers, "paypal-transmission-id") or None,
                    "body_bytes": len(request.raw_body),
                },
            )
            raise
        return [event]

    def _verify_by_kind(self, request: CallbackRequest, media_type: str) -> PaymentEvent:
        if len(request.raw_body) > MAX_CALLBACK_BYTES:
            raise WebhookRejected(f"PayPal callback body is larger than {MAX_CALLBACK_BYTES} bytes")
        if media_type == "application/json":
            return self._verify_webhook(request)
        if media_type == "application/x-www-form-urlencoded":
            return self._verify_ipn(request)
        raise WebhookRejected(
            f"PayPal callback has Content-Type {media_type!r}; expected application/json (webhook) "
            "or application/x-www-form-urlencoded (IPN)"
        )

    def _verify_webhook(self, request: CallbackRequest) -> PaymentEvent:
        """Verify a REST webhook through verify-webhook-signature and map its event."""
        if not self.webhook_id:
            logger.error("paypal_webhook_id_missing")
            raise WebhookRejected("PayPal webhook_id is not configured, so webhooks cannot be verified")

        signature = _read_signature_headers(request.headers)
        _check_transmission_time(signature["transmission_time"], request.received_at)
        event = _parse_json_object(request.raw_body)

        status = self._verify_webhook_signature(signature, request.raw_body)
        if status != "SUCCESS":
            raise WebhookSignatureInvalid(
                "PayPal did not verify the webhook signature; the webhook was forged or altered"
            )

        payment_event = parse_webhook_event(event, received_at=request.received_at)
        _log_callback_event("webhook", payment_event)
        return payment_event

    def _verify_ipn(self, request: CallbackRequest) -> PaymentEvent:
        """Verify a classic IPN by posting its raw body back and map its fields."""
        if not request.raw_body:
            raise WebhookRejected("PayPal IPN has an empty body")

        self._post_back_ipn(request.raw_body)

        fields = _parse_ipn_fields(request.raw_body)
        event_id = fields.get("ipn_track_id") or "ipn-" + hashlib.sha256(request.raw_body).hexdigest()[:32]
        payment_event = parse_ipn_event(
            fields, event_id=event_id, received_at=request.received_at, receiver_email=self.receiver_email
        )
        _log_callback_event("ipn", payment_event)
        return payment_event

    # Reconciliation.

    def list_recent_payments(self, since: datetime) -> list[PaymentEvent]:
        """Return completed PayPal payments received since `since`, from Transaction Search.

        PayPal lists a transaction up to three hours after it happens, so the newest
        payments may be missing from this list.
        """
        end = clock.now()
        start = clock.as_utc(since)
        events: dict[str, PaymentEvent] = {}

        while start < end:
            window_end = min(end, start + REPORT_MAX_RANGE)
            for detail in self._list_transactions(start, window_end):
                event = parse_report_transaction(detail, received_at=end)
                if event is not None:
                    events.setdefault(event.payment_id, event)
            start = window_end

        return list(events.values())

    # PayPal calls.

    def _call(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Call the REST API with a bearer token and return the JSON object in the response.

        Every call is marked idempotent for retries: GETs are safe, order creation and
        capture carry a PayPal-Request-Id, and signature verification changes nothing.
        """
        merged = {"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"}
        merged.update(headers or {})

        try:
            body = self.api.json(method, path, headers=merged, idempotent=True, **kwargs)
        except BackendUnavailable:
            raise
        except BackendError:
            # HttpClient does not expose the status, so any rejection drops the token: a
            # token PayPal revoked early then costs one failed request, not hours of them.
            self._forget_access_token()
            raise
        if not isinstance(body, dict):
            raise BackendError(f"PayPal returned an unexpected response to {method} {path}")
        return body

    def _access_token(self) -> str:
        client_id = self.secrets.get("client_id") or ""
        client_secret = self.secrets.get("client_secret") or ""
        if not client_id or not client_secret:
            raise BackendError("PayPal client_id and client_secret are missing from the gateway secrets")

        key = (self.api_url, client_id)
        now = clock.now()
        with _token_lock:
            cached = _token_cache.get(key)
        if cached is not None and cached.expires_at > now:
            return cached.value

        token = self._request_token(client_id, client_secret, now)
        with _token_lock:
            _token_cache[key] = token
        return token.value

    def _forget_access_token(self) -> None:
        with _token_lock:
            _token_cache.pop((self.api_url, self.secrets.get("client_id") or ""), None)

    def _request_token(self, client_id: str, client_secret: str, now: datetime) -> _AccessToken:
        try:
            body = self.api.json(
                "POST",
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, client_secret),
                headers={"Accept": "application/json"},
                idempotent=True,
            )
        except BackendUnavailable:
            raise
        except BackendError as exc:
            raise BackendError(
                "PayPal did not issue an access token; check the gateway's client_id and client_secret"
            ) from exc

        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise BackendError("PayPal's token response has no access_token")
        expires_in = body.get("expires_in")
        lifetime = timedelta(seconds=expires_in) if isinstance(expires_in, int) else timedelta(0)
        return _AccessToken(value=body["access_token"], expires_at=now + lifetime - TOKEN_RENEWAL_MARGIN)

    def _verify_webhook_signature(self, signature: Mapping[str, str], raw_event: bytes) -> str:
        body = _build_verification_body(signature, self.webhook_id, raw_event)
        result = self._call(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        return str(result.get("verification_status") or "")

    def _post_back_ipn(self, raw_body: bytes) -> None:
        """Post the IPN back byte for byte and accept only the exact response VERIFIED."""
        response = self.ipn.request(
            "POST",
            self.ipn_url,
            data=IPN_POSTBACK_PREFIX + raw_body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=True,
        )
        result = response.content if response is not None else b""

        if result == IPN_VERIFIED:
            return
        if result == IPN_INVALID:
            raise WebhookSignatureInvalid("PayPal returned INVALID for the IPN postback; the IPN was forged or altered")
        raise BackendError(f"PayPal IPN postback returned {len(result)} bytes that are neither VERIFIED nor INVALID")

    def _list_transactions(self, start: datetime, end: datetime) -> Iterator[Mapping[str, Any]]:
        page = 1
        while True:
            params = {
                "start_date": clock.iso(start),
                "end_date": clock.iso(end),
                "fields": "all",
                "page_size": REPORT_PAGE_SIZE,
                "page": page,
            }
            body = self._call("GET", "/v1/reporting/transactions", params=params)
            for detail in body.get("transaction_details") or []:
                if isinstance(detail, dict):
                    yield detail

            total_pages = body.get("total_pages")
            if not isinstance(total_pages, int) or page >= total_pages:
                return
            if page >= REPORT_MAX_PAGES:
                logger.warning("paypal_report_truncated", extra={"pages": page, "total_pages": total_pages})
                return
            page += 1


def clear_token_cache() -> None:
    """Forget every cached access token."""
    with _token_lock:
        _token_cache.clear()


# Request and response helpers.


def format_amount(amount_micros: int, currency: str) -> str:
    """Render micro-units as the decimal text PayPal takes for `currency`: "20.00", or "1500".

    Raises InvalidRequest for a non-positive amount or one finer than the currency's
    smallest unit, which PayPal would reject.
    """
    require_int(amount_micros)
    decimals = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    step = MICROS_PER_UNIT // 10**decimals

    if amount_micros <= 0 or amount_micros % step:
        raise InvalidRequest(
            f"amount {format_micros(amount_micros)} {currency} cannot be paid through PayPal, "
            f"which takes {decimals} decimal places in {currency}",
            field="amount",
        )
    return format_micros(amount_micros, min_decimals=decimals)


def describe_paypal_error(response: requests.Response) -> str:
    """Extract PayPal's error name, message and issues from a failed response."""
    body = response.json()
    if not isinstance(body, dict):
        return ""

    name = body.get("name") or body.get("error") or ""
    message = body.get("message") or body.get("error_description") or ""
    issues = [str(item["issue"]) for item in body.get("details") or [] if isinstance(item, dict) and item.get("issue")]

    text = ": ".join(str(part) for part in (name, message) if part)
    if issues:
        text += f" ({', '.join(issues)})"
    return text


def _find_link(resource: Mapping[str, Any], rel: str) -> str | None:
    """Return the href of the HATEOAS link named `rel`, or None."""
    for link in resource.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    """Return the header `name` (lower-case), whatever the case of the received names."""
    return next((value for key, value in headers.items() if key.lower() == name), "")


def _media_type_of(headers: Mapping[str, str]) -> str:
    """Return the media type of a Content-Type header without its parameters, lower-cased."""
    return _header(headers, "content-type").split(";", 1)[0].strip().lower()


def _read_signature_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Read the PAYPAL-* transmission headers; raise WebhookSignatureInvalid if any is missing or malformed."""
    lowered = {key.lower(): value for key, value in headers.items()}
    fields = {field: lowered.get(header, "").strip() for field, header in WEBHOOK_SIGNATURE_HEADERS.items()}

    missing = [WEBHOOK_SIGNATURE_HEADERS[field] for field, value in fields.items() if not value]
    if missing:
        raise WebhookSignatureInvalid(f"PayPal webhook is missing the {', '.join(missing)} header(s)")

    malformed = [
        WEBHOOK_SIGNATURE_HEADERS[field]
        for field, (pattern, max_length) in WEBHOOK_SIGNATURE_FORMATS.items()
        if len(fields[field]) > max_length or not pattern.match(fields[field])
    ]
    if malformed:
        raise WebhookSignatureInvalid(f"PayPal webhook has malformed {', '.join(malformed)} header(s)")
    return fields


def _check_transmission_time(text: str, received_at: datetime) -> None:
    """Raise WebhookRejected unless `text` is within TRANSMISSION_TIME_TOLERANCE of `received_at`."""
    try:
        transmitted_at = clock.parse_iso(text)
    except ValueError as exc:
        raise WebhookRejected(f"PayPal webhook has an invalid PAYPAL-TRANSMISSION-TIME {text!r}") from exc

    age = clock.as_utc(received_at) - transmitted_at
    tolerance_minutes = int(TRANSMISSION_TIME_TOLERANCE.total_seconds() // 60)
    if abs(age) > TRANSMISSION_TIME_TOLERANCE:
        raise WebhookRejected(
            f"PayPal webhook transmission time {text} is more than {tolerance_minutes} minutes "
            f"from its arrival at {clock.iso(received_at)}; rejected as a replay"
        )


def _parse_json_object(raw_body: bytes) -> dict[str, Any]:
    """Parse a webhook body as a UTF-8 JSON object; raise WebhookRejected otherwise."""
    try:
        value = json.loads(raw_body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected("PayPal webhook body is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise WebhookRejected("PayPal webhook body is not a JSON object")
    return value


def _build_verification_body(signature: Mapping[str, str], webhook_id: str, raw_event: bytes) -> bytes:
    """Build the verify-webhook-signature request with the event's raw bytes spliced in.

    PayPal signs a CRC32 of the exact bytes it sent, so the event goes back as received
    instead of as a re-serialisation that could differ in spacing or key order. The
    caller has already checked that `raw_event` is a UTF-8 JSON object.
    """
    fields = dict(signature, webhook_id=webhook_id)
    head = json.dumps(fields)[:-1]  # the object without its closing brace
    return head.encode("utf-8") + b', "webhook_event": ' + raw_event + b"}"


def _parse_ipn_fields(raw_body: bytes) -> dict[str, str]:
    """Decode an IPN form body in the charset it names (the `charset` field)."""
    text = raw_body.decode("latin-1")  # form bodies are ASCII; latin-1 maps any stray byte 1:1
    charset = dict(parse_qsl(text, keep_blank_values=True, encoding="latin-1")).get("charset") or IPN_DEFAULT_CHARSET
    try:
        encoding = codecs.lookup(charset).name
    except LookupError:
        encoding = "utf-8"
    return dict(parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="replace"))


def _log_callback_event(kind: str, event: PaymentEvent) -> None:
    extra = {
        "kind": kind,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "payment_id": event.payment_id,
        "transition": event.transition.value,
    }
    if event.transition is Transition.UNHANDLED:
        logger.warning("paypal_callback_unhandled", extra={**extra, "reason": event.details.get("reason", "")})
    else:
        logger.info("paypal_callback_verified", extra=extra)


# Mapping PayPal payloads to PaymentEvents.


def _parse_money(money: Any) -> tuple[int, str]:
    """Parse a PayPal money object into (absolute micro-units, currency)."""
    if not isinstance(money, dict) or not isinstance(money.get("value"), str):
        raise _Unmappable("amount is missing")
    try:
        micros = parse_micros(money["value"], allow_negative=True)
    except InvalidAmount as exc:
        raise _Unmappable(str(exc)) from exc
    return abs(micros), str(money.get("currency_code") or "").upper()


def parse_order_captures(order: Mapping[str, Any], *, event_id: str, received_at: datetime) -> list[PaymentEvent]:
    """Map the captures in an Orders v2 capture response to events keyed by capture id."""
    events = []
    for unit in order.get("purchase_units") or []:
        requested = _optional_money(unit.get("amount"))
        for capture in ((unit.get("payments") or {}).get("captures")) or []:
            status = str(capture.get("status") or "")
            transition = CAPTURE_TRANSITIONS.get(status, Transition.UNHANDLED)
            amount_micros, currency = _optional_money(capture.get("amount")) or (0, "")
            details: dict[str, Any] = {"order_id": order.get("id"), "status": status}
            if transition is Transition.UNHANDLED:
                details["reason"] = f"capture status {status!r} is not handled"

            events.append(
                PaymentEvent(
                    gateway=NAME,
                    payment_id=str(capture.get("id") or ""),
                    transition=transition,
                    amount_micros=amount_micros,
                    currency=currency,
                    event_id=event_id,
                    event_type="orders.capture",
                    occurred_at=_parse_time(capture.get("update_time") or capture.get("create_time")) or received_at,
                    account_id=capture.get("custom_id") or unit.get("custom_id") or None,
                    requested_micros=requested[0] if requested else None,
                    details=details,
                )
            )
    return [event for event in events if event.payment_id]


def parse_webhook_event(event: Mapping[str, Any], *, received_at: datetime) -> PaymentEvent:
    """Map a verified webhook event; an event that cannot be mapped becomes UNHANDLED."""
    event_type = str(event.get("event_type") or "")
    resource = event.get("resource")
    if not isinstance(resource, dict):
        resource = {}
    common: dict[str, Any] = {
        "gateway": NAME,
        "event_id": str(event.get("id") or ""),
        "event_type": event_type,
        "occurred_at": _parse_time(event.get("create_time")) or received_at,
    }

    try:
        if event_type in WEBHOOK_CAPTURE_TRANSITIONS:
            return _capture_webhook(resource, WEBHOOK_CAPTURE_TRANSITIONS[event_type], common)
        if event_type == "PAYMENT.CAPTURE.REFUNDED":
            return _refund_webhook(resource, common)
        if event_type == "PAYMENT.CAPTURE.REVERSED":
            return _reversal_webhook(resource, event, common)
        if event_type == "CUSTOMER.DISPUTE.RESOLVED":
            return _dispute_webhook(resource, common)
        raise _Unmappable(f"event type {event_type!r} is not handled")
    except _Unmappable as exc:
        payment_id = str(resource.get("id") or resource.get("dispute_id") or common["event_id"])
        amount_micros, currency = _optional_money(resource.get("amount")) or (0, "")
        return PaymentEvent(
            transition=Transition.UNHANDLED,
            payment_id=payment_id,
            amount_micros=amount_micros,
            currency=currency,
            details={"reason": str(exc)},
            **common,
        )


def _capture_webhook(resource: Mapping[str, Any], transition: Transition, common: dict[str, Any]) -> PaymentEvent:
    capture_id = _required_id(resource.get("id"), "capture id")
    amount_micros, currency = _parse_money(resource.get("amount"))
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    details = {"order_id": related.get("order_id"), "status": resource.get("status")}
    if resource.get("status_details"):
        details["status_reason"] = (resource.get("status_details") or {}).get("reason")

    return PaymentEvent(
        transition=transition,
        payment_id=capture_id,
        amount_micros=amount_micros,
        currency=currency,
        account_id=resource.get("custom_id") or None,
        details=details,
        **common,
    )


def _refund_webhook(resource: Mapping[str, Any], common: dict[str, Any]) -> PaymentEvent:
    refund_id = _required_id(resource.get("id"), "refund id")
    capture_id = _captured_payment_id(resource)
    amount_micros, currency = _parse_money(resource.get("amount"))

    return PaymentEvent(
        transition=Transition.REFUNDED,
        payment_id=capture_id,
        sub_id=refund_id,
        amount_micros=amount_micros,
        currency=currency,
        account_id=resource.get("custom_id") or None,
        details={"refund_id": refund_id, "status": resource.get("status")},
        **common,
    )


def _reversal_webhook(resource: Mapping[str, Any], event: Mapping[str, Any], common: dict[str, Any]) -> PaymentEvent:
    # PayPal sends the reversal as a refund-shaped resource whose "up" link is the capture.
    # sub_id stays empty, so this and a lost dispute over the same capture debit once.
    if event.get("resource_type") == "capture":
        capture_id = _required_id(resource.get("id"), "capture id")
    else:
        capture_id = _captured_payment_id(resource)
    amount_micros, currency = _parse_money(resource.get("amount"))

    return PaymentEvent(
        transition=Transition.REVERSED,
        payment_id=capture_id,
        amount_micros=amount_micros,
        currency=currency,
        account_id=resource.get("custom_id") or None,
        details={"reversal_id": resource.get("id"), "status": resource.get("status")},
        **common,
    )


def _dispute_webhook(resource: Mapping[str, Any], common: dict[str, Any]) -> PaymentEvent:
    dispute_id = _required_id(resource.get("dispute_id"), "dispute id")
    outcome = str((resource.get("dispute_outcome") or {}).get("outcome_code") or "")
    if outcome not in DISPUTE_LOST_OUTCOMES:
        raise _Unmappable(f"dispute {dispute_id} resolved with outcome {outcome or 'none'}, which moves no money")

    transactions = [item for item in resource.get("disputed_transactions") or [] if isinstance(item, dict)]
    if len(transactions) != 1:
        raise _Unmappable(f"dispute {dispute_id} covers {len(transactions)} transactions, not exactly one")
    transaction = transactions[0]
    capture_id = _required_id(transaction.get("seller_transaction_id"), "seller_transaction_id")

    refunded = (resource.get("dispute_outcome") or {}).get("amount_refunded") or resource.get("dispute_amount")
    amount_micros, currency = _parse_money(refunded)

    return PaymentEvent(
        transition=Transition.REVERSED,
        payment_id=capture_id,
        amount_micros=amount_micros,
        currency=currency,
        account_id=transaction.get("custom") or None,
        details={"dispute_id": dispute_id, "outcome": outcome},
        **common,
    )


def _captured_payment_id(resource: Mapping[str, Any]) -> str:
    """Return the capture id a refund-shaped resource belongs to, from its "up" link."""
    up = _find_link(resource, "up")
    if up:
        parts = urlsplit(up).path.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "captures" and parts[-1]:
            return parts[-1]

    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    if related.get("capture_id"):
        return str(related["capture_id"])
    raise _Unmappable("resource has no link to the capture it belongs to")


def parse_ipn_event(
    fields: Mapping[str, str],
    *,
    event_id: str,
    received_at: datetime,
    receiver_email: str = "",
) -> PaymentEvent:
    """Map the fields of a verified IPN; an IPN that cannot be mapped becomes UNHANDLED.

    `event_type` is "ipn:<txn_type>:<payment_status>", with "-" for a missing part.
    """
    status = fields.get("payment_status", "")
    txn_type = fields.get("txn_type", "")
    common: dict[str, Any] = {
        "gateway": NAME,
        "event_id": event_id,
        "event_type": f"ipn:{txn_type or '-'}:{status or '-'}",
        "occurred_at": _parse_ipn_time(fields.get("payment_date", "")) or received_at,
        "account_id": fields.get("custom", "").strip() or None,
        "currency": fields.get("mc_currency", "").upper(),
    }
    details = {
        key: fields[key]
        for key in ("txn_type", "payment_status", "pending_reason", "reason_code", "mc_fee", "ipn_track_id")
        if fields.get(key)
    }

    try:
        _check_ipn_receiver(fields, receiver_email)
        if txn_type and txn_type not in IPN_PAYMENT_TXN_TYPES:
            raise _Unmappable(f"IPN txn_type {txn_type!r} is not a one-off payment")
        transition, payment_id, sub_id = _ipn_transition(fields, status)
        amount_micros = _ipn_amount(fields, transition)
    except _Unmappable as exc:
        payment_id = fields.get("txn_id") or fields.get("parent_txn_id") or event_id
        return PaymentEvent(
            transition=Transition.UNHANDLED,
            payment_id=payment_id,
            amount_micros=_optional_ipn_amount(fields),
            details={**details, "reason": str(exc)},
            **common,
        )

    return PaymentEvent(
        transition=transition,
        payment_id=payment_id,
        sub_id=sub_id,
        amount_micros=amount_micros,
        details=details,
        **common,
    )


def _check_ipn_receiver(fields: Mapping[str, str], receiver_email: str) -> None:
    if not receiver_email:
        return
    receivers = {fields.get("receiver_email", "").strip().lower(), fields.get("business", "").strip().lower()}
    if receiver_email not in receivers:
        raise _Unmappable("IPN is for another PayPal receiver than the configured receiver_email")


def _ipn_transition(fields: Mapping[str, str], status: str) -> tuple[Transition, str, str]:
    """Return (transition, payment_id, sub_id) for an IPN payment_status.

    A payment is keyed by its txn_id. A refund, reversal or cancelled reversal is keyed
    by the parent_txn_id of the payment it changes, and a refund also by its own txn_id.
    """
    if status == "Completed":
        return Transition.COMPLETED, _ipn_field(fields, "txn_id", status), ""
    if status == "Pending":
        return Transition.PENDING, _ipn_field(fields, "txn_id", status), ""
    if status in IPN_FAILED_STATUSES:
        return Transition.FAILED, _ipn_field(fields, "txn_id", status), ""
    if status == "Refunded":
        return Transition.REFUNDED, _ipn_field(fields, "parent_txn_id", status), _ipn_field(fields, "txn_id", status)
    if status == "Reversed":
        return Transition.REVERSED, _ipn_field(fields, "parent_txn_id", status), ""
    if status == "Canceled_Reversal":
        return Transition.REVERSAL_CANCELLED, _ipn_field(fields, "parent_txn_id", status), ""
    raise _Unmappable(f"IPN payment_status {status!r} is not handled")


def _ipn_field(fields: Mapping[str, str], name: str, status: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise _Unmappable(f"{status} IPN has no {name}")
    return value


def _ipn_amount(fields: Mapping[str, str], transition: Transition) -> int:
    """Return the absolute mc_gross in micro-units; a payment must be positive."""
    if not fields.get("mc_currency"):
        raise _Unmappable("IPN has no mc_currency")
    try:
        micros = parse_micros(fields.get("mc_gross", ""), allow_negative=True)
    except InvalidAmount as exc:
        raise _Unmappable(f"IPN mc_gross is invalid: {exc}") from exc
    if transition in (Transition.COMPLETED, Transition.PENDING) and micros <= 0:
        raise _Unmappable(f"IPN payment has a non-positive mc_gross {fields.get('mc_gross')!r}")
    return abs(micros)


def _optional_ipn_amount(fields: Mapping[str, str]) -> int:
    try:
        return abs(parse_micros(fields.get("mc_gross", ""), allow_negative=True))
    except InvalidAmount:
        return 0


def parse_report_transaction(detail: Mapping[str, Any], *, received_at: datetime) -> PaymentEvent | None:
    """Map a Transaction Search row to a COMPLETED event, or None if it is not a payment received."""
    info = detail.get("transaction_info") or {}
    code = info.get("transaction_event_code")
    transaction_id = info.get("transaction_id")
    if code not in REPORT_PAYMENT_CODES or info.get("transaction_status") != REPORT_COMPLETED_STATUS:
        return None
    if not transaction_id:
        return None

    amount = info.get("transaction_amount") or {}
    try:
        amount_micros = parse_micros(str(amount.get("value") or ""), allow_negative=True)
    except InvalidAmount as exc:
        logger.warning("paypal_report_row_skipped", extra={"transaction_id": transaction_id, "reason": str(exc)})
        return None
    if amount_micros <= 0:
        return None

    return PaymentEvent(
        gateway=NAME,
        payment_id=str(transaction_id),
        transition=Transition.COMPLETED,
        amount_micros=amount_micros,
        currency=str(amount.get("currency_code") or "").upper(),
        event_id=f"report-{transaction_id}",
        event_type=f"report:{code}",
        occurred_at=_parse_time(info.get("transaction_initiation_date")) or received_at,
        account_id=info.get("custom_field") or None,
        details={"event_code": code},
    )


# Small parsers.


def _required_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Unmappable(f"{name} is missing")
    return value


def _optional_money(money: Any) -> tuple[int, str] | None:
    try:
        return _parse_money(money)
    except _Unmappable:
        return None


def _parse_time(value: Any) -> datetime | None:
    """Parse a PayPal ISO 8601 time ("…Z" or "…+0000"); None if missing or invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return clock.parse_iso(value)
    except ValueError:
        return None


def _parse_ipn_time(text: str) -> datetime | None:
    """Parse an IPN payment_date such as "20:12:59 Jan 13, 2009 PST" into UTC."""
    moment, _, zone_name = text.strip().rpartition(" ")
    zone = IPN_TIME_ZONES.get(zone_name)
    if zone is None:
        return None
    try:
        local = datetime.strptime(moment, "%H:%M:%S %b %d, %Y")
    except ValueError:
        return None
    return clock.as_utc(local.replace(tzinfo=zone))
