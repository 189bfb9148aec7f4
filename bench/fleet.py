"""A fleet of accounts and running VMs on the demo backend, written straight to the tables.

Items carry the fields sign_up, create_vm and _activate store, in the state the hourly run
finds them in steady state: active for two days, the previous hour billed, a traffic reading
stored per VM. Every VM owes exactly one VM-hour ending inside BILLED_HOUR. Writes use
BatchWriteItem, because setting up 10,000 accounts one request at a time would take minutes.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib import clock
from chalicelib.backends.demo import DemoBackend
from chalicelib.billing.ledger import BATCH_HOURLY, new_line
from chalicelib.billing.shards import shard_for
from chalicelib.catalog import load_catalog
from chalicelib.clock import HOUR, hour_key, iso, month_key
from chalicelib.config import settings
from chalicelib.models.accounts import Account
from chalicelib.models.demo import DemoMachine
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
from tools.seed import DEMO_PLANS

BILLED_HOUR = datetime(2026, 11, 18, 10, tzinfo=UTC)
RUN_AT = BILLED_HOUR + HOUR + timedelta(minutes=5)  # the schedule bills hour HH at HH+1:05
PREVIOUS_RUN_AT = RUN_AT - HOUR
VM_HOURS_BEFORE = 47  # full VM-hours each VM ran before the billed one
ACCOUNT_AGE = timedelta(days=3)
OPENING_CREDIT_MICROS = 200_000_000  # covers 168 hours of five l4 VMs, so no low-credit notice
PLANS = ("s1", "m2", "l4")
PLAN_BACKEND_IDS = {plan[0]: plan[-1] for plan in DEMO_PLANS}  # plan id -> the demo backend's plan id
REGION, IMAGE = "demo", "debian-12"
DEMO_IMAGE_BACKEND_ID = "debian-12-x64"
LOGIN_DETAILS = "username: root (log in with your SSH key)"
ACTIVATION_DELAY = timedelta(seconds=20)  # the demo backend's default provisioning time
STALE_READING = 250_000 * 86_400 * 30  # a month at the demo backend's top traffic rate, in bytes


@dataclass(frozen=True)
class FleetVm:
    account_id: str
    vm_id: str
    name: str
    plan: str
    backend_id: str
    started: datetime
    previous_reading: int
    reading: int


@dataclass(frozen=True)
class Fleet:
    accounts: list[str]
    vms: list[FleetVm]

    @property
    def vm_hours(self) -> int:
        return len(self.vms)


def build_fleet(vm_count: int, vms_per_account: int, label: str, stale_meters: int = 0) -> Fleet:
    """Write `vm_count` VMs in accounts of `vms_per_account`, with ids unique to `label`.

    `stale_meters` adds that many readings of VMs deleted in earlier months to every account's
    `meters`, as an account that created and deleted VMs before carries them.
    """
    if vm_count % vms_per_account:
        raise ValueError(f"vm_count {vm_count} is not a multiple of vms_per_account {vms_per_account}")

    vms = [_fleet_vm(label, index, vms_per_account) for index in range(vm_count)]
    by_account: dict[str, list[FleetVm]] = defaultdict(list)
    for vm in vms:
        by_account[vm.account_id].append(vm)

    clock.set_time(BILLED_HOUR - ACCOUNT_AGE)
    with Account.batch_write() as accounts, LedgerLine.batch_write() as ledger:
        for number, (account_id, owned) in enumerate(by_account.items()):
            accounts.save(_account(account_id, number, owned, stale_meters))
            ledger.save(_opening_credit(account_id))
    with Vm.batch_write() as vm_items, DemoMachine.batch_write() as machines:
        for vm in vms:
            vm_items.save(_vm(vm))
            machines.save(_machine(vm))
    clock.set_time(None)
    return Fleet(accounts=list(by_account), vms=vms)


def floor_lines(fleet: Fleet, label: str) -> list[LedgerLine]:
    """Build one ledger line per VM-hour of the fleet, the same size as the hourly run's,
    under other accounts with ids of the same length, for the sequential-write floor."""
    catalog = load_catalog()
    clock.set_time(RUN_AT)
    lines = []
    for vm in fleet.vms:
        start = vm.started + VM_HOURS_BEFORE * HOUR
        line = new_line(
            _hex_id("acct_", f"{label}-{vm.account_id}", 18),
            moment=start,
            kind="vm",
            reference=vm.vm_id,
            amount_micros=-catalog.plan_price_at(vm.plan, start),
            description=f"VM {vm.name}, plan {catalog.any_plan(vm.plan).name}, hour from {iso(start)}",
            batch=BATCH_HOURLY,
            period=hour_key(BILLED_HOUR),
            vm_id=vm.vm_id,
            region=REGION,
        )
        line.bandwidth_reading = vm.reading
        line.bandwidth_delta = vm.reading - vm.previous_reading
        line.bandwidth_month = month_key(RUN_AT)
        lines.append(line)
    clock.set_time(None)
    return lines


def _fleet_vm(label: str, index: int, vms_per_account: int) -> FleetVm:
    account_id = _hex_id("acct_", f"{label}-account-{index // vms_per_account}", 18)
    backend_id = _hex_id("demo-", f"{label}-machine-{index}", 12)
    # Spread the starts over the hour so that VM-hour 47 of every VM ends inside BILLED_HOUR.
    offset = timedelta(seconds=1 + (index * 7919) % 3599)
    started = BILLED_HOUR - (VM_HOURS_BEFORE + 1) * HOUR + offset
    return FleetVm(
        account_id=account_id,
        vm_id=_hex_id("vm_", f"{label}-vm-{index}", 12),
        name=f"web{index % vms_per_account + 1}",
        plan=PLANS[index % len(PLANS)],
        backend_id=backend_id,
        started=started,
        previous_reading=_demo_reading(backend_id, started, PREVIOUS_RUN_AT),
        reading=_demo_reading(backend_id, started, RUN_AT),
    )


def _demo_reading(backend_id: str, started: datetime, moment: datetime) -> int:
    # The demo backend's own counter formula, so the stored reading matches what it reports.
    return int((moment - started).total_seconds()) * DemoBackend._rate(backend_id)


def _account(account_id: str, number: int, vms: list[FleetVm], stale_meters: int) -> Account:
    month = month_key(BILLED_HOUR)
    meters = {_hex_id("vm_", f"{account_id}-deleted-{index}", 12): STALE_READING for index in range(stale_meters)}
    meters.update({vm.vm_id: vm.previous_reading for vm in vms})
    return Account(
        account_id,
        email=f"customer-{number:06d}@example.com",
        created_at=iso(BILLED_HOUR - ACCOUNT_AGE),
        vm_limit=settings().default_vm_limit,
        billing_shard=shard_for(account_id),
        billed_through=hour_key(BILLED_HOUR - HOUR),
        balance_micros=OPENING_CREDIT_MICROS,
        meters=meters,
        bandwidth_used={f"{REGION}|{month}": sum(vm.previous_reading for vm in vms)},
    )


def _opening_credit(account_id: str) -> LedgerLine:
    """Build the adjustment line that makes the opening balance equal the ledger."""
    return new_line(
        account_id,
        moment=BILLED_HOUR - ACCOUNT_AGE,
        kind="adjustment",
        reference="opening",
        amount_micros=OPENING_CREDIT_MICROS,
        description="Opening credit",
        batch="adjustment",
    )


def _vm(vm: FleetVm) -> Vm:
    started = iso(vm.started)
    item = Vm(
        vm.account_id,
        vm.vm_id,
        name=vm.name,
        region=REGION,
        plan_id=vm.plan,
        image_id=IMAGE,
        state="active",
        created_at=started,
        started_at=started,
        hourly_from=iso(vm.started + ACTIVATION_DELAY),
        backend_id=vm.backend_id,
        plan_history=[{"plan": vm.plan, "at": started, "price_from": started}],
        power="online",
        addresses=[address.__dict__ for address in DemoBackend._addresses(vm.backend_id)],
        login_details=LOGIN_DETAILS,
        billing_shard=shard_for(vm.account_id),
    )
    item.billing_sort = f"{vm.account_id}#{vm.vm_id}"
    return item


def _machine(vm: FleetVm) -> DemoMachine:
    return DemoMachine(vm.backend_id, name=vm.name, plan=PLAN_BACKEND_IDS[vm.plan], image=DEMO_IMAGE_BACKEND_ID, created_at=iso(vm.started))


def _hex_id(prefix: str, seed: str, length: int) -> str:
    """Return a deterministic id shaped like the application's random ones."""
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:length]
