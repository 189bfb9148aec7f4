"""Stripe: Checkout Sessions and signed webhook events, over plain HTTPS.

A webhook is trusted only when an HMAC-SHA256 of "{t}.{raw body}" with the endpoint
secret matches one of its v1 signatures and t is within SIGNATURE_TOLERANCE_SECONDS of
the time it arrived. Stripe amounts are integers in the currency's minor unit; they
become micro-units by the currency's exponent, never through a float.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, WebhookRejected, WebhookSignatureInvalid
from chalicelib.log import logger
from chalicelib.money import MICROS_PER_UNIT, require_int
from chalicelib.net.http import HttpClient
from chalicelib.payments.base import CallbackRequest, Checkout, Gateway, PaymentEvent, Transition

API_URL = "https://api.stripe.com"
# The API version of the OpenAPI spec the tests validate requests against. Pinning it
# keeps the shape of responses fixed, whatever the account's default version is.
API_VERSION = "2023-08-16"
SIGNATURE_HEADER = "stripe-signature"
SIGNATURE_SCHEME = "v1"
SIGNATURE_TOLERANCE_SECONDS = 300  # Stripe's own libraries default to 5 minutes
LINE_ITEM_NAME = "Account credit"
LIST_PAGE_LIMIT = 100  # the largest page Stripe's list endpoints accept
MAX_LIST_PAGES = 100  # bounds one listing to 10,000 objects

# Currencies whose minor unit is not 1/100, from https://docs.stripe.com/currencies.
# ISK, HUF and TWD stay two-decimal in the API even where only whole units are charged.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# Refund statuses whose money has not gone back to the customer.
INACTIVE_REFUND_STATUSES = frozenset({"failed", "canceled"})

_TIMESTAMP = re.compile(r"^\d{1,12}$")


def currency_exponent(currency: str) -> int:
    """Return how many decimals Stripe's minor unit of `currency` has: 0, 2 or 3."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def minor_units_to_micros(amount: Any, currency: str) -> int:
    """Convert a Stripe amount (integer minor units) to micro-units exactly."""
    return require_int(amount) * 10 ** (6 - currency_exponent(currency))


def micros_to_minor_units(amount_micros: int, currency: str) -> int:
    """Convert micro-units to Stripe minor units, raising InvalidRequest if precision would be lost."""
    step = 10 ** (6 - currency_exponent(currency))
    if require_int(amount_micros) % step:
        unit = MICROS_PER_UNIT // step
        raise InvalidRequest(f"amount must be a whole multiple of 1/{unit} {currency.upper()}", field="amount")
    return amount_micros // step


class StripeGateway(Gateway):
    """Stripe Checkout. Settings: `api_url`. Secrets: `secret_key`, `webhook_secret`."""

    NAME = "stripe"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(settings, secrets)
        self._http: HttpClient | None = None
        self._handlers: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[PaymentEvent]]] = {
            "checkout.session.completed": self._session_paid,
            "checkout.session.async_payment_succeeded": self._session_paid,
            "checkout.session.async_payment_failed": self._session_failed,
            "charge.refunded": self._charge_refunded,
            "charge.dispute.funds_withdrawn": self._dispute_withdrawn,
            "charge.dispute.closed": self._dispute_closed,
            "charge.dispute.funds_reinstated": self._dispute_reinstated,
        }

    # Checkout.

    def start_checkout(self, account_id: str, amount_micros: int, currency: str, return_url: str) -> Checkout:
        """Create a Checkout Session for one line item of `amount_micros` and return its id and URL."""
        if require_int(amount_micros) <= 0:
            raise InvalidRequest("amount must be positive", field="amount")
        unit_amount = micros_to_minor_units(amount_micros, currency)

        form = [
            ("mode", "payment"),
            ("success_url", return_url),
            ("cancel_url", return_url),
            ("client_reference_id", account_id),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", currency.lower()),
            ("line_items[0][price_data][unit_amount]", str(unit_amount)),
            ("line_items[0][price_data][product_data][name]", LINE_ITEM_NAME),
            ("metadata[account_id]", account_id),
            ("payment_intent_data[metadata][account_id]", account_id),
        ]
        # One key per checkout: HttpClient's retries of this request reuse it, so Stripe
        # creates the session once even when a response is lost.
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        session = self._client().json("POST", "/v1/checkout/sessions", data=form, headers=headers, idempotent=True)

        session_id, url = (session or {}).get("id"), (session or {}).get("url")
        if not session_id or not url:
            raise BackendError("Stripe returned a Checkout Session without an id or url")

        logger.info(
            "checkout_started",
            extra={
                "gateway": self.NAME,
                "payment_id": session_id,
                "account_id": account_id,
                "amount_micros": amount_micros,
            },
        )
        return Checkout(payment_id=session_id, redirect_url=url)

    # Callbacks.

    def verify_callback(self, request: CallbackRequest) -> list[PaymentEvent]:
        """Verify the Stripe-Signature header over the raw body, then map the event."""
        self._verify_signature(request)

        try:
            event = json.loads(request.raw_body)
        except ValueError as exc:
            raise _rejected("body_not_json", "Stripe webhook body is not JSON") from exc
        if not isinstance(event, dict) or event.get("object") != "event":
            raise _rejected("event_missing", "Stripe webhook body is not an event object")

        try:
            events = self._events_for(event)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _rejected("event_malformed", f"Stripe webhook event is malformed: {exc!r}") from exc
        logger.info(
            "webhook_verified",
            extra={"gateway": self.NAME, "event_id": event.get("id"), "event_type": event.get("type")},
        )
        return events

    def _verify_signature(self, request: CallbackRequest) -> None:
        secret = self.secrets.get("webhook_secret")
        if not secret:
            logger.error("webhook_secret_missing", extra={"gateway": self.NAME})
            raise WebhookRejected("the Stripe webhook secret is not configured")

        header = _header(request.headers, SIGNATURE_HEADER)
        if not header:
            raise _signature_invalid("signature_missing", "Stripe-Signature header is missing")
        timestamp, signatures = _parse_signature_header(header)

        signed_payload = timestamp.encode() + b"." + request.raw_body
        expected = hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest().encode()
        if not any(hmac.compare_digest(expected, signature.encode()) for signature in signatures):
            raise _signature_invalid("signature_mismatch", "no v1 signature in Stripe-Signature matches the body")

        skew_seconds = abs(request.received_at.timestamp() - int(timestamp))
        if skew_seconds > SIGNATURE_TOLERANCE_SECONDS:
            raise _rejected(
                "timestamp_outside_tolerance",
                f"Stripe-Signature timestamp is {int(skew_seconds)} s from the arrival time, "
                f"more than {SIGNATURE_TOLERANCE_SECONDS} s; the delivery may be replayed",
            )

    def _events_for(self, event: Mapping[str, Any]) -> list[PaymentEvent]:
        obj = event["data"]["object"]
        if not isinstance(obj, dict):
            raise ValueError("data.object is not an object")
        handler = self._handlers.get(str(event.get("type")))
        if handler is None:
            return [self._unhandled(event, obj, "event type carries no payment")]
        return handler(event, obj)

    # Checkout Session events.

    def _session_paid(self, event: Mapping[str, Any], session: Mapping[str, Any]) -> list[PaymentEvent]:
        if session.get("mode") != "payment":
            return [self._unhandled(event, session, f"Checkout Session mode {session.get('mode')!r}")]
        status = session.get("payment_status")
        if status == "paid":
            return [self._session_event(event, session, Transition.COMPLETED)]
        if status == "unpaid":
            return [self._session_event(event, session, Transition.PENDING)]
        return [self._unhandled(event, session, f"Checkout Session payment_status {status!r}")]

    def _session_failed(self, event: Mapping[str, Any], session: Mapping[str, Any]) -> list[PaymentEvent]:
        return [self._session_event(event, session, Transition.FAILED)]

    def _session_event(
        self, event: Mapping[str, Any], session: Mapping[str, Any], transition: Transition
    ) -> PaymentEvent:
        metadata = session.get("metadata") or {}
        # NOTE: a session in payment mode has a PaymentIntent once the customer pays. The
        # session id is used only if Stripe omits it, and refunds would not match it then.
        payment_id = _object_id(session.get("payment_intent")) or str(session["id"])
        return self._event(
            event,
            payment_id=payment_id,
            transition=transition,
            amount=session["amount_total"],
            currency=session["currency"],
            account_id=session.get("client_reference_id") or metadata.get("account_id"),
            details={"checkout_session_id": session["id"]},
        )

    # Refunds.

    def _charge_refunded(self, event: Mapping[str, Any], charge: Mapping[str, Any]) -> list[PaymentEvent]:
        """Map each refund of the charge to its own event, keyed by the refund id.

        `amount_refunded` is the running total of every refund, so it is not used as an
        amount. One event per refund lets a repeated or later delivery debit each refund
        once, and the refunds listed must add up to `amount_refunded`.
        """
        refunds = [
            refund for refund in self._refunds_of(charge) if refund.get("status") not in INACTIVE_REFUND_STATUSES
        ]
        listed_total = sum(require_int(refund["amount"]) for refund in refunds)
        refunded_total = require_int(charge["amount_refunded"])
        if listed_total < refunded_total:
            logger.warning(
                "refund_list_incomplete",
                extra={
                    "gateway": self.NAME,
                    "charge_id": charge.get("id"),
                    "listed": listed_total,
                    "refunded": refunded_total,
                },
            )
            raise BackendUnavailable(
                "Stripe listed fewer refunds than the charge's amount_refunded; retry the delivery"
            )

        payment_id = _object_id(charge.get("payment_intent")) or str(charge["id"])
        return [
            self._event(
                event,
                payment_id=payment_id,
                transition=Transition.REFUNDED,
                amount=refund["amount"],
                currency=refund.get("currency") or charge["currency"],
                account_id=(charge.get("metadata") or {}).get("account_id"),
                sub_id=str(refund["id"]),
                details={
                    "charge_id": charge["id"],
                    "amount_refunded": refunded_total,
                    "refund_status": refund.get("status"),
                },
            )
            for refund in refunds
        ]

    def _refunds_of(self, charge: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Return the charge's refunds, from the event when it lists all of them, else from the API."""
        embedded = charge.get("refunds")
        if isinstance(embedded, dict) and embedded.get("has_more") is False:
            return list(embedded.get("data") or [])
        return self._list_all("/v1/refunds", {"charge": charge["id"]})

    # Disputes.

    def _dispute_withdrawn(self, event: Mapping[str, Any], dispute: Mapping[str, Any]) -> list[PaymentEvent]:
        return [self._dispute_event(event, dispute, Transition.REVERSED)]

    def _dispute_closed(self, event: Mapping[str, Any], dispute: Mapping[str, Any]) -> list[PaymentEvent]:
        # A lost dispute keeps the funds withdrawn when it opened. Both events carry the
        # dispute id as sub_id, so the debit happens once whichever of them arrives.
        if dispute.get("status") == "lost":
            return [self._dispute_event(event, dispute, Transition.REVERSED)]
        return [self._unhandled(event, dispute, f"dispute closed with status {dispute.get('status')!r}")]

    def _dispute_reinstated(self, event: Mapping[str, Any], dispute: Mapping[str, Any]) -> list[PaymentEvent]:
        return [self._dispute_event(event, dispute, Transition.REVERSAL_CANCELLED)]

    def _dispute_event(
        self, event: Mapping[str, Any], dispute: Mapping[str, Any], transition: Transition
    ) -> PaymentEvent:
        return self._event(
            event,
            payment_id=self._payment_id_of_dispute(dispute),
            transition=transition,
            amount=dispute["amount"],
            currency=dispute["currency"],
            account_id=(dispute.get("metadata") or {}).get("account_id"),
            sub_id=str(dispute["id"]),
            details={"charge_id": _object_id(dispute.get("charge")), "dispute_status": dispute.get("status")},
        )

    def _payment_id_of_dispute(self, dispute: Mapping[str, Any]) -> str:
        payment_intent = _object_id(dispute.get("payment_intent"))
        if payment_intent:
            return payment_intent
        charge_id = _object_id(dispute.get("charge"))
        if not charge_id:
            raise ValueError("dispute has neither payment_intent nor charge")
        charge = self._client().json("GET", f"/v1/charges/{charge_id}") or {}
        return _object_id(charge.get("payment_intent")) or charge_id

    # Reconciliation.

    def list_recent_payments(self, since: datetime) -> list[PaymentEvent]:
        """Return a COMPLETED event for each succeeded PaymentIntent created at or after `since`."""
        intents = self._list_all("/v1/payment_intents", {"created[gte]": int(since.timestamp())})
        events = []
        for intent in intents:
            if intent.get("status") != "succeeded":
                continue
            listed = {"id": f"list:{intent['id']}", "type": "payment_intents.list", "created": intent["created"]}
            events.append(
                self._event(
                    listed,
                    payment_id=str(intent["id"]),
                    transition=Transition.COMPLETED,
                    amount=intent["amount_received"],
                    currency=intent["currency"],
                    account_id=(intent.get("metadata") or {}).get("account_id"),
                )
            )
        return events

    # Plumbing.

    def _event(
        self,
        event: Mapping[str, Any],
        *,
        payment_id: str,
        transition: Transition,
        amount: Any,
        currency: str,
        account_id: str | None,
        sub_id: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> PaymentEvent:
        return PaymentEvent(
            gateway=self.NAME,
            payment_id=payment_id,
            transition=transition,
            amount_micros=minor_units_to_micros(amount, currency),
            currency=currency.upper(),
            event_id=str(event["id"]),
            event_type=str(event["type"]),
            occurred_at=datetime.fromtimestamp(require_int(event["created"]), UTC),
            account_id=str(account_id) if account_id else None,
            sub_id=sub_id,
            details=dict(details or {}),
        )

    def _unhandled(self, event: Mapping[str, Any], obj: Mapping[str, Any], reason: str) -> PaymentEvent:
        """Describe an authentic event that moves no money here, for the operator to review."""
        amount, currency = obj.get("amount_total", obj.get("amount")), obj.get("currency")
        if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
            amount, currency = 0, ""
        metadata = obj.get("metadata")
        return self._event(
            event,
            payment_id=_object_id(obj.get("payment_intent")) or _object_id(obj.get("id")) or f"event:{event['id']}",
            transition=Transition.UNHANDLED,
            amount=amount,
            currency=currency,
            account_id=metadata.get("account_id") if isinstance(metadata, dict) else None,
            details={"reason": reason, "object": obj.get("object")},
        )

    def _list_all(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Follow a Stripe list endpoint through `starting_after` until `has_more` is false."""
        items: list[dict[str, Any]] = []
        query = {**params, "limit": LIST_PAGE_LIMIT}
        for _ in range(MAX_LIST_PAGES):
            page = self._client().json("GET", path, params=query) or {}
            data = page.get("data") or []
            items.extend(data)
            if not page.get("has_more") or not data:
                return items
            query["starting_after"] = data[-1]["id"]

        logger.warning("stripe_list_truncated", extra={"gateway": self.NAME, "path": path, "max_pages": MAX_LIST_PAGES})
        return items

    def _client(self) -> HttpClient:
        if self._http is None:
            secret_key = self.secrets.get("secret_key")
            if not secret_key:
                raise BackendError("the Stripe secret key is not configured")
            self._http = HttpClient(
                provider="Stripe",
                base_url=self.settings.get("api_url") or API_URL,
                default_headers={"Authorization": f"Bearer {secret_key}", "Stripe-Version": API_VERSION},
                describe_error=_describe_error,
            )
        return self._http


def _parse_signature_header(header: str) -> tuple[str, list[str]]:
    """Split "t=...,v1=...,v1=..." into the timestamp text and the v1 signatures."""
    timestamps, signatures = [], []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value.strip().lower())

    if len(timestamps) != 1 or not _TIMESTAMP.match(timestamps[0]):
        raise _signature_invalid("signature_malformed", "Stripe-Signature needs exactly one numeric t= element")
    if not signatures:
        raise _signature_invalid("signature_malformed", "Stripe-Signature has no v1 signature")
    return timestamps[0], signatures


def _object_id(value: Any) -> str | None:
    """Return the id of a field that is either an id or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def _signature_invalid(reason: str, message: str) -> WebhookSignatureInvalid:
    logger.warning("webhook_rejected", extra={"gateway": StripeGateway.NAME, "reason": reason})
    return WebhookSignatureInvalid(message)


def _rejected(reason: str, message: str) -> WebhookRejected:
    logger.warning("webhook_rejected", extra={"gateway": StripeGateway.NAME, "reason": reason})
    return WebhookRejected(message)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _describe_error(response: requests.Response) -> str:
    error = (response.json() or {}).get("error") or {}
    return str(error.get("message") or error.get("type") or "")
