"""Bandwidth overage and pool notices for one account, after its usage changed.

Overage is charged per whole GiB above the pool, each GiB once. The charge and the new
count of billed GiB are written in one transaction, conditional on the count read before,
so a repeated or concurrent run charges nothing twice. Notices at 85% and 100% are sent
once per region and month the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.billing.allocation import GIB, gib_seconds, overage_gib, pool_bytes
from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.catalog import Catalog
from chalicelib.clock import month_key, now, parse_iso, parse_month_key
from chalicelib.config import settings
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm
from chalicelib.money import format_micros, round_half_up
from chalicelib.notify.sender import send_notice

NOTICE_PERCENTS = (85, 100)


def pool_for(vms: Iterable[Vm], region: str, month: datetime, catalog: Catalog) -> int:
    """Return the account's pool in bytes for `region` and the month starting at `month`."""
    total = 0
    for vm in vms:
        if vm.region != region or not vm.plan_history or vm.started_at is None:
            continue
        deleted = parse_iso(vm.deleted_at) if vm.deleted_at else None
        total += gib_seconds(vm.plan_history, parse_iso(vm.started_at), deleted, month, _plan_gib(catalog))
    return pool_bytes(total, month)


def _plan_gib(catalog: Catalog):  # type: ignore[no-untyped-def]
    return lambda plan_id: int(catalog.any_plan(plan_id).bandwidth_gib or 0)


def settle(account_id: str, vms: list[Vm], catalog: Catalog, month: str | None = None, account: Account | None = None) -> int:
    """Charge new overage and send due notices for every region used in `month`.

    Returns the amount charged, in micro-units (negative or zero).
    """
    month = month or month_key(now())
    if account is None:
        account = Account.get(account_id, consistent_read=True)
    charged = 0
    for key, used in sorted(account.bandwidth_used.items()):
        region, _, used_month = key.partition("|")
        if used_month != month:
            continue
        pool = pool_for(vms, region, parse_month_key(month), catalog)
        charged += _charge_overage(account, key, region, used, pool)
        _notify_usage(account, key, region, used, pool)
    return charged


def _charge_overage(account: Account, key: str, region: str, used: int, pool: int) -> int:
    over = overage_gib(used, pool)
    billed = account.bandwidth_billed_gib.get(key, 0)
    if over <= billed:
        return 0

    rate = settings().bandwidth_micros_per_gib
    amount = -round_half_up(rate * (over - billed))
    previous = dict(account.bandwidth_billed_gib)
    updated = {**previous, key: over}
    line = new_line(
        account.account_id,
        moment=now(),
        kind="bandwidth",
        reference=f"{key}#{over}",
        amount_micros=amount,
        description=f"Bandwidth above the pool in {region}: {over - billed} GiB at {format_micros(round_half_up(rate), min_decimals=3)} per GiB",
        batch="bandwidth",
        region=region,
    )

    try:
        post_lines(
            account.account_id,
            [line],
            account_actions=[Account.bandwidth_billed_gib.set(updated)],
            account_condition=_unchanged(previous),
        )
    except TransactWriteError:
        logger.info("bandwidth_overage_already_charged", extra={"account_id": account.account_id, "key": key})
        return 0
    logger.info("bandwidth_overage_charged", extra={"account_id": account.account_id, "key": key, "gib": over - billed, "amount_micros": amount})
    account.bandwidth_billed_gib = updated
    return amount


def _unchanged(previous: dict[str, int]):  # type: ignore[no-untyped-def]
    if previous:
        return Account.bandwidth_billed_gib == previous
    return Account.bandwidth_billed_gib.does_not_exist() | (Account.bandwidth_billed_gib == {})


def _notify_usage(account: Account, key: str, region: str, used: int, pool: int) -> None:
    if pool <= 0:
        return
    percent = used * 100 // pool
    due = max((threshold for threshold in NOTICE_PERCENTS if percent >= threshold), default=0)
    if due <= account.bandwidth_notified.get(key, 0):
        return

    previous = dict(account.bandwidth_notified)
    updated = {**previous, key: due}
    condition = (Account.bandwidth_notified == previous) if previous else (
        Account.bandwidth_notified.does_not_exist() | (Account.bandwidth_notified == {})
    )
    try:
        account.update(actions=[Account.bandwidth_notified.set(updated)], condition=condition)
    except UpdateError:
        return
    send_notice(
        account.email,
        "bandwidth",
        {
            "percent": due,
            "region": region,
            "used_gib": used // GIB,
            "pool_gib": pool // GIB,
            "price": format_micros(round_half_up(settings().bandwidth_micros_per_gib), min_decimals=3),
            "currency": settings().currency,
        },
    )
