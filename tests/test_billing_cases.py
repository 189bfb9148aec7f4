"""The billing cases from real failures, each with its exact expected value."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib import clock
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.billing.allocation import GIB
from chalicelib.billing.planner import plan_hour, plan_rollover
from chalicelib.clock import HOUR, iso, previous_month_start
from chalicelib.errors import InsufficientCredit
from chalicelib.models.accounts import Account
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
from chalicelib.notify.sender import outbox
from chalicelib.payments.service import start_payment
from chalicelib.vms.service import delete_vm, resize_vm
from tests.faults import InjectedCrash, count_writes
from tests.helpers import (
    account_with_credit,
    add_image,
    add_plan,
    assert_balance_matches_ledger,
    balance,
    charges,
    ledger,
    vm_at,
)

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

S1 = 7_500


def run_hour(hour: datetime) -> None:
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


def test_c1_write_committed_then_retried_charges_once() -> None:
    start = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    account = account_with_credit("c1@example.com", 20_000_000, start)
    vm_at(account, start)
    hour = datetime(2024, 3, 1, 10, tzinfo=UTC)

    with count_writes(crash_at=1, after_commit=True), pytest.raises(InjectedCrash):
        run_hour(hour)
    run_hour(hour)
    run_hour(hour + HOUR)

    vm_lines = [line.amount_micros for line in charges(account.account_id) if line.line_key.startswith("2024-03-01T09:30")]
    assert vm_lines == [-S1]
    assert_balance_matches_ledger(account.account_id)


def test_c2_schedule_fires_twice_bills_hour_once() -> None:
    start = datetime(2024, 3, 1, 9, tzinfo=UTC)
    account = account_with_credit("c2@example.com", 20_000_000, start)
    for name in ("a", "b", "c"):
        vm_at(account, start, "s1", name)
    add_image(account, 10 * 10**9, start)
    run_hour(datetime(2024, 3, 1, 9, tzinfo=UTC))
    before = balance(account.account_id)

    run_hour(datetime(2024, 3, 1, 10, tzinfo=UTC))
    run_hour(datetime(2024, 3, 1, 10, tzinfo=UTC))
    run_hour(datetime(2024, 3, 1, 10, tzinfo=UTC))

    assert before - balance(account.account_id) == 3 * 7_500 + 555 == 23_055
    assert_balance_matches_ledger(account.account_id)


def test_m2_storage_below_a_micro_unit_is_exact() -> None:
    start = datetime(2024, 4, 1, tzinfo=UTC)
    small = account_with_credit("small@example.com", 20_000_000, start)
    large = account_with_credit("large@example.com", 100_000_000, start)
    add_image(small, 10**10, start)
    add_image(large, 10**12, start)

    run_hour(start)
    assert [line.amount_micros for line in charges(small.account_id, "storage")] == [-555]

    run_hour(start + 729 * HOUR)
    storage = charges(large.account_id, "storage")
    assert len(storage) == 730
    assert sum(line.amount_micros for line in storage) == -40_515_000


@pytest.mark.parametrize("value", [7500.0, Decimal(0.0075), Decimal("7500.0"), True])
def test_m3_non_integer_money_never_reaches_dynamodb(value: object) -> None:
    line = LedgerLine("acct_x", "2024-01-01T00:00:00Z#test#x", amount_micros=value, kind="test", description="x", created_at="x", batch="x")
    with pytest.raises(TypeError):
        line.save()
    assert LedgerLine.count("acct_x") == 0


def test_m3_hundred_debits_total_exactly() -> None:
    account = account_with_credit("m3@example.com", 20_000_000, datetime(2024, 1, 1, tzinfo=UTC))

    for index in range(100):
        adjust_credit(account.account_id, -7_500, "Debit", f"debit-{index}")

    assert balance(account.account_id) == 20_000_000 - 750_000
    assert_balance_matches_ledger(account.account_id)


def test_d1_last_month_from_march_31_is_february() -> None:
    assert previous_month_start(datetime(2024, 3, 31, 12, tzinfo=UTC)) == datetime(2024, 2, 1, tzinfo=UTC)


def test_d1_billing_continues_across_month_end() -> None:
    start = datetime(2024, 1, 31, 20, tzinfo=UTC)
    account = account_with_credit("d1@example.com", 20_000_000, start)
    vm_at(account, start)

    for offset in range(8):
        run_hour(start + offset * HOUR)

    starts = [line.line_key[:13] for line in charges(account.account_id)]
    assert starts == [iso(start + index * HOUR)[:13] for index in range(8)]


@pytest.mark.parametrize(
    ("local_start", "local_end", "hours"),
    [
        (datetime(2024, 11, 2, 16, tzinfo=UTC), datetime(2024, 11, 4, 17, tzinfo=UTC), 49),
        (datetime(2024, 3, 9, 17, tzinfo=UTC), datetime(2024, 3, 11, 16, tzinfo=UTC), 47),
    ],
    ids=["autumn-back", "spring-forward"],
)
def test_d2_daylight_saving_does_not_exist_in_utc(local_start: datetime, local_end: datetime, hours: int) -> None:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/Toronto"
    time.tzset()
    try:
        account = account_with_credit("d2@example.com", 20_000_000, local_start)
        vm = vm_at(account, local_start)
        run_hour(local_end - 2 * HOUR)
        clock.set_time(local_end)
        delete_vm(Vm.get(account.account_id, vm.vm_id))
    finally:
        os.environ.pop("TZ") if previous is None else os.environ.__setitem__("TZ", previous)
        time.tzset()

    lines = charges(account.account_id)
    assert len(lines) == hours
    assert len({line.line_key for line in lines}) == hours
    assert -sum(line.amount_micros for line in lines) == hours * S1


def test_w1_late_upgrade_does_not_buy_a_whole_month() -> None:
    add_plan("big", "0.06", 8000)
    start = datetime(2023, 12, 15, tzinfo=UTC)
    account = account_with_credit("w1@example.com", 100_000_000, start)
    vm = vm_at(account, start)
    run_hour(datetime(2024, 1, 31, 11, tzinfo=UTC))
    clock.set_time(datetime(2024, 1, 31, 12, tzinfo=UTC))
    resize_vm(Vm.get(account.account_id, vm.vm_id), "big")
    run_hour(datetime(2024, 1, 31, 23, tzinfo=UTC))
    Account(account.account_id).update(actions=[Account.bandwidth_used.set({"demo|2024-01": 1200 * GIB})])

    clock.set_time(datetime(2024, 2, 1, 0, 15, tzinfo=UTC))
    plan_rollover(datetime(2024, 1, 1, tzinfo=UTC))
    plan_rollover(datetime(2024, 1, 1, tzinfo=UTC))

    overage = charges(account.account_id, "bandwidth")
    assert [line.amount_micros for line in overage] == [-261_000]
    assert Account.get(account.account_id).bandwidth_billed_gib == {"demo|2024-01": 87}
    assert_balance_matches_ledger(account.account_id)


def test_l1_any_credit_lifts_automatic_suspension_only() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    account = account_with_credit("l1@example.com", 1_000_000, start)
    vms = [vm_at(account, start, "s1", name) for name in ("a", "b", "c")]
    adjust_credit(account.account_id, -1_200_000, "Usage before the move", "opening-debt")
    for vm, mode in zip(vms, ("auto", "auto", "manual"), strict=True):
        Vm(account.account_id, vm.vm_id).update(actions=[Vm.suspended.set(mode)])
    outbox.clear()

    adjust_credit(account.account_id, 10_000_000, "Goodwill credit", "goodwill")

    assert balance(account.account_id) == 9_800_000
    states = {vm.name: vm.suspended for vm in Vm.query(account.account_id)}
    assert states == {"a": "no", "b": "no", "c": "manual"}
    assert [notice.template for notice in outbox] == ["unsuspended", "unsuspended"]


def test_l1_payment_lifts_automatic_suspension() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    account = account_with_credit("l1p@example.com", 1_000_000, start)
    vm = vm_at(account, start)
    adjust_credit(account.account_id, -1_200_000, "Usage", "debt")
    Vm(account.account_id, vm.vm_id).update(actions=[Vm.suspended.set("auto")])

    start_payment(Account.get(account.account_id), "demo", 10_000_000, "/")

    assert Vm.get(account.account_id, vm.vm_id).suspended == "no"


def test_l2_tiny_balances_and_minimum_hour() -> None:
    add_plan("tiny", "0.10", 100)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    poor = account_with_credit("poor@example.com", 500_000, start)
    with pytest.raises(InsufficientCredit, match="1.00"):
        vm_at(poor, start, "tiny")

    enough = account_with_credit("enough@example.com", 1_000_000, start)
    vm = vm_at(enough, start, "tiny")
    clock.set_time(start + timedelta(minutes=5))
    delete_vm(Vm.get(enough.account_id, vm.vm_id))

    assert [line.amount_micros for line in charges(enough.account_id)] == [-100_000]
    assert Vm.count(poor.account_id) == 0


def test_notices_suspension_and_termination_happen_once_per_step() -> None:
    start = datetime(2024, 7, 1, tzinfo=UTC)
    account = account_with_credit("late@example.com", 1_000_000, start)
    vm_at(account, start)
    outbox.clear()

    for day in range(14):
        for _ in range(2):
            run_hour(start + (24 * day + 23) * HOUR)

    templates = [notice.template for notice in outbox]
    assert templates.count("suspended") == 1
    assert templates.count("terminated") == 1
    assert templates.index("suspended") > 4
    low_credit_days = templates[: templates.index("suspended")]
    assert low_credit_days == ["low_credit"] * len(low_credit_days)
    assert all(vm.state == "deleted" for vm in Vm.query(account.account_id))
    assert_balance_matches_ledger(account.account_id)
    assert ledger(account.account_id)
