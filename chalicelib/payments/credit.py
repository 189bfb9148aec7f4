"""Applying verified payment events to accounts, exactly once per (payment, transition).

The payment item's `applied` set is the guard: the transition key is added in the same
transaction that writes the ledger line and changes the balance, so duplicate,
concurrent or reordered deliveries move money once. Events that cannot be credited
safely (unknown account, another currency) are recorded and flagged, never dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.clock import iso, now
from chalicelib.config import settings
from chalicelib.log import logger, metrics
from chalicelib.models.accounts import Account
from chalicelib.models.payments import Payment
from chalicelib.money import format_micros
from chalicelib.payments.base import PaymentEvent, Transition

MONEY_SIGN = {
    Transition.COMPLETED: 1,
    Transition.REFUNDED: -1,
    Transition.REVERSED: -1,
    Transition.REVERSAL_CANCELLED: 1,
}


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"  # stored without moving money (pending, failed, unhandled)
    FLAGGED = "flagged"  # stored for the operator; no money moved


@dataclass(frozen=True)
class CreditResult:
    outcome: Outcome
    payment_key: str
    amount_micros: int = 0


def payment_key(gateway: str, payment_id: str) -> str:
    return f"{gateway}#{payment_id}"


def transition_key(event: PaymentEvent) -> str:
    if event.transition == Transition.COMPLETED:
        return "credit"
    return f"{event.transition.value}:{event.sub_id}" if event.sub_id else event.transition.value


def record_checkout(gateway: str, payment_id: str, account_id: str, amount_micros: int) -> Payment:
    """Store a started checkout, so the callback is matched to the account that paid."""
    moment = iso(now())
    payment = Payment(
        payment_key(gateway, payment_id),
        gateway=gateway,
        gateway_payment_id=payment_id,
        account_id=account_id,
        status="created",
        currency=settings().currency,
        requested_micros=amount_micros,
        created_at=moment,
        updated_at=moment,
    )
    payment.save(condition=Payment.payment_key.does_not_exist())
    return payment


def apply_event(event: PaymentEvent) -> CreditResult:
    """Apply one verified event; safe to call any number of times for the same event."""
    key = payment_key(event.gateway, event.payment_id)
    payment = _load_or_create(key, event)
    account_id = payment.account_id or event.account_id
    flags = _flags_for(event, payment, account_id)

    sign = MONEY_SIGN.get(event.transition)
    if sign is None or "currency_mismatch" in flags or "unknown_account" in flags:
        _record_without_money(payment, event, flags)
        outcome = Outcome.FLAGGED if flags else Outcome.RECORDED
        return CreditResult(outcome, key)

    return _move_money(payment, event, account_id or "", sign * event.amount_micros, flags)


def _load_or_create(key: str, event: PaymentEvent) -> Payment:
    try:
        return Payment.get(key, consistent_read=True)
    except DoesNotExist:
        moment = iso(now())
        return Payment(
            key,
            gateway=event.gateway,
            gateway_payment_id=event.payment_id,
            account_id=event.account_id,
            status="unknown",
            currency=event.currency,
            created_at=moment,
            updated_at=moment,
        )


def _flags_for(event: PaymentEvent, payment: Payment, account_id: str | None) -> list[str]:
    config = settings()
    flags: list[str] = []
    if event.currency.upper() != config.currency:
        flags.append("currency_mismatch")
    if not account_id or not _account_exists(account_id):
        flags.append("unknown_account")
    if event.transition == Transition.UNHANDLED:
        flags.append("unhandled_event")
    if event.transition == Transition.COMPLETED:
        requested = event.requested_micros or payment.requested_micros or None
        if requested is not None and requested != event.amount_micros:
            flags.append("underpaid" if event.amount_micros < requested else "overpaid")
        if not config.payment_min_micros <= event.amount_micros <= config.payment_max_micros:
            flags.append("outside_bounds")
    return flags


def _account_exists(account_id: str) -> bool:
    try:
        Account.get(account_id)
        return True
    except DoesNotExist:
        return False


def _record_without_money(payment: Payment, event: PaymentEvent, flags: list[str]) -> None:
    payment.status = event.transition.value if event.transition != Transition.UNHANDLED else payment.status
    payment.flags = sorted(set(payment.flags) | set(flags) | ({f"event:{event.event_type}"} if flags else set()))
    payment.updated_at = iso(now())
    payment.save()
    if flags:
        logger.warning("payment_flagged", extra={"payment": payment.payment_key, "flags": flags, "event_id": event.event_id})
        metrics.add_metric(name="PaymentsFlagged", unit="Count", value=1)


def _move_money(payment: Payment, event: PaymentEvent, account_id: str, amount: int, flags: list[str]) -> CreditResult:
    tkey = transition_key(event)
    if tkey in payment.applied:
        return CreditResult(Outcome.DUPLICATE, payment.payment_key)

    line = new_line(
        account_id,
        moment=now(),
        kind="payment" if amount > 0 else "refund",
        reference=f"{payment.payment_key}#{tkey}",
        amount_micros=amount,
        description=_describe(event, amount),
        batch="payment",
    )
    payment.account_id = account_id
    payment.status = event.transition.value
    if event.transition == Transition.COMPLETED:
        payment.received_micros = event.amount_micros
    payment.flags = sorted(set(payment.flags) | set(flags))
    payment.updated_at = iso(now())

    def guard(transaction: TransactWrite) -> None:
        condition = Payment.payment_key.does_not_exist() | ~Payment.applied.contains(tkey)
        payment.applied = set(payment.applied) | {tkey}
        transaction.save(payment, condition=condition)

    try:
        post_lines(account_id, [line], extra_write=guard)
    except TransactWriteError:
        stored = Payment.get(payment.payment_key, consistent_read=True)
        if tkey in stored.applied:
            return CreditResult(Outcome.DUPLICATE, payment.payment_key)
        raise

    logger.info(
        "payment_credited" if amount > 0 else "payment_debited",
        extra={"account_id": account_id, "payment": payment.payment_key, "transition": tkey, "amount_micros": amount, "flags": flags},
    )
    metrics.add_metric(name="PaymentsApplied", unit="Count", value=1)
    _after_money(account_id, amount)
    return CreditResult(Outcome.APPLIED, payment.payment_key, amount)


def _describe(event: PaymentEvent, amount: int) -> str:
    verb = {
        Transition.COMPLETED: "Payment received",
        Transition.REFUNDED: "Payment refunded",
        Transition.REVERSED: "Payment reversed",
        Transition.REVERSAL_CANCELLED: "Payment reversal cancelled",
    }[event.transition]
    return f"{verb} via {event.gateway} ({event.payment_id}), {format_micros(abs(amount))} {event.currency.upper()}"


def _after_money(account_id: str, amount: int) -> None:
    """Hook for the credit life-cycle: a credit that leaves a positive balance lifts suspensions."""
    if amount <= 0:
        return
    from chalicelib.billing.lifecycle import on_credit

    on_credit(account_id)
