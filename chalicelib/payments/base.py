"""The gateway interface every payment gateway implements.

A gateway starts a checkout and turns a callback into verified `PaymentEvent`s; it
never moves money itself. `payments.credit` applies each event exactly once, keyed on
the gateway's payment id and the transition, not on the delivery.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


class Transition(enum.StrEnum):
    PENDING = "pending"  # money announced but not received: recorded, not credited
    COMPLETED = "completed"  # credit the amount received
    REFUNDED = "refunded"  # debit the refunded amount
    REVERSED = "reversed"  # debit: a chargeback or a lost dispute
    REVERSAL_CANCELLED = "reversal_cancelled"  # credit back a reversal
    FAILED = "failed"  # the payment will not complete: recorded only
    UNHANDLED = "unhandled"  # authentic but not understood: stored for the operator


@dataclass(frozen=True)
class Checkout:
    payment_id: str
    redirect_url: str


@dataclass(frozen=True)
class PaymentEvent:
    """One verified money transition reported by a gateway.

    `payment_id` is the gateway's id of the payment (not of the delivery); `sub_id`
    tells apart several transitions of one kind, such as two partial refunds.
    """

    gateway: str
    payment_id: str
    transition: Transition
    amount_micros: int
    currency: str
    event_id: str
    event_type: str
    occurred_at: datetime
    account_id: str | None = None
    sub_id: str = ""
    requested_micros: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackRequest:
    """An incoming callback exactly as received: the raw bytes are what gets verified."""

    headers: Mapping[str, str]  # lower-cased names
    raw_body: bytes
    query: Mapping[str, str]
    received_at: datetime


class Gateway(ABC):
    NAME: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        self.settings = dict(settings)
        self.secrets = dict(secrets)

    @abstractmethod
    def start_checkout(self, account_id: str, amount_micros: int, currency: str, return_url: str) -> Checkout:
        """Create the payment at the gateway and return where to send the customer."""

    @abstractmethod
    def verify_callback(self, request: CallbackRequest) -> list[PaymentEvent]:
        """Verify a callback against the gateway and return the events it reports.

        Raises WebhookSignatureInvalid for forged or altered callbacks and
        WebhookRejected for replayed or malformed ones; nothing is credited then.
        """

    def list_recent_payments(self, since: datetime) -> list[PaymentEvent]:
        """Return completed payments since `since`, for the daily reconciliation."""
        return []
