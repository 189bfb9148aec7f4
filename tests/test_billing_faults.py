"""The hourly run under faults: a crash between any two writes, duplicate shard messages,
concurrent runs of one hour, a VM deleted while its shard is billed, and missed ticks.
After recovery the ledger equals a fault-free run's and every balance equals its ledger.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.billing import worker
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.billing.planner import ShardMessage, handle_shard_message, plan_hour
from chalicelib.billing.shards import shard_for, shard_names
from chalicelib.billing.worker import ShardIncomplete
from chalicelib.clock import HOUR, hour_key, iso
from chalicelib.models.accounts import Account
from chalicelib.models.base import connection
from chalicelib.models.statements import MAX_ATTEMPTS
from chalicelib.models.vms import Vm
from chalicelib.vms.service import delete_vm
from tests.faults import InjectedCrash, count_writes, fault_statements
from tests.helpers import account_with_credit, accounts_in_one_shard, assert_balance_matches_ledger, ledger, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 20, tzinfo=UTC)
HOUR_10 = datetime(2026, 12, 4, 10, tzinfo=UTC)


def build_accounts() -> list[str]:
    first = account_with_credit("one@example.com", 20_000_000, T0)
    second = account_with_credit("two@example.com", 20_000_000, T0)
    vm_at(first, T0, "s1", "a1")
    vm_at(first, T0 + timedelta(minutes=7), "m2", "a2")
    vm_at(second, T0 + timedelta(minutes=3), "l4", "b1")
    return [first.account_id, second.account_id]


def run_hour(hour: datetime) -> None:
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


def snapshot(account_ids: list[str]) -> list[tuple[list[tuple[str, int]], int]]:
    """Each account's ledger (VM ids replaced by VM names, which tests choose) and balance."""
    result = []
    for account_id in account_ids:
        names = {vm.vm_id: vm.name for vm in Vm.query(account_id)}
        lines = []
        for line in ledger(account_id):
            key = line.line_key
            for vm_id, name in names.items():
                key = key.replace(vm_id, name)
            lines.append((key, line.amount_micros))
        result.append((sorted(lines), Account.get(account_id, consistent_read=True).balance_micros))
    return result


def fault_free_result() -> tuple[list[tuple[list[tuple[str, int]], int]], int]:
    account_ids = build_accounts()
    with count_writes() as counter:
        run_hour(HOUR_10)
    return snapshot(account_ids), len(counter.writes)


def reset_tables() -> None:
    from chalicelib.catalog import invalidate
    from chalicelib.models import ALL_MODELS
    from tools.seed import seed_demo

    for model in ALL_MODELS:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    seed_demo()
    invalidate()


@pytest.mark.parametrize("after_commit", [True, False], ids=["after-commit", "before-send"])
def test_crash_between_any_two_writes_recovers_identically(after_commit: bool) -> None:
    expected, write_count = fault_free_result()
    assert write_count >= 4

    for crash_at in range(1, write_count + 1):
        reset_tables()
        account_ids = build_accounts()
        with count_writes(crash_at=crash_at, after_commit=after_commit), pytest.raises(InjectedCrash):
            run_hour(HOUR_10)

        run_hour(HOUR_10)

        assert snapshot(account_ids) == expected, f"crash at write {crash_at}"
        for account_id in account_ids:
            assert_balance_matches_ledger(account_id)


@pytest.mark.parametrize("executed", [False, True], ids=["not-run", "run-but-unanswered"])
@pytest.mark.parametrize("count", [2, 10 * MAX_ATTEMPTS], ids=["retried", "always"])
def test_throttled_statements_bill_like_fault_free_run(count: int, executed: bool) -> None:
    expected, _ = fault_free_result()
    reset_tables()
    account_ids = build_accounts()

    with fault_statements(count, executed=executed) as faults:
        run_hour(HOUR_10)

    assert faults.faulted
    assert snapshot(account_ids) == expected
    for account_id in account_ids:
        assert_balance_matches_ledger(account_id)


def test_shard_accounts_share_write_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "ACCOUNT_THREADS", 1)
    accounts = accounts_in_one_shard(3, 20_000_000, T0)
    for account in accounts:
        vm_at(account, T0, "s1", "a1")
        vm_at(account, T0 + timedelta(minutes=7), "m2", "a2")
    clock.set_time(HOUR_10 + HOUR + timedelta(minutes=5))

    with count_writes() as counter:
        worker.bill_shard(shard_for(accounts[0].account_id), HOUR_10)

    assert counter.writes == ["BatchExecuteStatement", "BatchExecuteStatement"]  # six lines, then three cursors
    for account in accounts:
        assert sum(1 for line in ledger(account.account_id) if line.kind == "vm") == 2
        assert_balance_matches_ledger(account.account_id)


def test_duplicate_shard_messages_charge_once() -> None:
    account_ids = build_accounts()
    clock.set_time(HOUR_10 + HOUR + timedelta(minutes=5))
    messages = [ShardMessage(hour_key(HOUR_10), shard) for shard in shard_names()]

    for message in messages + messages:
        handle_shard_message(message)

    assert sum(1 for line in ledger(account_ids[0]) if line.kind == "vm") == 2
    assert sum(1 for line in ledger(account_ids[1]) if line.kind == "vm") == 1
    for account_id in account_ids:
        assert_balance_matches_ledger(account_id)


def test_concurrent_runs_of_one_hour_charge_once() -> None:
    expected, _ = fault_free_result()
    reset_tables()
    account_ids = build_accounts()
    clock.set_time(HOUR_10 + HOUR + timedelta(minutes=5))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            plan_hour(HOUR_10)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert snapshot(account_ids) == expected


def test_vm_deleted_while_shard_is_billed_charges_each_hour_once() -> None:
    account = account_with_credit("one@example.com", 20_000_000, T0)
    vm = vm_at(account, T0)
    clock.set_time(HOUR_10 + HOUR + timedelta(minutes=5))
    deleter = threading.Thread(target=delete_vm, args=(vm,))

    deleter.start()
    plan_hour(HOUR_10)
    deleter.join()
    run_hour(HOUR_10 + HOUR)

    vm_lines = [line for line in ledger(account.account_id) if line.kind == "vm"]
    assert len(vm_lines) == 2  # 09:20-10:20 and the partial hour from 10:20 until 11:05
    assert len({line.line_key for line in vm_lines}) == 2
    assert_balance_matches_ledger(account.account_id)


def test_missed_ticks_bill_the_same_as_every_tick() -> None:
    account_ids = build_accounts()
    for offset in range(4):
        run_hour(HOUR_10 + offset * HOUR)
    every_tick = snapshot(account_ids)

    reset_tables()
    account_ids = build_accounts()
    run_hour(HOUR_10 + 3 * HOUR)

    caught_up = snapshot(account_ids)
    assert [lines for lines, _ in caught_up] == [lines for lines, _ in every_tick]


def test_failing_account_does_not_block_others() -> None:
    from chalicelib.billing.worker import ShardIncomplete

    healthy = account_with_credit("healthy@example.com", 20_000_000, T0)
    poisoned = account_with_credit("poisoned@example.com", 20_000_000, T0)
    vm_at(healthy, T0, "s1", "ok")
    broken = vm_at(poisoned, T0, "s1", "broken")
    Vm(poisoned.account_id, broken.vm_id).update(
        actions=[Vm.plan_history.set([{"plan": "retired", "at": broken.started_at, "price_from": broken.started_at}])]
    )

    with pytest.raises(ShardIncomplete):
        run_hour(HOUR_10)

    assert [line.kind for line in ledger(healthy.account_id) if line.kind == "vm"] == ["vm"]
    assert [line.kind for line in ledger(poisoned.account_id) if line.kind == "vm"] == []
    assert_balance_matches_ledger(healthy.account_id)
    assert_balance_matches_ledger(poisoned.account_id)


def test_cursor_move_without_returned_item_reads_account() -> None:
    account = account_with_credit("low@example.com", 1_100_000, T0)  # less than a week of s1
    vm_at(account, T0, "s1", "a1")

    def drop_items(parsed: dict[str, Any], **_: Any) -> None:
        for response in parsed.get("Responses", []):
            response.pop("Item", None)

    client = connection().client
    client.meta.events.register("after-call.dynamodb.BatchExecuteStatement", drop_items)
    try:
        run_hour(HOUR_10)
    finally:
        client.meta.events.unregister("after-call.dynamodb.BatchExecuteStatement", drop_items)

    stored = Account.get(account.account_id, consistent_read=True)
    assert stored.billed_through == hour_key(HOUR_10)
    assert stored.low_credit_notices == 1
    assert_balance_matches_ledger(account.account_id)


def test_account_failing_cursor_move_spares_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "ACCOUNT_THREADS", 1)
    accounts = accounts_in_one_shard(3, 20_000_000, T0)
    for account in accounts:
        vm_at(account, T0, "s1", "a1")
    poisoned = accounts[1]
    connection().client.update_item(  # a usage map no billing code can add to
        TableName=Account.Meta.table_name,
        Key={"account_id": {"S": poisoned.account_id}},
        UpdateExpression="SET bandwidth_used = :usage",
        ExpressionAttributeValues={":usage": {"S": '{"demo|2026-12":"x"}'}},
    )

    with pytest.raises(ShardIncomplete, match="1 accounts failed"):
        run_hour(HOUR_10)

    for account in accounts:
        stored = Account.get(account.account_id, consistent_read=True)
        expected_cursor = poisoned.billed_through if account is poisoned else hour_key(HOUR_10)
        assert stored.billed_through == expected_cursor
    for account in (accounts[0], accounts[2]):
        assert_balance_matches_ledger(account.account_id)


@contextmanager
def credit_after_cursor_moves(account_id: str, amount: int) -> Iterator[None]:
    """Post a credit once, right after the first batch of cursor moves returns, as a payment
    that lands while the rest of the shard is billed."""
    posted: list[bool] = []

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        statements = json.loads(params["body"])["Statements"]
        context[CURSOR_BATCH] = statements[0]["Statement"].startswith("UPDATE")

    def after(context: dict[str, Any], **_: Any) -> None:
        if context.get(CURSOR_BATCH) and not posted:
            posted.append(True)
            adjust_credit(account_id, amount, "Payment during billing", "during-billing")

    client = connection().client
    client.meta.events.register("before-call.dynamodb.BatchExecuteStatement", before)
    client.meta.events.register("after-call.dynamodb.BatchExecuteStatement", after)
    try:
        yield
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchExecuteStatement", before)
        client.meta.events.unregister("after-call.dynamodb.BatchExecuteStatement", after)
    assert posted, "no batch of cursor moves was sent"


CURSOR_BATCH = "lobster_cursor_batch"


def account_in_arrears(debt: int, notices: int) -> Account:
    """An account with one s1 VM, `debt` micro-units below zero and `notices` notices sent."""
    account = account_with_credit("arrears@example.com", 20_000_000, T0)
    vm_at(account, T0, "s1", "a1")
    adjust_credit(account.account_id, -20_000_000 - debt, "Usage before the move", "opening-debt")
    Account(account.account_id).update(actions=[Account.low_credit_notices.set(notices), Account.last_notice_at.set(iso(T0))])
    return account


def test_payment_during_billing_prevents_termination() -> None:
    account = account_in_arrears(debt=2_000_000, notices=10)

    with credit_after_cursor_moves(account.account_id, 50_000_000):
        run_hour(HOUR_10)

    assert [vm.state for vm in Vm.query(account.account_id)] == ["active"]
    assert Account.get(account.account_id, consistent_read=True).balance_micros > 0
    assert_balance_matches_ledger(account.account_id)


def test_payment_during_billing_prevents_suspension() -> None:
    account = account_in_arrears(debt=500_000, notices=5)

    with credit_after_cursor_moves(account.account_id, 10_000_000):
        run_hour(HOUR_10)

    assert [vm.suspended for vm in Vm.query(account.account_id)] == ["no"]
    assert_balance_matches_ledger(account.account_id)


def test_debt_without_payment_still_suspends() -> None:
    account = account_in_arrears(debt=500_000, notices=5)

    run_hour(HOUR_10)

    assert [vm.suspended for vm in Vm.query(account.account_id)] == ["auto"]


def test_crash_after_cursor_moves_still_sends_notice() -> None:
    account = account_with_credit("low@example.com", 1_100_000, T0)  # less than a week of s1
    vm_at(account, T0, "s1", "a1")

    with count_writes(crash_at=3, after_commit=True) as counter, pytest.raises(InjectedCrash):
        run_hour(HOUR_10)
    run_hour(HOUR_10)

    assert counter.writes == ["PutItem", "BatchExecuteStatement", "BatchExecuteStatement"]  # run record, lines, cursor
    assert Account.get(account.account_id, consistent_read=True).low_credit_notices == 1
    assert_balance_matches_ledger(account.account_id)


def test_lost_cursor_move_response_still_sends_notice() -> None:
    account = account_with_credit("low@example.com", 1_100_000, T0)
    vm_at(account, T0, "s1", "a1")

    with fault_statements(1, code="InternalServerError", executed=True, verb="UPDATE") as faults:
        run_hour(HOUR_10)

    assert len(faults.faulted) == 1
    assert Account.get(account.account_id, consistent_read=True).low_credit_notices == 1
    assert_balance_matches_ledger(account.account_id)
