"""Customer payments: starting a checkout, capturing an approved PayPal order, listing.

A checkout is recorded under the gateway's checkout id (PayPal order, Stripe Checkout
Session, Coinbase charge), so the callbacks credit the account and compare with the
amount we asked for, not only with the gateway's metadata.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from chalicelib.config import settings
from chalicelib.errors import InvalidRequest, NotFound, NotSupported
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.payments import Payment
from chalicelib.money import format_micros, money_json
from chalicelib.payments.base import Checkout, PaymentEvent
from chalicelib.payments.credit import apply_event, load_payment, record_checkout
from chalicelib.payments.registry import create_gateway, enabled_gateway_names, gateway_configs, gateway_spec

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 100
MAX_CURSOR_CHARS = 1024


@runtime_checkable
class PaysAtCheckout(Protocol):
    """A gateway whose checkout is paid at once (the demo gateway)."""

    def completed_event(self, checkout: Checkout, account_id: str, amount_micros: int) -> PaymentEvent: ...


@runtime_checkable
class CapturesOrders(Protocol):
    """A gateway whose approved checkout must be captured before money moves (PayPal Orders v2)."""

    def capture_order(self, order_id: str) -> list[PaymentEvent]: ...


def enabled_gateways() -> list[str]:
    return enabled_gateway_names()


def start_payment(account: Account, gateway_name: str, amount_micros: int, return_url: str | None) -> dict[str, Any]:
    """Start a checkout for `amount_micros` and return where to send the customer."""
    if gateway_name not in enabled_gateways():
        raise InvalidRequest(
            f"gateway {gateway_name!r} is not enabled; use one of {enabled_gateways()}", field="gateway"
        )
    config = settings()
    if not config.payment_min_micros <= amount_micros <= config.payment_max_micros:
        raise InvalidRequest(
            f"amount must be between {format_micros(config.payment_min_micros)} and "
            f"{format_micros(config.payment_max_micros)} {config.currency}",
            field="amount",
        )
    target = _return_url(gateway_name, return_url)

    gateway = create_gateway(gateway_name)
    checkout = gateway.start_checkout(account.account_id, amount_micros, config.currency, target)
    record_checkout(gateway_name, checkout.payment_id, account.account_id, amount_micros)
    logger.info(
        "payment_started",
        extra={
            "account_id": account.account_id,
            "gateway": gateway_name,
            "payment_id": checkout.payment_id,
            "amount_micros": amount_micros,
        },
    )

    status = "created"
    if isinstance(gateway, PaysAtCheckout):
        status = apply_event(gateway.completed_event(checkout, account.account_id, amount_micros)).outcome.value
    return {
        "payment_id": checkout.payment_id,
        "gateway": gateway_name,
        "redirect_url": checkout.redirect_url,
        "status": status,
    }


def capture_payment(account: Account, gateway_name: str, checkout_id: str) -> dict[str, Any]:
    """Capture the customer's approved checkout and credit what the gateway captured."""
    gateway_spec(gateway_name)
    checkout = load_payment(gateway_name, checkout_id)
    if checkout is None or checkout.account_id != account.account_id:
        raise NotFound(f"payment {checkout_id!r} not found; start one with POST /v1/payments")

    gateway = create_gateway(gateway_name)
    if not isinstance(gateway, CapturesOrders):
        raise NotSupported(f"{gateway_name} payments complete without a capture; the gateway's callback credits them")
    events = gateway.capture_order(checkout_id)

    results = [apply_event(event) for event in events]
    return {
        "payment_id": checkout_id,
        "gateway": gateway_name,
        "captures": [
            {"id": event.payment_id, "status": event.transition.value, "outcome": result.outcome.value}
            for event, result in zip(events, results, strict=True)
        ],
    }


def list_payments(account_id: str, limit: int = DEFAULT_LIST_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    """Return one page of the account's payments, newest first, and the cursor of the next page.

    Checkouts that a payment has taken over (a PayPal order once captured, a Stripe
    Checkout Session once paid) are left out, because the payment is listed instead.
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}", field="limit")
    start_key = _decode_cursor(cursor, account_id) if cursor else None

    results = Payment.account_index.query(
        account_id,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=start_key,
        filter_condition=Payment.replaced_by.does_not_exist(),
    )
    payments = [payment_json(payment) for payment in results]
    next_key = results.last_evaluated_key
    return {"payments": payments, "next_cursor": _encode_cursor(next_key) if next_key else None}


def payment_json(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.gateway_payment_id,
        "gateway": payment.gateway,
        "status": payment.status,
        "currency": payment.currency,
        "requested": money_json(payment.requested_micros),
        "received": money_json(payment.received_micros),
        "credited": money_json(sum(payment.amounts.values())),
        "flags": list(payment.flags),
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def _return_url(gateway_name: str, requested: str | None) -> str:
    """Return where the gateway sends the customer back: the request's URL or the configured one."""
    configured = gateway_configs()[gateway_name].settings.get("return_url")
    target = requested or (str(configured) if configured else None)
    if gateway_name == "demo":
        return target or "/"
    if not target:
        raise InvalidRequest(
            f"return_url is required for {gateway_name}: the page the gateway sends the customer back to",
            field="return_url",
        )
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"return_url {target!r} must be an absolute http or https URL", field="return_url")
    return target


def _encode_cursor(key: dict[str, Any]) -> str:
    text = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":"), sort_keys=True).encode()).decode()
    return text.rstrip("=")  # padding would need escaping in a query string


def _decode_cursor(cursor: str, account_id: str) -> dict[str, Any]:
    """Decode a cursor from a previous page; it must belong to `account_id`."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        owner = key["account_id"]["S"]
        valid = isinstance(key, dict) and all(isinstance(key[name]["S"], str) for name in ("payment_key", "created_at"))
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid, owner = False, None
    if not valid or owner != account_id:
        raise InvalidRequest("cursor is not valid; use next_cursor from the previous page", field="cursor")
    return key
