"""An account's runway: what it costs per hour, when its credit runs out, and when the
credit life-cycle would send its next notice, suspend and terminate.

The projection is an estimate. It assumes today's VMs, images and this month's bandwidth
rate stay as they are, and that each hourly billing run charges one hour of that cost. It
replays the rules of `billing.lifecycle` run by run, so it changes when they change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from chalicelib.billing.allocation import GIB
from chalicelib.billing.bandwidth import pool_for
from chalicelib.billing.jobs import HOURLY_SCHEDULE_MINUTE
from chalicelib.billing.lifecycle import (
    NOTICE_INTERVAL,
    NOTICES_BEFORE_SUSPENSION,
    NOTICES_BEFORE_TERMINATION,
    RUNWAY_NOTICE_HOURS,
    TERMINATION_DEBT_HOURS,
)
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.clock import HOUR, floor_hour, month_key, month_start, next_month_start, now, parse_iso
from chalicelib.config import settings
from chalicelib.models.accounts import Account
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm
from chalicelib.money import round_half_up

BYTES_PER_GB = 10**9
# The projection stops after this many hourly runs. Every life-cycle step that can happen
# at all happens well within it, because it takes 10 daily notices and a week of debt.
MAX_PROJECTED_RUNS = 60 * 24
# A usage rate measured over less than this is too noisy to project a month from.
MIN_RATE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class HourlyCost:
    """An account's expected cost per hour, in micro-units."""

    vms: int
    storage: int
    bandwidth_overage: int

    @property
    def lifecycle(self) -> int:
        """The cost the credit life-cycle measures the balance against: VMs and storage."""
        return self.vms + self.storage

    @property
    def total(self) -> int:
        return self.vms + self.storage + self.bandwidth_overage


@dataclass(frozen=True)
class Projection:
    hours_left: int | None
    credit_runs_out_at: datetime | None
    next_notice_at: datetime | None
    suspension_at: datetime | None
    termination_at: datetime | None


def account_runway(account: Account) -> tuple[HourlyCost, Projection]:
    """Measure the account's hourly cost and project its credit life-cycle from now."""
    catalog = load_catalog()
    moment = now()
    vms = list(Vm.query(account.account_id))
    images = list(Image.query(account.account_id))

    cost = HourlyCost(
        vms=vm_hourly_cost(vms, catalog, moment),
        storage=storage_hourly_cost(images),
        bandwidth_overage=bandwidth_overage_hourly(account, vms, catalog, moment),
    )
    projection = project(
        balance=int(account.balance_micros),
        cost=cost,
        notices=int(account.low_credit_notices or 0),
        last_notice_at=parse_iso(account.last_notice_at) if account.last_notice_at else None,
        first_run=next_billing_run(moment),
        can_suspend=any(vm.state == "active" and vm.suspended == "no" for vm in vms),
        moment=moment,
    )
    return cost, projection


def vm_hourly_cost(vms: list[Vm], catalog: Catalog, moment: datetime) -> int:
    """Sum the hourly prices of the live VMs on their newest plans, which apply from the next hour."""
    return sum(
        catalog.plan_price_at(vm.plan_id, moment)
        for vm in vms
        if vm.state == "active" and vm.plan_history and vm.deleted_at is None
    )


def storage_hourly_cost(images: list[Image]) -> int:
    stored = sum(int(image.size_bytes) for image in images if image.deleted_at is None and image.state != "error")
    return round_half_up(settings().storage_micros_per_gb_hour * stored / BYTES_PER_GB)


def bandwidth_overage_hourly(account: Account, vms: list[Vm], catalog: Catalog, moment: datetime) -> int:
    """Estimate the hourly cost of bandwidth above the pools, summed over regions.

    Each region's usage rate so far this month is projected to month end. The overage it
    leads to, less the GiB already charged, is spread over the hours left in the month.
    """
    month = month_key(moment)
    first, after = month_start(moment), next_month_start(moment)
    elapsed = max(moment - first, MIN_RATE_WINDOW).total_seconds()
    remaining = (after - moment).total_seconds()
    hours_left = max(Fraction(int(remaining), 3600), Fraction(1))

    total = Fraction(0)
    for key, used in account.bandwidth_used.items():
        region, _, used_month = key.partition("|")
        if used_month != month or used <= 0:
            continue
        projected = used + Fraction(used) * int(remaining) / int(elapsed)
        pool = pool_for(vms, region, first, catalog)
        over_gib = max(Fraction(0), projected - pool) // GIB
        unbilled_gib = max(0, int(over_gib) - account.bandwidth_billed_gib.get(key, 0))
        total += settings().bandwidth_micros_per_gib * unbilled_gib / hours_left
    return round_half_up(total)


def next_billing_run(moment: datetime) -> datetime:
    """Return the first scheduled hourly run after `moment`, at minute HOURLY_SCHEDULE_MINUTE."""
    run = floor_hour(moment) + timedelta(minutes=HOURLY_SCHEDULE_MINUTE)
    return run if run > moment else run + HOUR


def project(
    *,
    balance: int,
    cost: HourlyCost,
    notices: int,
    last_notice_at: datetime | None,
    first_run: datetime,
    can_suspend: bool,
    moment: datetime,
) -> Projection:
    """Replay the hourly runs from `first_run`, each charging `cost.total`.

    Each run reviews the balance as `billing.lifecycle.review` does. No notice is sent
    while the balance covers RUNWAY_NOTICE_HOURS of cost. After enough notices, a balance
    below minus TERMINATION_DEBT_HOURS of cost terminates and a negative one suspends.
    Otherwise a notice goes out, at most one every NOTICE_INTERVAL.
    """
    burn = cost.total
    if burn <= 0:
        return Projection(None, None, None, None, None)

    hours_left = max(0, balance) // burn
    runs_out_at = moment if balance < 0 else first_run + hours_left * HOUR
    if cost.lifecycle <= 0:
        return Projection(hours_left, runs_out_at, None, None, None)

    notice_below = RUNWAY_NOTICE_HOURS * cost.lifecycle
    terminate_below = -TERMINATION_DEBT_HOURS * cost.lifecycle
    # Runs that leave the balance above the notice line only reset the notice count.
    first = 1 if balance - burn < notice_below else (balance - notice_below) // burn + 1
    if first > 1:
        notices = 0

    next_notice = suspension = None
    suspended = not can_suspend
    for run in range(first, first + MAX_PROJECTED_RUNS):
        at = first_run + (run - 1) * HOUR
        after = balance - run * burn
        if after < terminate_below and notices >= NOTICES_BEFORE_TERMINATION:
            return Projection(hours_left, runs_out_at, next_notice, suspension, at)
        if after < 0 and notices >= NOTICES_BEFORE_SUSPENSION and not suspended:
            suspension, suspended = at, True
            continue
        if last_notice_at is None or at - last_notice_at >= NOTICE_INTERVAL:
            notices, last_notice_at = notices + 1, at
            next_notice = next_notice or at
    return Projection(hours_left, runs_out_at, next_notice, suspension, None)
