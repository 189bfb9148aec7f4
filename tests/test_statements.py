"""Conditional writes sent as PartiQL statements in BatchExecuteStatement, against DynamoDB Local:
each statement's own condition, the attributes it returns, batches past the 25-statement limit, and
statements that fail with a throttling error.
"""

from __future__ import annotations

import pytest

from chalicelib.models import statements
from chalicelib.models.accounts import Account
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.statements import MAX_ATTEMPTS, MAX_STATEMENTS, Result
from tests.faults import fault_statements

pytestmark = pytest.mark.usefixtures("db")


def line(number: int, amount: int = -7_500) -> LedgerLine:
    return LedgerLine(
        "acct_statements",
        f"2026-12-04T10:00:00Z#vm#vm{number:03d}",
        amount_micros=amount,
        kind="vm",
        description=f"VM web{number}, hour from 2026-12-04T10:00:00Z",
        created_at="2026-12-04T11:05:00Z",
        batch="hourly",
        period="2026-12-04T10",
    )


def account(account_id: str = "acct_statements", balance: int = 1_000_000) -> Account:
    item = Account(
        account_id,
        email=f"{account_id}@example.com",
        created_at="2026-12-01T00:00:00Z",
        balance_micros=balance,
        vm_limit=5,
        billing_shard="s0000",
        billed_through="2026-12-04T09",
    )
    item.save()
    return item


def move_cursor(account_id: str, expected: str, amount: int = -7_500) -> statements.Statement:
    return statements.update(
        Account,
        key={"account_id": account_id},
        assignments={"billed_through": "2026-12-04T10", "meters": {"vm001": 1234}},
        increments={"balance_micros": amount},
        expected={"billed_through": expected},
    )


def test_insert_rejects_existing_key() -> None:
    first = statements.execute([statements.insert(line(1))])
    again = statements.execute([statements.insert(line(1, amount=-1))])

    assert [outcome.result for outcome in first] == [Result.APPLIED]
    assert [outcome.result for outcome in again] == [Result.CONDITION_FAILED]
    assert LedgerLine.get("acct_statements", line(1).line_key).amount_micros == -7_500


def test_update_applies_only_when_condition_matches() -> None:
    account()

    stale = statements.execute([move_cursor("acct_statements", "2026-12-04T08")])
    current = statements.execute([move_cursor("acct_statements", "2026-12-04T09")])

    assert stale[0].result is Result.CONDITION_FAILED
    assert current[0].result is Result.APPLIED
    stored = Account.get("acct_statements", consistent_read=True)
    assert (stored.billed_through, stored.balance_micros, stored.meters) == ("2026-12-04T10", 992_500, {"vm001": 1234})


def test_update_returns_changed_attributes() -> None:
    account()

    [outcome] = statements.execute([move_cursor("acct_statements", "2026-12-04T09")])

    assert outcome.item is not None
    assert set(outcome.item) == {"billed_through", "balance_micros", "meters"}
    assert outcome.item["balance_micros"] == {"N": "992500"}


def test_update_of_missing_item_creates_nothing() -> None:
    [outcome] = statements.execute([move_cursor("acct_missing", "2026-12-04T09")])

    assert outcome.result is Result.CONDITION_FAILED
    assert Account.count("acct_missing") == 0


def test_long_statement_list_split_into_batches() -> None:
    lines = [line(number) for number in range(MAX_STATEMENTS + 5)]

    outcomes = statements.execute([statements.insert(item) for item in lines])

    assert [outcome.result for outcome in outcomes] == [Result.APPLIED] * len(lines)
    assert LedgerLine.count("acct_statements") == len(lines)


def test_throttled_statements_sent_again() -> None:
    lines = [line(number) for number in range(6)]

    with fault_statements(3) as faults:
        outcomes = statements.execute([statements.insert(item) for item in lines])

    assert len(faults.faulted) == 3
    assert [outcome.result for outcome in outcomes] == [Result.APPLIED] * 6
    assert LedgerLine.count("acct_statements") == 6


def test_always_throttled_statement_fails() -> None:
    with fault_statements(MAX_ATTEMPTS) as faults:
        [outcome] = statements.execute([statements.insert(line(1))])

    assert len(faults.faulted) == MAX_ATTEMPTS
    assert outcome.result is Result.FAILED
    assert outcome.error is not None and outcome.error.startswith("ThrottlingError")
    assert LedgerLine.count("acct_statements") == 0


def test_validation_error_fails_without_retry() -> None:
    with fault_statements(1, code="ValidationError") as faults:
        outcomes = statements.execute([statements.insert(line(1)), statements.insert(line(2))])

    assert len(faults.faulted) == 1
    assert [outcome.result for outcome in outcomes] == [Result.FAILED, Result.APPLIED]
