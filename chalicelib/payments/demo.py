"""The demo gateway for local runs: a checkout is paid the moment it starts.

Refused outside the local and test stages. It goes through the same crediting path as
real gateways, so a demo payment is one ledger line keyed on its payment id.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from chalicelib.clock import now
from chalicelib.config import settings
from chalicelib.errors import InvalidRequest
from chalicelib.money import format_micros
from chalicelib.payments.base import CallbackRequest, Checkout, Gateway, PaymentEvent, Transition

MICROS_PER_CENT = 10_000


class DemoGateway(Gateway):
    NAME = "demo"

    def __init__(self, settings_: Mapping[str, Any], secrets_: Mapping[str, str]) -> None:
        if not settings().is_local:
            raise RuntimeError("the demo gateway runs only in the local and test stages")
        super().__init__(settings_, secrets_)

    def start_checkout(self, account_id: str, amount_micros: int, currency: str, return_url: str) -> Checkout:
        # Like the card and wallet gateways, take whole cents only, so a local run refuses
        # what production would refuse.
        if amount_micros % MICROS_PER_CENT:
            raise InvalidRequest(f"amount {format_micros(amount_micros)} has a fraction of a cent; pay whole cents", field="amount")
        return Checkout(payment_id="demo_" + secrets.token_hex(8), redirect_url=return_url)

    def completed_event(self, checkout: Checkout, account_id: str, amount_micros: int) -> PaymentEvent:
        """The event a demo checkout produces at once: the full amount, paid."""
        return PaymentEvent(
            gateway=self.NAME,
            payment_id=checkout.payment_id,
            transition=Transition.COMPLETED,
            amount_micros=amount_micros,
            currency=settings().currency,
            event_id=checkout.payment_id,
            event_type="demo.completed",
            occurred_at=now(),
            account_id=account_id,
            requested_micros=amount_micros,
        )

    def verify_callback(self, request: CallbackRequest) -> list[PaymentEvent]:
        raise NotImplementedError("the demo gateway has no callbacks: it pays at checkout")
