"""Starting payments for customers: bounds, the gateway's checkout, the payment record."""

from __future__ import annotations

from typing import Any

from chalicelib.config import settings
from chalicelib.errors import InvalidRequest
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.money import format_micros
from chalicelib.payments.credit import CreditResult, apply_event, record_checkout

LOCAL_GATEWAYS = frozenset({"demo"})


def enabled_gateways() -> list[str]:
    return sorted(LOCAL_GATEWAYS) if settings().is_local else []


def start_payment(account: Account, gateway_name: str, amount_micros: int, return_url: str) -> dict[str, Any]:
    """Start a checkout for `amount_micros` and return where to send the customer."""
    if gateway_name not in enabled_gateways():
        raise InvalidRequest(f"gateway {gateway_name!r} is not enabled; use one of {enabled_gateways()}", field="gateway")
    config = settings()
    if not config.payment_min_micros <= amount_micros <= config.payment_max_micros:
        raise InvalidRequest(
            f"amount must be between {format_micros(config.payment_min_micros)} and "
            f"{format_micros(config.payment_max_micros)} {config.currency}",
            field="amount",
        )

    from chalicelib.payments.demo import DemoGateway

    gateway = DemoGateway({}, {})
    checkout = gateway.start_checkout(account.account_id, amount_micros, config.currency, return_url)
    record_checkout(gateway.NAME, checkout.payment_id, account.account_id, amount_micros)
    logger.info("payment_started", extra={"account_id": account.account_id, "gateway": gateway_name, "amount_micros": amount_micros})

    result: CreditResult = apply_event(gateway.completed_event(checkout, account.account_id, amount_micros))
    return {"payment_id": checkout.payment_id, "redirect_url": checkout.redirect_url, "status": result.outcome.value}
