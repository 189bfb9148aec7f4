"""Applying verified payment events to accounts, exactly once per (payment, transition).

The payment item's `applied` set is the guard: a transition key is added in the same
transaction that writes the ledger line, changes the balance and stores the audit record. Every whole-item write is
conditional on the version read (receipts and checkout links update one attribute and bump
the version). A delivery that loses a race re-reads the item and finds its transition
applied, so duplicate, concurrent or reordered deliveries move money once. Events that cannot be credited safely (unknown account,
another currency) are recorded and flagged, never dropped.
"""

from __future__ import annotations

import enum
import functools
import operator
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib import audit
from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.clock import iso, now
from chalicelib.config import settings
from chalicelib.errors import LobsterError
from chalicelib.log import logger, metrics
from chalicelib.models.accounts import Account
from chalicelib.models.payments import Payment
from chalicelib.money import format_micros
from chalicelib.payments.base import PaymentEvent, Transition
from chalicelib.payments.receipts import CREDIT_KEY, send_receipts

MONEY_SIGN = {
    Transition.COMPLETED: 1,
    Transition.REFUNDED: -1,
    Transition.REVERSED: -1,
    Transition.REVERSAL_CANCELLED: 1,
}
STATUS_AFTER = {
    Transition.COMPLETED: "completed",
    Transition.REFUNDED: "refunded",
    Transition.REVERSED: "reversed",
    Transition.REVERSAL_CANCELLED: "completed",
}
# Flags set when a transition arrives before the one it changes; it waits in `deferred`.
WAITING_FLAGS = {
    Transition.REFUNDED: "refund_before_credit",
    Transition.REVERSED: "reversal_before_credit",
    Transition.REVERSAL_CANCELLED: "reversal_cancelled_before_reversal",
}
RECORD_ONLY = frozenset({Transition.PENDING, Transition.FAILED, Transition.UNHANDLED})
# Flags that stop money from moving: the event is recorded for the operator instead.
HOLD_FLAGS = frozenset({"currency_mismatch", "unknown_account"})
# Flags that describe the amount received so far; a later top-up replaces them.
AMOUNT_FLAGS = frozenset({"underpaid", "overpaid", "outside_bounds"})

# PaymentEvent.details keys that name the checkout (PayPal order, Stripe Checkout Session)
# a payment came from, when the payment id differs from the checkout id.
CHECKOUT_DETAIL_KEYS = ("order_id", "checkout_session_id")
# DynamoDB errors of a write that lost a race: retried from a fresh read.
LOST_RACE_CODES = frozenset(
    {"TransactionCanceledException", "ConditionalCheckFailedException", "TransactionConflictException"}
)
MAX_APPLY_ATTEMPTS = 10
RETRY_BASE_SECONDS = 0.01
RETRY_MAX_SECONDS = 0.25
MAX_EVENT_HISTORY = 50
MAX_REASON_CHARS = 200


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"  # stored without moving money (pending, failed)
    FLAGGED = "flagged"  # stored for the operator; no money moved


class PaymentConflict(LobsterError):
    """Concurrent writers kept changing the payment; the caller should retry later."""

    status = 503
    code = "payment_conflict"


@dataclass(frozen=True)
class CreditResult:
    outcome: Outcome
    payment_key: str
    amount_micros: int = 0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Movement:
    """Money one transition key moves: signed micro-units, one ledger line."""

    key: str
    amount_micros: int
    transition: Transition


@dataclass
class Decision:
    outcome: Outcome
    movements: list[Movement] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


Decide = Callable[[Payment, PaymentEvent], Decision]


class _LostRace(Exception):
    """Another writer changed the payment after it was read."""


def payment_key(gateway: str, payment_id: str) -> str:
    return f"{gateway}#{payment_id}"


def transition_key(event: PaymentEvent) -> str:
    """Return the guard key of a refund, reversal or cancelled reversal; credits use CREDIT_KEY."""
    if event.transition == Transition.COMPLETED:
        return CREDIT_KEY
    return f"{event.transition.value}:{event.sub_id}" if event.sub_id else event.transition.value


def record_checkout(gateway: str, checkout_id: str, account_id: str, amount_micros: int) -> Payment:
    """Store a started checkout, so its callbacks credit the account and amount we asked for."""
    moment = iso(now())
    payment = Payment(
        payment_key(gateway, checkout_id),
        gateway=gateway,
        gateway_payment_id=checkout_id,
        account_id=account_id,
        status="created",
        currency=settings().currency,
        requested_micros=amount_micros,
        checkout_id=checkout_id,
        created_at=moment,
        updated_at=moment,
    )
    payment.save(condition=Payment.payment_key.does_not_exist())
    return payment


def load_payment(gateway: str, payment_id: str) -> Payment | None:
    try:
        return Payment.get(payment_key(gateway, payment_id), consistent_read=True)
    except DoesNotExist:
        return None


def apply_event(event: PaymentEvent) -> CreditResult:
    """Apply one verified event; safe to call any number of times, also concurrently."""
    return _apply_with_retries(event, _decide)


def flag_payment(event: PaymentEvent, flag: str) -> CreditResult:
    """Record `event` on its payment with `flag` for the operator; no money moves."""

    def decide(payment: Payment, event: PaymentEvent) -> Decision:
        if _seen(payment, event):
            return Decision(Outcome.DUPLICATE)
        return Decision(Outcome.FLAGGED, flags=[flag])

    return _apply_with_retries(event, decide)


# The read, decide, write loop.


def _apply_with_retries(event: PaymentEvent, decide: Decide) -> CreditResult:
    key = payment_key(event.gateway, event.payment_id)
    for attempt in range(MAX_APPLY_ATTEMPTS):
        payment, checkout = _load_for_event(key, event)
        decision = decide(payment, event)
        if decision.outcome is Outcome.DUPLICATE:
            return _finish_duplicate(payment, event)

        try:
            _store(payment, event, decision)
        except _LostRace:
            logger.debug(
                "payment_write_retried", extra={"payment": key, "event_id": event.event_id, "attempt": attempt + 1}
            )
            time.sleep(random.uniform(0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**attempt)))
            continue
        if checkout is not None:
            _mark_replaced(checkout, payment)
        return _finish(payment, event, decision)

    logger.error(
        "payment_write_conflicts", extra={"payment": key, "event_id": event.event_id, "attempts": MAX_APPLY_ATTEMPTS}
    )
    raise PaymentConflict(
        f"payment {key} kept changing during {MAX_APPLY_ATTEMPTS} attempts; deliver the callback again"
    )


def _load_for_event(key: str, event: PaymentEvent) -> tuple[Payment, Payment | None]:
    """Read the payment (a new item if none) and the checkout item it is newly linked to, if any."""
    try:
        payment = Payment.get(key, consistent_read=True)
    except DoesNotExist:
        moment = iso(now())
        payment = Payment(
            key,
            gateway=event.gateway,
            gateway_payment_id=event.payment_id,
            account_id=event.account_id,
            status="unknown",
            currency=event.currency or settings().currency,
            requested_micros=event.requested_micros or 0,
            created_at=moment,
            updated_at=moment,
        )
    if payment.checkout_id:
        return payment, None
    return payment, _link_checkout(payment, event)


def _link_checkout(payment: Payment, event: PaymentEvent) -> Payment | None:
    """Take the account and requested amount from our checkout record, not the gateway's metadata.

    Once money has moved, the account stays as it is, and a checkout of another account
    adds the account_mismatch flag. Returns the checkout item, or None.
    """
    checkout = _find_checkout(event)
    if checkout is None:
        return None
    payment.checkout_id = checkout.gateway_payment_id
    payment.requested_micros = checkout.requested_micros or payment.requested_micros
    if not payment.applied and checkout.account_id:
        payment.account_id = checkout.account_id
    elif checkout.account_id and checkout.account_id != payment.account_id:
        payment.flags = sorted({*payment.flags, "account_mismatch"})
    if payment.version is None:
        payment.created_at = checkout.created_at  # listed where the customer started it
    return checkout


def _find_checkout(event: PaymentEvent) -> Payment | None:
    for name in CHECKOUT_DETAIL_KEYS:
        checkout_id = event.details.get(name)
        if not checkout_id or checkout_id == event.payment_id:
            continue
        checkout = load_payment(event.gateway, str(checkout_id))
        if checkout is not None:
            return checkout
    return None


def _mark_replaced(checkout: Payment, payment: Payment) -> None:
    """Point the checkout item at the payment that now stands for it in listings; best effort."""
    try:
        checkout.update(actions=[Payment.replaced_by.set(payment.payment_key)], add_version_condition=False)
    except PynamoDBException as error:
        logger.warning(
            "payment_checkout_link_failed",
            extra={"payment": payment.payment_key, "checkout": checkout.payment_key, "error": str(error)},
        )


# Deciding what an event does to its payment. These functions change the item in memory
# only; _store writes it, and a lost race discards it.


def _decide(payment: Payment, event: PaymentEvent) -> Decision:
    if event.transition in RECORD_ONLY:
        return _decide_record(payment, event)

    flags = _context_flags(payment, event)
    if HOLD_FLAGS.intersection(flags):
        if _seen(payment, event):
            return Decision(Outcome.DUPLICATE)
        if not payment.applied:
            payment.status = "held"
        return Decision(Outcome.FLAGGED, flags=flags)

    if event.transition == Transition.COMPLETED:
        return _decide_completion(payment, event, flags)
    return _decide_adjustment(payment, event, flags)


def _decide_record(payment: Payment, event: PaymentEvent) -> Decision:
    if _seen(payment, event):
        return Decision(Outcome.DUPLICATE)
    if event.transition == Transition.UNHANDLED:
        return Decision(Outcome.FLAGGED, flags=["unhandled_event"])
    if not payment.applied:
        payment.status = event.transition.value
    return Decision(Outcome.RECORDED)


def _decide_completion(payment: Payment, event: PaymentEvent, flags: list[str]) -> Decision:
    """Credit the amount received, or only what a later, larger total adds to it."""
    received = event.amount_micros
    if received <= 0:
        return (
            Decision(Outcome.DUPLICATE)
            if _seen(payment, event)
            else Decision(Outcome.FLAGGED, flags=[*flags, "zero_amount"])
        )

    if CREDIT_KEY not in payment.applied:
        movement = Movement(CREDIT_KEY, received, Transition.COMPLETED)
    elif received > payment.received_micros:
        movement = Movement(f"{CREDIT_KEY}:{received}", received - payment.received_micros, Transition.COMPLETED)
    else:
        return Decision(Outcome.DUPLICATE)

    payment.received_micros = received
    payment.requested_micros = payment.requested_micros or event.requested_micros or 0
    movements = [movement, *_unlocked(payment, {movement.key})]
    payment.status = STATUS_AFTER[movements[-1].transition]
    return Decision(Outcome.APPLIED, movements, [*flags, *_amount_flags(payment, received)])


def _decide_adjustment(payment: Payment, event: PaymentEvent, flags: list[str]) -> Decision:
    """Debit a refund or reversal, or credit back a cancelled reversal, once each."""
    key = transition_key(event)
    if key in payment.applied or key in payment.deferred:
        return Decision(Outcome.DUPLICATE)
    amount = MONEY_SIGN[event.transition] * event.amount_micros
    if amount == 0:
        return (
            Decision(Outcome.DUPLICATE)
            if _seen(payment, event)
            else Decision(Outcome.FLAGGED, flags=[*flags, "zero_amount"])
        )

    if _requirement(key) not in payment.applied:
        payment.deferred = {**payment.deferred, key: amount}
        return Decision(Outcome.FLAGGED, flags=[*flags, WAITING_FLAGS[event.transition]])

    movements = [Movement(key, amount, event.transition), *_unlocked(payment, {key})]
    payment.status = STATUS_AFTER[movements[-1].transition]
    return Decision(Outcome.APPLIED, movements, flags)


def _requirement(key: str) -> str:
    """Return the transition key that must be applied before `key` can move money."""
    transition, _, sub_id = key.partition(":")
    if transition == Transition.REVERSAL_CANCELLED.value:
        return f"{Transition.REVERSED.value}:{sub_id}" if sub_id else Transition.REVERSED.value
    return CREDIT_KEY


def _unlocked(payment: Payment, new_keys: set[str]) -> list[Movement]:
    """Return the deferred transitions that `new_keys` make applicable, in dependency order."""
    applied = set(payment.applied) | new_keys
    movements: list[Movement] = []
    progress = True
    while progress:
        progress = False
        for key, amount in sorted(payment.deferred.items()):
            if key not in applied and _requirement(key) in applied:
                movements.append(Movement(key, amount, Transition(key.partition(":")[0])))
                applied.add(key)
                progress = True
    return movements


def _context_flags(payment: Payment, event: PaymentEvent) -> list[str]:
    flags: list[str] = []
    if event.currency.upper() != settings().currency:
        flags.append("currency_mismatch")
    if not payment.account_id or not _account_exists(payment.account_id):
        flags.append("unknown_account")
    elif event.account_id and event.account_id != payment.account_id:
        flags.append("account_mismatch")
    return flags


def _amount_flags(payment: Payment, received: int) -> list[str]:
    config = settings()
    flags: list[str] = []
    requested = payment.requested_micros
    if requested and received != requested:
        flags.append("underpaid" if received < requested else "overpaid")
    if not config.payment_min_micros <= received <= config.payment_max_micros:
        flags.append("outside_bounds")
    return flags


def _account_exists(account_id: str) -> bool:
    try:
        Account.get(account_id)
        return True
    except DoesNotExist:
        return False


def _seen(payment: Payment, event: PaymentEvent) -> bool:
    """Tell whether this event was already recorded on the payment (a redelivery)."""
    return any(
        entry.get("event_id") == event.event_id
        and entry.get("transition") == event.transition.value
        and entry.get("sub_id", "") == event.sub_id
        for entry in payment.events
    )


# Writing.


def _store(payment: Payment, event: PaymentEvent, decision: Decision) -> None:
    """Write the decided item, with the ledger lines and balance change when money moves.

    Raises _LostRace when another writer changed the item since it was read.
    """
    payment.updated_at = iso(now())
    payment.flags = _merged_flags(payment.flags, decision)
    payment.events = [*payment.events, _event_entry(event, decision)][-MAX_EVENT_HISTORY:]

    if not decision.movements:
        try:
            payment.save()
        except PutError as error:
            if error.cause_response_code in LOST_RACE_CODES:
                raise _LostRace from error
            raise
        return

    _post_movements(payment, decision.movements)


def _post_movements(payment: Payment, movements: list[Movement]) -> None:
    account_id = payment.account_id or ""
    keys = [movement.key for movement in movements]
    payment.applied = set(payment.applied) | set(keys)
    payment.amounts = {**payment.amounts, **{movement.key: movement.amount_micros for movement in movements}}
    payment.deferred = {key: amount for key, amount in payment.deferred.items() if key not in keys}

    moment = now()
    lines = [
        new_line(
            account_id,
            moment=moment,
            kind="payment" if movement.amount_micros > 0 else "refund",
            reference=f"{payment.payment_key}#{movement.key}",
            amount_micros=movement.amount_micros,
            description=_describe(payment, movement),
            batch="payment",
        )
        for movement in movements
    ]
    not_applied: Condition = functools.reduce(operator.and_, [~Payment.applied.contains(key) for key in keys])

    amounts = {movement.key: movement.amount_micros for movement in movements}

    def save_payment_and_audit(transaction: TransactWrite) -> None:
        # The audit records share the transaction that moves the money: both or neither.
        transaction.save(payment, condition=not_applied)
        audit.add_payment_events(transaction, payment.payment_key, account_id, amounts)

    try:
        result = post_lines(account_id, lines, extra_write=save_payment_and_audit)
    except TransactWriteError as error:
        if error.cause_response_code in LOST_RACE_CODES:
            raise _LostRace from error
        raise
    if not result.posted:
        # The lines exist already: another delivery wrote them with the guard.
        raise _LostRace


def _merged_flags(existing: list[str], decision: Decision) -> list[str]:
    flags = set(existing)
    if any(movement.transition == Transition.COMPLETED for movement in decision.movements):
        flags -= AMOUNT_FLAGS
    return sorted(flags | set(decision.flags))


def _event_entry(event: PaymentEvent, decision: Decision) -> dict[str, object]:
    entry: dict[str, object] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "transition": event.transition.value,
        "amount_micros": event.amount_micros,
        "currency": event.currency,
        "stored_at": iso(now()),
        "outcome": decision.outcome.value,
    }
    if event.sub_id:
        entry["sub_id"] = event.sub_id
    if decision.flags:
        entry["flags"] = sorted(decision.flags)
    reason = event.details.get("reason")
    if reason:
        entry["reason"] = str(reason)[:MAX_REASON_CHARS]
    return entry


def _describe(payment: Payment, movement: Movement) -> str:
    amount = f"{format_micros(abs(movement.amount_micros))} {settings().currency}"
    source = f"via {payment.gateway} ({payment.gateway_payment_id})"
    if movement.key.startswith(f"{CREDIT_KEY}:"):
        return f"Further payment received {source}, {amount}; {format_micros(payment.received_micros)} in total"
    verb = {
        Transition.COMPLETED: "Payment received",
        Transition.REFUNDED: "Payment refunded",
        Transition.REVERSED: "Payment reversed",
        Transition.REVERSAL_CANCELLED: "Payment reversal cancelled",
    }[movement.transition]
    return f"{verb} {source}, {amount}"


# After the write.


def _finish(payment: Payment, event: PaymentEvent, decision: Decision) -> CreditResult:
    flags = tuple(sorted(decision.flags))
    extra = {
        "account_id": payment.account_id,
        "payment": payment.payment_key,
        "event_id": event.event_id,
        "flags": list(flags),
    }

    if decision.outcome is not Outcome.APPLIED:
        if decision.outcome is Outcome.FLAGGED:
            logger.warning("payment_flagged", extra={**extra, "transition": event.transition.value})
            metrics.add_metric(name="PaymentsFlagged", unit="Count", value=1)
        else:
            logger.info("payment_recorded", extra={**extra, "transition": event.transition.value})
        return CreditResult(decision.outcome, payment.payment_key, 0, flags)

    for movement in decision.movements:
        name = "payment_credited" if movement.amount_micros > 0 else "payment_debited"
        logger.info(name, extra={**extra, "transition": movement.key, "amount_micros": movement.amount_micros})
    metrics.add_metric(name="PaymentsApplied", unit="Count", value=1)
    if flags:
        metrics.add_metric(name="PaymentsFlagged", unit="Count", value=1)

    total = sum(movement.amount_micros for movement in decision.movements)
    _follow_up(payment, credited=any(movement.amount_micros > 0 for movement in decision.movements))
    return CreditResult(Outcome.APPLIED, payment.payment_key, total, flags)


def _finish_duplicate(payment: Payment, event: PaymentEvent) -> CreditResult:
    """Return the result of a redelivery, finishing what a delivery that stopped after its write left undone."""
    logger.info(
        "payment_duplicate",
        extra={"payment": payment.payment_key, "event_id": event.event_id, "transition": event.transition.value},
    )
    credit_event = MONEY_SIGN.get(event.transition, 0) > 0
    _follow_up(payment, credited=credit_event and any(amount > 0 for amount in payment.amounts.values()))
    return CreditResult(Outcome.DUPLICATE, payment.payment_key)


def _follow_up(payment: Payment, *, credited: bool) -> None:
    """Send the "payment received" notices not sent yet, then lift suspensions after a credit."""
    send_receipts(payment)
    if credited and payment.account_id:
        from chalicelib.billing.lifecycle import on_credit

        on_credit(payment.account_id)
