"""A delete that the provider rejects, on DynamoDB Local with a region on the Vultr fake:
the VM stays visible as "deleting", its final hours are charged once, and the hourly run
retries the delete until the provider accepts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import clock, config
from chalicelib.backends.vultr import VultrBackend
from chalicelib.billing.planner import plan_hour
from chalicelib.catalog import backend_for, invalidate
from chalicelib.clock import HOUR
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.models.vms import Vm
from chalicelib.net.http import MAX_ATTEMPTS
from chalicelib.secrets import clear_cache
from chalicelib.vms import service
from tests.fakes.vultr import API_KEY, FakeVultr
from tests.helpers import account_with_credit, assert_balance_matches_ledger, balance, charges

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

REGION = "vultr-ewr"
IMAGE = "debian-ewr"
T0 = datetime(2026, 6, 10, 9, 30, tzinfo=UTC)
# s1 costs 0.0075 an hour, in micro-units.
S1_HOURLY_MICROS = 7_500


@pytest.fixture
def vultr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVultr]:
    """A region on the Vultr fake, its API key in a local secrets file, offering plan s1."""
    fake = FakeVultr()
    base_url = fake.start()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"vultr": {"api_key": API_KEY}}))
    monkeypatch.setenv("LOBSTER_SECRETS_FILE", str(secrets_file))
    config.reload()
    clear_cache()

    settings = {"api_url": f"{base_url}/v2", "region": "ewr", "timeout_seconds": 2}
    CatalogItem(
        KIND_REGION, REGION, name="New Jersey", backend="vultr", settings=settings, secret_ref="file:vultr"
    ).save()
    plan = CatalogItem.get(KIND_PLAN, "s1")
    plan.update(actions=[CatalogItem.region_ids.set({**plan.region_ids, REGION: "vc2-1c-1gb"})])
    CatalogItem(KIND_IMAGE, IMAGE, name="Debian 12", region=REGION, backend_id="2136").save()
    invalidate()
    # Retries of a failed request wait with backoff; the waits are skipped here.
    backend = backend_for(REGION)
    assert isinstance(backend, VultrBackend)
    backend.http.sleep = lambda seconds: None

    yield fake
    fake.stop()
    monkeypatch.delenv("LOBSTER_SECRETS_FILE")
    config.reload()
    clear_cache()


def run_hour(hour: datetime) -> None:
    """Run the hourly billing as the schedule does, five minutes after `hour` ends."""
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


def fail_deletes(fake: FakeVultr, backend_id: str) -> None:
    """Make the provider respond 503 to every attempt of the next delete of `backend_id`."""
    body = b'{"error": "Service unavailable", "status": 503}'
    fake.fail_next(503, body, MAX_ATTEMPTS, method="DELETE", path=f"/v2/instances/{backend_id}")


def stored(vm: Vm) -> Vm:
    return Vm.get(vm.account_id, vm.vm_id, consistent_read=True)


def test_failed_delete_retried_by_hourly_run(vultr: FakeVultr) -> None:
    account = account_with_credit("del@example.com", 20_000_000, T0)
    vm = service.create_vm(account, "web1", REGION, "s1", IMAGE)
    backend_id = vm.backend_id or ""
    vultr.make_active(backend_id)
    vm = service.refresh_vm(stored(vm))
    assert vm.state == "active"

    # 09:30 to 11:40 is 2 hours and 10 minutes, so 3 VM-hours.
    clock.set_time(T0 + timedelta(hours=2, minutes=10))
    fail_deletes(vultr, backend_id)
    service.delete_vm(vm)

    deleting = stored(vm)
    assert deleting.state == "deleting"
    assert deleting.backend_error is not None
    assert "HTTP 503" in deleting.backend_error
    assert deleting.delete_attempts == 1
    assert deleting.billing_shard is not None
    assert [item.vm_id for item in service.list_vms(account.account_id)] == [vm.vm_id]
    assert backend_id in vultr.instances
    assert len(charges(account.account_id)) == 3
    assert balance(account.account_id) == 20_000_000 - 3 * S1_HOURLY_MICROS

    # The next hourly run retries, and the provider still fails.
    fail_deletes(vultr, backend_id)
    run_hour(datetime(2026, 6, 10, 11, tzinfo=UTC))

    retried = stored(vm)
    assert retried.state == "deleting"
    assert retried.delete_attempts == 2
    assert backend_id in vultr.instances
    assert len(charges(account.account_id)) == 3

    # The provider accepts the delete at the following run.
    run_hour(datetime(2026, 6, 10, 12, tzinfo=UTC))

    deleted = stored(vm)
    assert deleted.state == "deleted"
    assert deleted.backend_error is None
    assert backend_id not in vultr.instances
    assert service.list_vms(account.account_id) == []
    assert len(charges(account.account_id)) == 3
    assert balance(account.account_id) == 20_000_000 - 3 * S1_HOURLY_MICROS
    assert_balance_matches_ledger(account.account_id)
    deletes = [r for r in vultr.requests if r.method == "DELETE" and r.path == f"/v2/instances/{backend_id}"]
    assert len(deletes) == 2 * MAX_ATTEMPTS + 1


def test_vm_gone_from_provider_counts_as_deleted(vultr: FakeVultr) -> None:
    account = account_with_credit("gone@example.com", 20_000_000, T0)
    vm = service.create_vm(account, "web1", REGION, "s1", IMAGE)
    vultr.make_active(vm.backend_id or "")
    vm = service.refresh_vm(stored(vm))
    clock.set_time(T0 + timedelta(minutes=20))
    fail_deletes(vultr, vm.backend_id or "")
    service.delete_vm(vm)
    del vultr.instances[vm.backend_id or ""]

    run_hour(datetime(2026, 6, 10, 9, tzinfo=UTC))

    assert stored(vm).state == "deleted"
    assert len(charges(account.account_id)) == 1
    assert_balance_matches_ledger(account.account_id)
