"""Bandwidth metering in the hourly run: a metering outage in one region, a replayed
sample, counter resets, and the 85% and 100% pool notices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import clock, config
from chalicelib.billing.allocation import GIB
from chalicelib.billing.bandwidth import settle
from chalicelib.billing.planner import ShardMessage, handle_shard_message, plan_hour
from chalicelib.billing.prefetch import read_traffic_batches
from chalicelib.billing.shards import shard_for
from chalicelib.catalog import invalidate, load_catalog
from chalicelib.clock import HOUR, hour_key
from chalicelib.models.accounts import Account
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
from chalicelib.notify.sender import outbox
from chalicelib.secrets import clear_cache
from tests.fakes.solusvm import API_ID, API_KEY, COMMAND_PATH, FakeSolusVm
from tests.helpers import account_with_credit, assert_balance_matches_ledger, charges, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def solusvm_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSolusVm]:
    fake = FakeSolusVm(clients=("lobstersol",))
    base_url = fake.start()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"sol": {"api_id": API_ID, "api_key": API_KEY}}))
    monkeypatch.setenv("LOBSTER_SECRETS_FILE", str(secrets_file))
    config.reload()
    clear_cache()

    settings = {"api_url": base_url + COMMAND_PATH, "timeout_seconds": 1, "username_prefix": "lobster"}
    CatalogItem(KIND_REGION, "sol", name="SolusVM region", backend="solusvm", settings=settings, secret_ref="file:sol").save()
    plan = CatalogItem.get(KIND_PLAN, "s1")
    plan.update(actions=[CatalogItem.region_ids.set({**plan.region_ids, "sol": "Lobster 1G"})])
    CatalogItem(KIND_IMAGE, "ubuntu-sol", name="Ubuntu", region="sol", backend_id="ubuntu-22.04-x86_64").save()
    invalidate()
    yield fake
    fake.stop()
    monkeypatch.delenv("LOBSTER_SECRETS_FILE")
    config.reload()


def run_hour(hour: datetime) -> None:
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


def sol_vm(account: Account, fake: FakeSolusVm) -> Vm:
    from chalicelib.vms.service import create_vm, refresh_vm

    clock.set_time(T0)
    vm = create_vm(Account.get(account.account_id), "sol1", "sol", "s1", "ubuntu-sol")
    fake.make_active(vm.backend_id or "")
    return refresh_vm(Vm.get(account.account_id, vm.vm_id))


def usage(account_id: str) -> dict[str, int]:
    return Account.get(account_id, consistent_read=True).bandwidth_used


def test_metering_outage_next_reading_covers_gap(solusvm_region: FakeSolusVm) -> None:
    account = account_with_credit("w2@example.com", 20_000_000, T0)
    demo_vm = vm_at(account, T0, "s1", "demo1")
    vm = sol_vm(account, solusvm_region)
    assert vm.state == "active"
    gib = 1 << 30

    solusvm_region.set_traffic(vm.backend_id or "", 3 * gib)
    solusvm_region.fail_next(status=503, count=4)
    run_hour(datetime(2026, 3, 2, 10, tzinfo=UTC))

    assert "sol|2026-03" not in usage(account.account_id)
    assert usage(account.account_id)["demo|2026-03"] > 0
    assert len(charges(account.account_id)) == 2

    solusvm_region.set_traffic(vm.backend_id or "", 5 * gib)
    run_hour(datetime(2026, 3, 2, 11, tzinfo=UTC))

    assert usage(account.account_id)["sol|2026-03"] == 5 * gib
    assert len(charges(account.account_id)) == 4
    assert demo_vm.vm_id
    assert_balance_matches_ledger(account.account_id)


def test_region_without_batch_reading_reads_each_vm(solusvm_region: FakeSolusVm) -> None:
    account = account_with_credit("single@example.com", 20_000_000, T0)
    vm = sol_vm(account, solusvm_region)
    solusvm_region.set_traffic(vm.backend_id or "", 3 * GIB)

    assert read_traffic_batches([vm]) == {}
    run_hour(datetime(2026, 3, 2, 10, tzinfo=UTC))

    assert usage(account.account_id) == {"sol|2026-03": 3 * GIB}
    assert Account.get(account.account_id, consistent_read=True).meters == {vm.vm_id: 3 * GIB}
    assert_balance_matches_ledger(account.account_id)


def test_replayed_sample_counts_once(solusvm_region: FakeSolusVm) -> None:
    account = account_with_credit("replay@example.com", 20_000_000, T0)
    vm = sol_vm(account, solusvm_region)
    solusvm_region.set_traffic(vm.backend_id or "", 2 * GIB)
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    message = ShardMessage(hour_key(hour), shard_for(account.account_id))

    handle_shard_message(message)
    solusvm_region.set_traffic(vm.backend_id or "", 9 * GIB)
    handle_shard_message(message)

    assert usage(account.account_id) == {"sol|2026-03": 2 * GIB}


def test_counter_reset_counts_new_reading_as_delta(solusvm_region: FakeSolusVm) -> None:
    account = account_with_credit("reset@example.com", 20_000_000, T0)
    vm = sol_vm(account, solusvm_region)

    for hour, reading in ((10, 4 * GIB), (11, 6 * GIB), (12, 1 * GIB)):
        solusvm_region.set_traffic(vm.backend_id or "", reading)
        run_hour(datetime(2026, 3, 2, hour, tzinfo=UTC))

    assert usage(account.account_id) == {"sol|2026-03": 7 * GIB}
    deltas = [line.bandwidth_delta for line in LedgerLine.query(account.account_id) if line.bandwidth_delta is not None]
    assert deltas == [4 * GIB, 2 * GIB, 1 * GIB]


def test_pool_notices_sent_once_each() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    account = account_with_credit("pool@example.com", 20_000_000, start)
    vm_at(account, start, "s1")
    vms = list(Vm.query(account.account_id))
    clock.set_time(datetime(2026, 4, 10, tzinfo=UTC))
    outbox.clear()

    for used_gib in (800, 860, 870, 990, 1001, 1002):
        Account(account.account_id).update(actions=[Account.bandwidth_used.set({"demo|2026-04": used_gib * GIB})])
        settle(account.account_id, vms, load_catalog())
        settle(account.account_id, vms, load_catalog())

    subjects = [notice.subject for notice in outbox if notice.template == "bandwidth"]
    assert len(subjects) == 2
    assert "85%" in subjects[0]
    assert "100%" in subjects[1]
    assert [line.amount_micros for line in charges(account.account_id, "bandwidth")] == [-3_000, -3_000]
    assert Account.get(account.account_id).bandwidth_notified == {"demo|2026-04": 100}
    assert_balance_matches_ledger(account.account_id)
