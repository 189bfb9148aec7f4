"""Hourly VM billing against DynamoDB Local: each VM-hour charged exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import clock
from chalicelib.billing.planner import plan_hour
from chalicelib.clock import HOUR
from chalicelib.vms.service import delete_vm, get_vm
from tests.helpers import account_with_credit, assert_balance_matches_ledger, balance, charges, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
S1_PRICE = 7_500


def run(hour: datetime) -> None:
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


def test_hourly_run_charges_each_vm_once() -> None:
    account = account_with_credit("a@example.com", 20_000_000, T0)
    vm_at(account, T0 + timedelta(minutes=1))

    run(datetime(2026, 12, 4, 10, tzinfo=UTC))

    assert [line.amount_micros for line in charges(account.account_id)] == [-S1_PRICE]
    assert balance(account.account_id) == 20_000_000 - S1_PRICE
    assert_balance_matches_ledger(account.account_id)


def test_hourly_run_twice_for_same_hour_changes_nothing() -> None:
    account = account_with_credit("a@example.com", 20_000_000, T0)
    vm_at(account, T0 + timedelta(minutes=1))
    hour = datetime(2026, 12, 4, 10, tzinfo=UTC)

    run(hour)
    run(hour)

    assert len(charges(account.account_id)) == 1
    assert balance(account.account_id) == 20_000_000 - S1_PRICE


def test_missed_ticks_are_caught_up_by_next_run() -> None:
    account = account_with_credit("a@example.com", 20_000_000, T0)
    vm_at(account, T0 + timedelta(minutes=1))

    run(datetime(2026, 12, 4, 14, tzinfo=UTC))

    # Hours from 09:31 ending at 10:31, 11:31, 12:31, 13:31 and 14:31.
    assert len(charges(account.account_id)) == 5
    assert_balance_matches_ledger(account.account_id)


def test_delete_after_five_minutes_costs_one_hour() -> None:
    account = account_with_credit("a@example.com", 1_000_000, T0)
    vm = vm_at(account, T0)

    clock.set_time(T0 + timedelta(minutes=5))
    delete_vm(vm)
    run(datetime(2026, 12, 4, 10, tzinfo=UTC))

    assert [line.amount_micros for line in charges(account.account_id)] == [-S1_PRICE]
    assert get_vm(account.account_id, vm.vm_id).state == "deleted"
    assert_balance_matches_ledger(account.account_id)


def test_deletion_and_hourly_run_charge_overlapping_hour_once() -> None:
    account = account_with_credit("a@example.com", 20_000_000, T0)
    vm = vm_at(account, T0)
    hour = datetime(2026, 12, 4, 10, tzinfo=UTC)

    clock.set_time(T0 + timedelta(minutes=61))
    delete_vm(vm)
    run(hour)
    run(hour + HOUR)

    assert len(charges(account.account_id)) == 2
    assert balance(account.account_id) == 20_000_000 - 2 * S1_PRICE
    assert_balance_matches_ledger(account.account_id)


def test_vm_activated_after_cursor_passed_is_charged_at_activation() -> None:
    account = account_with_credit("a@example.com", 20_000_000, T0)
    run(datetime(2026, 12, 4, 12, tzinfo=UTC))
    vm = vm_at(account, T0 + timedelta(minutes=10))

    run(datetime(2026, 12, 4, 13, tzinfo=UTC))
    run(datetime(2026, 12, 4, 14, tzinfo=UTC))

    starts = [line.line_key[:20] for line in charges(account.account_id)]
    assert starts == [f"2026-12-04T{hour:02d}:40:00Z" for hour in range(9, 14)]
    assert vm.vm_id
    assert_balance_matches_ledger(account.account_id)
