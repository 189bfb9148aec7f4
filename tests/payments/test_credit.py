"""apply_event on DynamoDB Local: each (payment, transition) moves money once, and is audited
once, whatever the order, repetition or concurrency of events, and no write overwrites another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.accounts.service import sign_up
from chalicelib.models.audit import AuditEvent
from chalicelib.models.base import connection
from chalicelib.models.payments import Payment
from chalicelib.notify.sender import outbox
from chalicelib.payments.base import PaymentEvent, Transition
from chalicelib.payments.credit import Outcome, PaymentConflict, apply_event, flag_payment, record_checkout
from tests.helpers import assert_balance_matches_ledger, balance
from tests.payments.harness import PASSWORD, payment_item, payment_lines

pytestmark = pytest.mark.usefixtures("db", "clock")

OCCURRED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def account_id() -> str:
    created = sign_up("credit@example.com", PASSWORD)
    outbox.clear()
    return created.account_id


def event(
    account_id: str | None, transition: Transition = Transition.COMPLETED, amount: int = 20_000_000, **fields: Any
) -> PaymentEvent:
    values: dict[str, Any] = {
        "gateway": "stripe",
        "payment_id": "pi_1",
        "transition": transition,
        "amount_micros": amount,
        "currency": "USD",
        "event_id": f"evt_{transition.value}_{amount}",
        "event_type": "test.event",
        "occurred_at": OCCURRED,
        "account_id": account_id,
    }
    values.update(fields)
    return PaymentEvent(**values)


def amounts(account_id: str) -> list[int]:
    return sorted(line.amount_micros for line in payment_lines(account_id))


@contextmanager
def concurrent_writer(times: int | None = 1) -> Iterator[list[int]]:
    """Change the payment item right before each of the next `times` ledger transactions (None: all)."""
    client = connection().client
    changes: list[int] = []

    def before(**_: Any) -> None:
        if times is not None and len(changes) >= times:
            return
        stored = Payment.get("stripe#pi_1", consistent_read=True)
        stored.update(actions=[Payment.notified.add({f"other-writer-{len(changes)}"})])
        changes.append(1)

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", before)
    try:
        yield changes
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", before)


def test_concurrent_events_credit_once(account_id: str) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: apply_event(event(account_id)), range(20)))

    assert sorted(result.outcome for result in results) == [Outcome.APPLIED] + [Outcome.DUPLICATE] * 19
    assert balance(account_id) == 20_000_000
    assert amounts(account_id) == [20_000_000]
    assert [notice.template for notice in outbox] == ["payment_received"]


def test_concurrent_events_leave_one_audit_record(account_id: str) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: apply_event(event(account_id)), range(8)))

    records = [record for record in AuditEvent.scan(consistent_read=True) if record.action == "payment.credited"]
    assert len(records) == 1
    assert records[0].target == f"account:{account_id}"
    assert records[0].details["amount_micros"] == 20_000_000


def test_write_after_concurrent_change_retries_and_keeps_it(account_id: str) -> None:
    record_checkout("stripe", "pi_1", account_id, 20_000_000)

    with concurrent_writer(times=1) as changes:
        result = apply_event(event(account_id))

    assert result.outcome == Outcome.APPLIED
    assert changes == [1]
    stored = payment_item("stripe", "pi_1")
    assert "other-writer-0" in stored.notified
    assert stored.applied == {"credit"}
    assert balance(account_id) == 20_000_000


def test_endless_concurrent_changes_end_in_conflict(account_id: str) -> None:
    record_checkout("stripe", "pi_1", account_id, 20_000_000)

    with concurrent_writer(times=None), pytest.raises(PaymentConflict) as raised:
        apply_event(event(account_id))

    assert raised.value.status == 503
    assert balance(account_id) == 0
    assert payment_lines(account_id) == []


def test_larger_total_credits_difference_keyed_on_total(account_id: str) -> None:
    totals = [20_000_000, 25_000_000, 25_000_000, 30_000_000, 20_000_000]

    outcomes = [apply_event(event(account_id, amount=total)).outcome for total in totals]

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED, Outcome.DUPLICATE]
    assert amounts(account_id) == [5_000_000, 5_000_000, 20_000_000]
    assert payment_item("stripe", "pi_1").applied == {"credit", "credit:25000000", "credit:30000000"}
    assert_balance_matches_ledger(account_id)


def test_cancelled_reversal_needs_reversal_with_same_sub_id(account_id: str) -> None:
    apply_event(event(account_id))
    apply_event(event(account_id, Transition.REVERSED, 20_000_000, sub_id="dp_1"))

    other = apply_event(event(account_id, Transition.REVERSAL_CANCELLED, 20_000_000, sub_id="dp_2"))
    same = apply_event(event(account_id, Transition.REVERSAL_CANCELLED, 20_000_000, sub_id="dp_1", event_id="evt_back"))

    assert other.outcome == Outcome.FLAGGED
    assert same.outcome == Outcome.APPLIED
    assert balance(account_id) == 20_000_000
    assert "reversal_cancelled_before_reversal" in payment_item("stripe", "pi_1").flags


def test_refund_before_credit_waits_and_applies_with_it(account_id: str) -> None:
    refund = apply_event(event(account_id, Transition.REFUNDED, 5_000_000, sub_id="re_1"))
    assert refund.outcome == Outcome.FLAGGED
    assert balance(account_id) == 0

    credit = apply_event(event(account_id))
    again = apply_event(event(account_id, Transition.REFUNDED, 5_000_000, sub_id="re_1", event_id="evt_again"))

    assert (credit.outcome, credit.amount_micros) == (Outcome.APPLIED, 15_000_000)
    assert again.outcome == Outcome.DUPLICATE
    assert amounts(account_id) == [-5_000_000, 20_000_000]
    stored = payment_item("stripe", "pi_1")
    assert stored.deferred == {}
    assert stored.status == "refunded"


def test_pending_after_completed_keeps_status(account_id: str) -> None:
    apply_event(event(account_id))

    late = apply_event(event(account_id, Transition.PENDING, event_id="evt_late_pending"))

    assert late.outcome == Outcome.RECORDED
    assert payment_item("stripe", "pi_1").status == "completed"
    assert balance(account_id) == 20_000_000


def test_unknown_account_is_held_for_operator(account_id: str) -> None:
    result = apply_event(event("acct_missing"))

    assert result.outcome == Outcome.FLAGGED
    stored = payment_item("stripe", "pi_1")
    assert (stored.status, stored.flags) == ("held", ["unknown_account"])
    assert balance(account_id) == 0


def test_checkout_record_supplies_account_and_requested_amount(account_id: str) -> None:
    record_checkout("stripe", "cs_1", account_id, 25_000_000)

    result = apply_event(event(None, details={"checkout_session_id": "cs_1"}))

    assert result.outcome == Outcome.APPLIED
    assert result.flags == ("underpaid",)
    stored = payment_item("stripe", "pi_1")
    assert (stored.account_id, stored.requested_micros, stored.checkout_id) == (account_id, 25_000_000, "cs_1")
    assert payment_item("stripe", "cs_1").replaced_by == "stripe#pi_1"


def test_flag_payment_is_recorded_once(account_id: str) -> None:
    apply_event(event(account_id))
    listed = replace(event(account_id, amount=25_000_000), event_id="list:pi_1")

    first = flag_payment(listed, "reconciliation_amount_differs")
    second = flag_payment(listed, "reconciliation_amount_differs")

    assert (first.outcome, second.outcome) == (Outcome.FLAGGED, Outcome.DUPLICATE)
    stored = payment_item("stripe", "pi_1")
    assert "reconciliation_amount_differs" in stored.flags
    assert [entry["event_id"] for entry in stored.events] == ["evt_completed_20000000", "list:pi_1"]
    assert balance(account_id) == 20_000_000


def test_zero_amount_completion_moves_nothing(account_id: str) -> None:
    result = apply_event(event(account_id, amount=0))

    assert result.outcome == Outcome.FLAGGED
    assert "zero_amount" in result.flags
    assert payment_lines(account_id) == []


def test_checkout_of_other_account_after_credit_is_flagged(account_id: str) -> None:
    other_id = sign_up("other@example.com", PASSWORD).account_id
    record_checkout("stripe", "cs_2", other_id, 20_000_000)
    apply_event(event(account_id))

    late = apply_event(
        event(account_id, Transition.PENDING, event_id="evt_linked", details={"checkout_session_id": "cs_2"})
    )

    assert late.outcome == Outcome.RECORDED
    stored = payment_item("stripe", "pi_1")
    assert stored.account_id == account_id
    assert stored.checkout_id == "cs_2"
    assert "account_mismatch" in stored.flags
    assert balance(other_id) == 0
