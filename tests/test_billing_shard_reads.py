"""The hourly worker's shard-wide reads and its account threads.

Accounts are read by BatchGetItem and changed before the cursor moves, and demo traffic
counters are read in one batch. One account fails or crashes while other accounts of the
same shard are billed on other threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.backends.demo import DemoBackend
from chalicelib.billing.planner import plan_hour
from chalicelib.billing.prefetch import read_accounts, read_traffic_batches
from chalicelib.billing.shards import shard_for
from chalicelib.billing.worker import ShardIncomplete, bill_account, bill_shard, collect_shard, run_isolated
from chalicelib.catalog import invalidate, load_catalog
from chalicelib.clock import HOUR
from chalicelib.models import ALL_MODELS
from chalicelib.models.accounts import Account
from chalicelib.models.base import connection
from chalicelib.models.catalog import CatalogItem
from chalicelib.models.vms import Vm
from tests.faults import InjectedCrash
from tests.helpers import account_with_credit, accounts_in_one_shard, assert_balance_matches_ledger, charges, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 20, tzinfo=UTC)
HOUR_10 = datetime(2026, 12, 4, 10, tzinfo=UTC)
S1_PRICE = 7_500
CREDIT = 20_000_000


def run_at(hour: datetime) -> datetime:
    """Return when the schedule bills `hour`: five minutes after the next hour begins."""
    return hour + HOUR + timedelta(minutes=5)


def demo_usage(account_id: str) -> int:
    used = Account.get(account_id, consistent_read=True).bandwidth_used
    return sum(value for key, value in used.items() if key.startswith("demo|"))


LEDGER_WRITES = frozenset({"PutItem", "BatchExecuteStatement"})


@contextmanager
def crash_on_first_ledger_write(account_id: str) -> Iterator[None]:
    """Raise InjectedCrash, as a killed process would stop, when the first ledger line of
    `account_id` is about to be sent, whichever thread sends it."""
    armed = [True]

    def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if armed[0] and model.name in LEDGER_WRITES and "ledger" in text and account_id in text:
            armed[0] = False
            raise InjectedCrash(f"crash before the first ledger line of {account_id}")

    clients = {id(client): client for client in [model._get_connection().connection.client for model in ALL_MODELS]}
    clients[id(connection().client)] = connection().client
    for client in clients.values():
        client.meta.events.register("before-call.dynamodb", before_call)
    try:
        yield
    finally:
        for client in clients.values():
            client.meta.events.unregister("before-call.dynamodb", before_call)


def test_batch_read_returns_existing_accounts_only() -> None:
    first = account_with_credit("one@example.com", CREDIT, T0)
    second = account_with_credit("two@example.com", CREDIT, T0)

    accounts = read_accounts([first.account_id, "acct_missing", second.account_id])

    assert sorted(accounts) == sorted([first.account_id, second.account_id])
    assert accounts[first.account_id].balance_micros == CREDIT


def test_account_charged_after_batch_read_is_charged_once() -> None:
    account = account_with_credit("stale@example.com", CREDIT, T0)
    vm_at(account, T0)
    stale = read_accounts([account.account_id])[account.account_id]
    clock.set_time(run_at(HOUR_10))
    plan_hour(HOUR_10)

    work = collect_shard(shard_for(account.account_id))[account.account_id]
    applied = bill_account(account.account_id, work, HOUR_10, load_catalog(), account=stale)

    assert applied is None
    assert [line.amount_micros for line in charges(account.account_id)] == [-S1_PRICE]
    assert_balance_matches_ledger(account.account_id)


def test_batch_read_before_a_payment_keeps_the_payment() -> None:
    from chalicelib.billing.adjustments import adjust_credit

    account = account_with_credit("paid@example.com", CREDIT, T0)
    vm_at(account, T0)
    stale = read_accounts([account.account_id])[account.account_id]
    adjust_credit(account.account_id, 5_000_000, "Goodwill", "goodwill")
    clock.set_time(run_at(HOUR_10))

    work = collect_shard(shard_for(account.account_id))[account.account_id]
    bill_account(account.account_id, work, HOUR_10, load_catalog(), account=stale)

    assert Account.get(account.account_id, consistent_read=True).balance_micros == CREDIT + 5_000_000 - S1_PRICE
    assert_balance_matches_ledger(account.account_id)


def test_cursor_moved_after_batch_read_counts_traffic_once() -> None:
    account = account_with_credit("moved@example.com", CREDIT, T0)
    vm = vm_at(account, T0)
    stale = read_accounts([account.account_id])[account.account_id]
    clock.set_time(run_at(HOUR_10))
    plan_hour(HOUR_10)
    first_reading = Account.get(account.account_id, consistent_read=True).meters[vm.vm_id]

    hour_11 = HOUR_10 + HOUR
    clock.set_time(run_at(hour_11))
    work = collect_shard(shard_for(account.account_id))[account.account_id]
    bill_account(account.account_id, work, hour_11, load_catalog(), account=stale)

    stored = Account.get(account.account_id, consistent_read=True)
    assert stored.billed_through == "2026-12-04T11"
    assert stored.meters[vm.vm_id] > first_reading
    assert demo_usage(account.account_id) == stored.meters[vm.vm_id]
    assert len(charges(account.account_id)) == 2
    assert_balance_matches_ledger(account.account_id)


def test_demo_batch_reading_equals_single_readings() -> None:
    backend = DemoBackend("demo", {}, {})
    account = account_with_credit("traffic@example.com", CREDIT, T0)
    machines = [vm_at(account, T0, "s1", f"web{index}").backend_id or "" for index in range(3)]
    clock.set_time(T0 + timedelta(hours=2))

    readings = backend.read_traffic_batch([*machines, "demo-000000000000"])

    assert readings == {backend_id: backend.read_traffic(backend_id) for backend_id in machines}
    assert all(reading > 0 for reading in readings.values())


def test_traffic_read_batched_per_region() -> None:
    account = account_with_credit("batch@example.com", CREDIT, T0)
    vms = [vm_at(account, T0, "s1", f"web{index}") for index in range(3)]
    clock.set_time(run_at(HOUR_10))

    readings = read_traffic_batches(Vm.query(account.account_id))

    backend = DemoBackend("demo", {}, {})
    assert readings == {vm.vm_id: backend.read_traffic(vm.backend_id or "") for vm in vms}


def test_failing_account_in_threaded_shard_leaves_others_billed() -> None:
    accounts = accounts_in_one_shard(3, CREDIT, T0)
    for account in accounts:
        vm_at(account, T0, "s1", "web1")
    poisoned = accounts[1]
    broken = next(iter(Vm.query(poisoned.account_id)))
    Vm(poisoned.account_id, broken.vm_id).update(
        actions=[Vm.plan_history.set([{"plan": "retired", "at": broken.started_at, "price_from": broken.started_at}])]
    )
    clock.set_time(run_at(HOUR_10))

    with pytest.raises(ShardIncomplete, match="1 accounts failed"):
        bill_shard(shard_for(poisoned.account_id), HOUR_10)

    for account in accounts:
        expected = [] if account is poisoned else [-S1_PRICE]
        assert [line.amount_micros for line in charges(account.account_id)] == expected
        assert_balance_matches_ledger(account.account_id)


def test_crash_in_one_thread_recovers_on_rerun() -> None:
    accounts = accounts_in_one_shard(3, CREDIT, T0)
    for account in accounts:
        vm_at(account, T0, "s1", "web1")
        vm_at(account, T0 + timedelta(minutes=7), "m2", "web2")
    clock.set_time(run_at(HOUR_10))
    shard = shard_for(accounts[0].account_id)

    with crash_on_first_ledger_write(accounts[1].account_id), pytest.raises(InjectedCrash):
        bill_shard(shard, HOUR_10)
    bill_shard(shard, HOUR_10)

    for account in accounts:
        assert sorted(line.amount_micros for line in charges(account.account_id)) == [-15_000, -S1_PRICE]
        assert Account.get(account.account_id, consistent_read=True).billed_through == "2026-12-04T10"
        assert_balance_matches_ledger(account.account_id)


def test_run_isolated_returns_each_error_as_its_result() -> None:
    def bill(account_id: str) -> None:
        if account_id == "b":
            raise ValueError("broken account")

    outcomes = run_isolated(["a", "b", "c"], bill, threads=2)

    assert outcomes["a"] is None
    assert outcomes["c"] is None
    assert isinstance(outcomes["b"], ValueError)


def test_run_isolated_crash_stops_later_accounts() -> None:
    started: list[str] = []

    def bill(account_id: str) -> None:
        started.append(account_id)
        if account_id == "a":
            raise InjectedCrash("process killed")

    with pytest.raises(InjectedCrash):
        run_isolated(list("abcdefgh"), bill, threads=1)

    assert started == ["a"]


def test_run_isolated_crash_on_a_thread_propagates() -> None:
    def bill(account_id: str) -> None:
        if account_id == "c":
            raise InjectedCrash("process killed")

    with pytest.raises(InjectedCrash):
        run_isolated(list("abcdefgh"), bill, threads=3)


def test_catalog_read_once_by_threads_at_once() -> None:
    invalidate()
    queries: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        queries.append(params["url_path"])

    client = CatalogItem._get_connection().connection.client
    client.meta.events.register("before-call.dynamodb.Query", count)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            catalogs = list(pool.map(lambda _: load_catalog(), range(4)))
    finally:
        client.meta.events.unregister("before-call.dynamodb.Query", count)

    assert len(queries) == 3  # regions, plans and images
    assert all(catalog is catalogs[0] for catalog in catalogs)
