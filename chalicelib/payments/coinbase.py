"""Coinbase Commerce: hosted charges and their signed webhooks.

A webhook is trusted only when the HMAC-SHA256 of its raw bytes, keyed with the shared
secret, matches X-CC-Webhook-Signature. Nothing in it is parsed before that. A charge is
credited with what its payments brought in, which may differ from the price requested.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from chalicelib.errors import BackendError, InvalidRequest, WebhookRejected, WebhookSignatureInvalid
from chalicelib.log import logger
from chalicelib.money import format_micros, parse_micros, require_int
from chalicelib.net.http import HttpClient
from chalicelib.payments.base import CallbackRequest, Checkout, Gateway, PaymentEvent, Transition

API_URL = "https://api.commerce.coinbase.com"
API_VERSION = "2018-03-22"  # sent as X-CC-Version: the version in Coinbase's webhook examples and SDKs
SIGNATURE_HEADER = "x-cc-webhook-signature"
CHARGE_NAME = "Account credit"
LIST_PAGE_LIMIT = 100  # the largest page GET /charges accepts
MAX_LIST_PAGES = 100  # bounds one reconciliation run to 10,000 charges

# Event types whose charge Coinbase reports as paid in full and final.
SETTLED_EVENT_TYPES = frozenset({"charge:confirmed", "charge:resolved"})
# Event types that can report money moving on a charge.
MONEY_EVENT_TYPES = SETTLED_EVENT_TYPES | {"charge:pending", "charge:failed", "charge:delayed"}
# Timeline statuses of a charge that Coinbase considers paid.
SETTLED_TIMELINE_STATUSES = frozenset({"COMPLETED", "CONFIRMED", "RESOLVED"})


class CoinbaseGateway(Gateway):
    """Coinbase Commerce charges. Settings: `api_url`. Secrets: `api_key`, `webhook_secret`."""

    NAME = "coinbase"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(settings, secrets)
        self._http: HttpClient | None = None

    # Checkout.

    def start_checkout(self, account_id: str, amount_micros: int, currency: str, return_url: str) -> Checkout:
        """Create a fixed-price charge and return its code and hosted payment page."""
        if require_int(amount_micros) <= 0:
            raise InvalidRequest("amount must be positive", field="amount")

        amount_text = format_micros(amount_micros)
        body = {
            "name": CHARGE_NAME,
            "description": f"{amount_text} {currency.upper()} of prepaid credit",
            "pricing_type": "fixed_price",
            "local_price": {"amount": amount_text, "currency": currency.upper()},
            "metadata": {"account_id": account_id},
            "redirect_url": return_url,
            "cancel_url": return_url,
        }
        response = self._client().json("POST", "/charges", json=body)

        charge = (response or {}).get("data") or {}
        code, hosted_url = charge.get("code"), charge.get("hosted_url")
        if not code or not hosted_url:
            raise BackendError("Coinbase Commerce returned a charge without a code or hosted_url")

        logger.info(
            "checkout_started",
            extra={"gateway": self.NAME, "payment_id": code, "account_id": account_id, "amount_micros": amount_micros},
        )
        return Checkout(payment_id=code, redirect_url=hosted_url)

    # Callbacks.

    def verify_callback(self, request: CallbackRequest) -> list[PaymentEvent]:
        """Verify the webhook signature over the raw body, then map the event it carries."""
        self._verify_signature(request)

        try:
            payload = json.loads(request.raw_body)
        except ValueError as exc:
            raise _rejected("body_not_json", "Coinbase Commerce webhook body is not JSON") from exc
        event = payload.get("event") if isinstance(payload, dict) else None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise _rejected("event_missing", "Coinbase Commerce webhook has no event with charge data")

        try:
            events = self._events_for(event)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _rejected("event_malformed", f"Coinbase Commerce webhook is malformed: {exc!r}") from exc
        logger.info(
            "webhook_verified",
            extra={"gateway": self.NAME, "event_id": event.get("id"), "event_type": event.get("type")},
        )
        return events

    def _verify_signature(self, request: CallbackRequest) -> None:
        secret = self.secrets.get("webhook_secret")
        if not secret:
            logger.error("webhook_secret_missing", extra={"gateway": self.NAME})
            raise WebhookRejected("the Coinbase Commerce webhook secret is not configured")

        signature = _header(request.headers, SIGNATURE_HEADER)
        if not signature:
            raise _signature_invalid("signature_missing", "X-CC-Webhook-Signature header is missing")

        expected = hmac.new(secret.encode(), request.raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise _signature_invalid("signature_mismatch", "X-CC-Webhook-Signature does not match the body")

    def _events_for(self, event: Mapping[str, Any]) -> list[PaymentEvent]:
        event_type = str(event.get("type") or "")
        charge = event["data"]
        if event_type not in MONEY_EVENT_TYPES:
            return [self._event(event, charge, Transition.UNHANDLED, 0, reason="event type carries no payment")]

        received = _received_payments(charge, settled=event_type in SETTLED_EVENT_TYPES)
        if received:
            return [self._received_event(event, charge, received)]

        detected = _detected_payments(charge)
        if event_type == "charge:failed":
            return [self._event(event, charge, Transition.FAILED, 0, payments=detected)]
        if detected:
            return [self._event(event, charge, Transition.PENDING, _sum_local(detected)[0], payments=detected)]
        if event_type == "charge:pending":
            return [self._event(event, charge, Transition.PENDING, _requested_price(charge)[0] or 0)]
        return [self._event(event, charge, Transition.UNHANDLED, 0, reason="charge reported paid without payments")]

    def _received_event(
        self, event: Mapping[str, Any], charge: Mapping[str, Any], received: list[dict]
    ) -> PaymentEvent:
        amount_micros, currency = _sum_local(received)
        if currency is None:
            return self._event(event, charge, Transition.UNHANDLED, 0, reason="payments in several local currencies")
        return self._event(event, charge, Transition.COMPLETED, amount_micros, currency=currency, payments=received)

    def _event(
        self,
        event: Mapping[str, Any],
        charge: Mapping[str, Any],
        transition: Transition,
        amount_micros: int,
        *,
        currency: str | None = None,
        payments: list[dict] | None = None,
        reason: str | None = None,
    ) -> PaymentEvent:
        requested_micros, requested_currency = _requested_price(charge)
        details: dict[str, Any] = {"charge_id": charge.get("id"), "timeline_status": _timeline_status(charge)}
        if payments:
            details["transaction_ids"] = [_transaction_id(payment) for payment in payments]
        if reason:
            details["reason"] = reason

        return PaymentEvent(
            gateway=self.NAME,
            payment_id=_payment_id(charge),
            transition=transition,
            amount_micros=amount_micros,
            currency=(currency or requested_currency or "").upper(),
            event_id=str(event.get("id") or ""),
            event_type=str(event.get("type") or ""),
            occurred_at=_parse_time(event.get("created_at")),
            account_id=_account_id(charge),
            requested_micros=requested_micros,
            details=details,
        )

    # Reconciliation.

    def list_recent_payments(self, since: datetime) -> list[PaymentEvent]:
        """Return one COMPLETED event per paid charge created at or after `since`."""
        events: list[PaymentEvent] = []
        params: dict[str, Any] = {"limit": LIST_PAGE_LIMIT, "order": "desc"}

        for _ in range(MAX_LIST_PAGES):
            page = self._client().json("GET", "/charges", params=params) or {}
            charges = page.get("data") or []
            for charge in charges:
                try:
                    if _parse_time(charge.get("created_at")) < since:
                        return events
                    events.extend(self._listed_charge_events(charge))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    logger.warning(
                        "payment_list_charge_skipped",
                        extra={"gateway": self.NAME, "charge_id": charge.get("id"), "error": str(exc)},
                    )

            if not charges or not (page.get("pagination") or {}).get("next_uri"):
                return events
            params["starting_after"] = charges[-1]["id"]

        logger.warning("payment_list_truncated", extra={"gateway": self.NAME, "max_pages": MAX_LIST_PAGES})
        return events

    def _listed_charge_events(self, charge: Mapping[str, Any]) -> list[PaymentEvent]:
        settled = _timeline_status(charge) in SETTLED_TIMELINE_STATUSES
        received = _received_payments(charge, settled=settled)
        if not received:
            return []
        listed = {"id": f"list:{charge.get('id')}", "type": "charges.list", "created_at": charge.get("created_at")}
        event = self._received_event(listed, charge, received)
        return [event] if event.transition == Transition.COMPLETED else []

    # Plumbing.

    def _client(self) -> HttpClient:
        if self._http is None:
            api_key = self.secrets.get("api_key")
            if not api_key:
                raise BackendError("the Coinbase Commerce API key is not configured")
            self._http = HttpClient(
                provider="Coinbase Commerce",
                base_url=self.settings.get("api_url") or API_URL,
                default_headers={"X-CC-Api-Key": api_key, "X-CC-Version": API_VERSION, "Accept": "application/json"},
                describe_error=_describe_error,
            )
        return self._http


def _signature_invalid(reason: str, message: str) -> WebhookSignatureInvalid:
    logger.warning("webhook_rejected", extra={"gateway": CoinbaseGateway.NAME, "reason": reason})
    return WebhookSignatureInvalid(message)


def _rejected(reason: str, message: str) -> WebhookRejected:
    logger.warning("webhook_rejected", extra={"gateway": CoinbaseGateway.NAME, "reason": reason})
    return WebhookRejected(message)


def _received_payments(charge: Mapping[str, Any], *, settled: bool) -> list[dict]:
    """Return the payments whose money arrived.

    A payment counts when Coinbase marks it CONFIRMED. In a settled event (confirmed or
    resolved) every payment that did not fail counts, because the on-chain API may leave
    a payment's own status at "pending" after the charge completes.
    """
    payments = [payment for payment in charge.get("payments") or [] if isinstance(payment, dict)]
    if settled:
        return [payment for payment in payments if _status(payment) != "FAILED"]
    return [payment for payment in payments if _status(payment) == "CONFIRMED"]


def _detected_payments(charge: Mapping[str, Any]) -> list[dict]:
    return [p for p in charge.get("payments") or [] if isinstance(p, dict) and _status(p) not in ("FAILED", "")]


def _status(payment: Mapping[str, Any]) -> str:
    return str(payment.get("status") or "").upper()


def _sum_local(payments: list[dict]) -> tuple[int, str | None]:
    """Sum the payments' value.local amounts. The currency is None when they differ."""
    total, currencies = 0, set()
    for payment in payments:
        local = (payment.get("value") or {}).get("local") or {}
        total += _parse_amount(local.get("amount"))
        currencies.add(str(local.get("currency") or "").upper())
    return total, (currencies.pop() if len(currencies) == 1 else None)


def _requested_price(charge: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """Return the price the charge requested, from pricing.local or the older local_price."""
    price = (charge.get("pricing") or {}).get("local") or charge.get("local_price")
    if not isinstance(price, dict) or price.get("amount") is None:
        return None, None
    return _parse_amount(price["amount"]), str(price.get("currency") or "").upper() or None


def _parse_amount(amount: Any) -> int:
    """Parse an amount sent as decimal text. A JSON number is rejected, so no float is ever read."""
    if not isinstance(amount, str):
        raise ValueError(f"amount {amount!r} is not decimal text")
    return parse_micros(amount)


def _payment_id(charge: Mapping[str, Any]) -> str:
    payment_id = charge.get("code") or charge.get("id")
    if not payment_id:
        raise ValueError("the charge has neither code nor id")
    return str(payment_id)


def _account_id(charge: Mapping[str, Any]) -> str | None:
    metadata = charge.get("metadata")
    account_id = metadata.get("account_id") if isinstance(metadata, dict) else None
    return str(account_id) if account_id else None


def _transaction_id(payment: Mapping[str, Any]) -> str:
    transaction = payment.get("transaction_id") or payment.get("payment_id") or ""
    network = payment.get("network")
    return f"{network}:{transaction}" if network else str(transaction)


def _timeline_status(charge: Mapping[str, Any]) -> str:
    timeline = charge.get("timeline") or []
    last = timeline[-1] if timeline and isinstance(timeline[-1], dict) else {}
    return str(last.get("status") or "").upper()


def _parse_time(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return moment


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _describe_error(response: requests.Response) -> str:
    error = (response.json() or {}).get("error") or {}
    return str(error.get("message") or error.get("type") or "")
