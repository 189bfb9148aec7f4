"""The runway and bandwidth views: the projection of the credit life-cycle run by run,
the projected bandwidth overage, and the routes that show them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.billing.allocation import GIB
from chalicelib.clock import HOUR, iso
from chalicelib.models.accounts import Account
from chalicelib.usage.runway import HourlyCost, Projection, next_billing_run, project
from tests.customer_api import call, customer, log_in
from tests.helpers import add_image

T0 = datetime(2026, 6, 8, 9, 30, tzinfo=UTC)
FIRST_RUN = datetime(2026, 6, 8, 10, 5, tzinfo=UTC)
VM_MICROS = 7_500  # plan s1 per hour
TEN_GB_MICROS = 555  # 10 GB of images at 0.0000555 per GB-hour
JUNE_SECONDS = 30 * 86400
# Plan s1 adds 1000 GiB a month; a VM from T0 counts from then until the end of June.
POOL_FROM_T0 = 1000 * GIB * (JUNE_SECONDS - (7 * 86400 + 9 * 3600 + 1800)) // JUNE_SECONDS

with_tables = pytest.mark.usefixtures("demo_catalog", "clock")


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def run_at(run: int) -> datetime:
    """The time of the `run`-th hourly run, counting FIRST_RUN as run 1."""
    return FIRST_RUN + (run - 1) * HOUR


def projected(balance: int, cost: HourlyCost, notices: int = 0, last_notice_at: datetime | None = None, can_suspend: bool = True) -> Projection:
    return project(
        balance=balance,
        cost=cost,
        notices=notices,
        last_notice_at=last_notice_at,
        first_run=FIRST_RUN,
        can_suspend=can_suspend,
        moment=T0,
    )


# The projection, without IO.


def test_next_billing_run_at_minute_five() -> None:
    assert next_billing_run(T0) == FIRST_RUN
    assert next_billing_run(datetime(2026, 6, 8, 10, 4, tzinfo=UTC)) == FIRST_RUN
    assert next_billing_run(FIRST_RUN) == FIRST_RUN + HOUR


def test_nothing_to_pay_projects_nothing() -> None:
    assert projected(5_000_000, HourlyCost(0, 0, 0)) == Projection(None, None, None, None, None)


def test_healthy_balance_projects_each_step() -> None:
    cost = HourlyCost(vms=1_000, storage=0, bandwidth_overage=0)

    result = projected(1_000 * 1_000, cost)

    assert result.hours_left == 1_000
    assert result.credit_runs_out_at == run_at(1_001)
    # First run that leaves less than 168 hours of cost: 1,000,000 - k * 1,000 < 168,000.
    assert result.next_notice_at == run_at(833)
    assert result.suspension_at == run_at(1_001)
    # Termination once the debt exceeds 168 hours of cost: k * 1,000 > 1,168,000.
    assert result.termination_at == run_at(1_169)


def test_notice_waits_a_day_after_the_last_one() -> None:
    cost = HourlyCost(vms=1_000, storage=0, bandwidth_overage=0)
    last = T0 - timedelta(hours=10)

    result = projected(50_000, cost, notices=2, last_notice_at=last)

    assert result.next_notice_at == run_at(15)
    assert result.next_notice_at - last >= timedelta(hours=24)


def test_deep_debt_still_needs_ten_notices() -> None:
    cost = HourlyCost(vms=1_000, storage=0, bandwidth_overage=0)

    result = projected(-1_000_000, cost)

    assert result.credit_runs_out_at == T0
    assert result.hours_left == 0
    assert result.next_notice_at == run_at(1)
    # Notices at runs 1, 25, 49, 73, 97; suspension at run 98; five more notices by run 217.
    assert result.suspension_at == run_at(98)
    assert result.termination_at == run_at(218)


def test_account_without_running_vms_is_never_suspended() -> None:
    cost = HourlyCost(vms=0, storage=555, bandwidth_overage=0)

    result = projected(-1_000_000, cost, can_suspend=False)

    assert result.suspension_at is None
    assert result.termination_at == run_at(1 + 9 * 24 + 1)


def test_bandwidth_only_cost_runs_out_without_lifecycle_steps() -> None:
    cost = HourlyCost(vms=0, storage=0, bandwidth_overage=2_000)

    result = projected(9_000, cost)

    assert result.hours_left == 4
    assert result.credit_runs_out_at == run_at(5)
    assert (result.next_notice_at, result.suspension_at, result.termination_at) == (None, None, None)


def test_bandwidth_overage_speeds_up_each_step() -> None:
    slow = projected(1_000_000, HourlyCost(vms=1_000, storage=0, bandwidth_overage=0))
    fast = projected(1_000_000, HourlyCost(vms=1_000, storage=0, bandwidth_overage=1_000))

    assert fast.credit_runs_out_at < slow.credit_runs_out_at
    assert fast.next_notice_at < slow.next_notice_at
    assert fast.termination_at < slow.termination_at


# Routes.


@with_tables
def test_runway_of_vm_and_image(client: Client) -> None:
    account, token = customer(client, "runway@example.com", 20_000_000, T0)
    assert call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)[0] == 201
    add_image(account, 10 * 10**9, T0)

    status, runway = call(client, "GET", "/v1/account/runway", token=token)

    assert status == 200
    cost = VM_MICROS + TEN_GB_MICROS
    assert runway["hourly_cost"]["vms"]["micros"] == VM_MICROS
    assert runway["hourly_cost"]["storage"]["micros"] == TEN_GB_MICROS
    assert runway["hourly_cost"]["bandwidth_overage"]["micros"] == 0
    assert runway["hourly_cost"]["total"]["micros"] == cost
    assert runway["hours_left"] == 20_000_000 // cost == 2_482
    assert runway["credit_runs_out_at"] == iso(run_at(2_483))
    assert runway["next_low_credit_notice_at"] == iso(run_at(2_315))
    assert runway["suspension_at"] == iso(run_at(2_483))
    assert runway["termination_at"] == iso(run_at(2_651))
    assert runway["low_credit_notices_sent"] == 0


@with_tables
def test_runway_projects_unbilled_bandwidth_overage(client: Client) -> None:
    account, token = customer(client, "overage@example.com", 20_000_000, T0)
    call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)
    Account(account.account_id).update(
        actions=[
            Account.bandwidth_used.set({"demo|2026-06": 900 * GIB}),
            Account.bandwidth_billed_gib.set({"demo|2026-06": 100}),
        ]
    )
    clock.set_time(datetime(2026, 6, 16, tzinfo=UTC))
    token = log_in(client, account.email)

    _, runway = call(client, "GET", "/v1/account/runway", token=token)

    # Half the month gone: 900 GiB now, 1800 GiB by month end, 1046 GiB above the pool,
    # 946 not billed yet, at 0.003 per GiB over the 360 hours left.
    assert runway["hourly_cost"]["bandwidth_overage"]["micros"] == 7_883
    assert runway["hourly_cost"]["total"]["micros"] == VM_MICROS + 7_883


@with_tables
def test_bandwidth_view_per_region(client: Client) -> None:
    account, token = customer(client, "pool@example.com", 20_000_000, T0)
    call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)
    Account(account.account_id).update(
        actions=[
            Account.bandwidth_used.set({"demo|2026-06": 900 * GIB}),
            Account.bandwidth_billed_gib.set({"demo|2026-06": 100}),
        ]
    )
    clock.set_time(datetime(2026, 6, 16, tzinfo=UTC))
    token = log_in(client, account.email)

    status, view = call(client, "GET", "/v1/bandwidth", token=token)

    assert status == 200
    assert view["month"] == "2026-06"
    assert view["overage_price_per_gib"] == "0.003"
    (region,) = view["regions"]
    assert region["region"] == "demo"
    assert region["pool_bytes"] == POOL_FROM_T0
    assert region["pool_gib"] == "753.47"
    assert region["used_bytes"] == 900 * GIB
    assert region["used_gib"] == "900.00"
    assert region["overage_gib"] == 146
    assert region["billed_gib"] == 100
    assert region["percent"] == 119


@with_tables
def test_bandwidth_view_of_previous_month(client: Client) -> None:
    _, token = customer(client, "may@example.com", 20_000_000, T0)
    call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)

    status, view = call(client, "GET", "/v1/bandwidth?month=2026-05", token=token)

    assert status == 200
    assert view["regions"] == []


@with_tables
def test_bandwidth_month_must_be_kept_and_valid(client: Client) -> None:
    _, token = customer(client, "months@example.com", 20_000_000, T0)

    for month in ("2026-04", "2026-07", "2026-13", "june"):
        status, error = call(client, "GET", f"/v1/bandwidth?month={month}", token=token)

        assert status == 400, month
        assert error["error"]["field"] == "month", month


@with_tables
def test_billing_views_need_authentication(client: Client) -> None:
    assert call(client, "GET", "/v1/account/runway")[0] == 401
    assert call(client, "GET", "/v1/bandwidth")[0] == 401
