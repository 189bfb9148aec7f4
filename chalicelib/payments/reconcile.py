"""The daily reconciliation: what each gateway reports as paid against what was credited.

A completed payment with no credit (its callback never arrived, or never got a 2xx) is
applied through apply_event, so it is credited once however often the job runs. A
payment credited with another amount than the gateway reports is flagged for the
operator and moves no money. One gateway's failure does not stop the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from chalicelib.clock import iso
from chalicelib.errors import LobsterError
from chalicelib.log import logger
from chalicelib.payments.base import PaymentEvent, Transition
from chalicelib.payments.credit import Outcome, apply_event, flag_payment, load_payment
from chalicelib.payments.receipts import CREDIT_KEY
from chalicelib.payments.registry import create_gateway, enabled_gateway_names

AMOUNT_DIFFERS_FLAG = "reconciliation_amount_differs"


@dataclass
class GatewayTally:
    """Counts of one gateway's listed payments by outcome; `held` counts payments not credited
    because of another currency or an unknown account."""

    listed: int = 0
    applied: int = 0
    matched: int = 0
    amount_differs: int = 0
    held: int = 0
    failed: int = 0
    error: str | None = None


def run_reconciliation(since: datetime) -> dict[str, dict[str, object]]:
    """Reconcile the completed payments every enabled gateway lists since `since`."""
    report: dict[str, dict[str, object]] = {}
    for name in enabled_gateway_names():
        tally = _reconcile_gateway(name, since)
        report[name] = asdict(tally)
        logger.info("payment_reconciliation_done", extra={"gateway": name, "since": iso(since), **asdict(tally)})
    return report


def _reconcile_gateway(name: str, since: datetime) -> GatewayTally:
    tally = GatewayTally()
    try:
        events = create_gateway(name).list_recent_payments(since)
    except LobsterError as error:
        logger.error(
            "payment_reconciliation_failed", extra={"gateway": name, "code": error.code, "error": error.message}
        )
        tally.error = error.message
        return tally

    for event in events:
        if event.transition != Transition.COMPLETED:
            continue
        tally.listed += 1
        try:
            outcome = reconcile_payment(event)
        except LobsterError as error:
            logger.error(
                "payment_reconciliation_failed",
                extra={"gateway": name, "payment_id": event.payment_id, "code": error.code, "error": error.message},
            )
            tally.failed += 1
            continue
        setattr(tally, outcome, getattr(tally, outcome) + 1)
    return tally


def reconcile_payment(event: PaymentEvent) -> str:
    """Reconcile one completed payment a gateway listed; return "applied", "matched", "amount_differs" or "held"."""
    payment = load_payment(event.gateway, event.payment_id)
    credited = payment.received_micros if payment is not None and CREDIT_KEY in payment.applied else None

    if credited is None:
        result = apply_event(event)
        outcome = "applied" if result.outcome == Outcome.APPLIED else "held"
    elif credited == event.amount_micros:
        return "matched"
    else:
        flag_payment(event, AMOUNT_DIFFERS_FLAG)
        outcome = "amount_differs"

    extra = {
        "gateway": event.gateway,
        "payment_id": event.payment_id,
        "outcome": outcome,
        "listed_micros": event.amount_micros,
        "credited_micros": credited,
    }
    if outcome == "applied":
        logger.info("payment_reconciled", extra=extra)
    else:
        logger.warning("payment_reconciled", extra=extra)
    return outcome
