"""The monthly bandwidth rollover: settles the closing month and starts new pools.

For each account it first bills every hour of the closing month, which is a no-op when the
hourly run did. It then charges the overage left on the month's final pools. Last, it removes
from the billing index the VMs and images whose last hour was billed before the new month. Running
it twice changes nothing: every step is conditional.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.billing.bandwidth import settle
from chalicelib.billing.worker import bill_account, collect_shard
from chalicelib.catalog import load_catalog
from chalicelib.clock import HOUR, month_key, next_month_start, now, parse_iso, previous_month_start
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm


def closing_month(moment: datetime) -> datetime:
    """Return the month a rollover running at `moment` settles: the one before it."""
    return previous_month_start(moment)


def roll_over_shard(shard: str, month: datetime) -> int:
    catalog = load_catalog()
    month_end = next_month_start(month)
    last_hour = month_end - HOUR
    work_by_account = collect_shard(shard)

    for account_id, work in work_by_account.items():
        if last_hour + HOUR <= now():
            bill_account(account_id, work, last_hour, catalog)
        settle(account_id, work.vms, catalog, month_key(month))
        _drop_finished(work.vms, work.images, month_end)
    return len(work_by_account)


def _drop_finished(vms: list[Vm], images: list[Image], month_end: datetime) -> None:
    """Remove from the billing index what ended before `month_end` and is fully charged."""
    for vm in vms:
        if vm.state == "deleted" and vm.deleted_at and parse_iso(vm.deleted_at) < month_end:
            vm.update(actions=[Vm.billing_shard.remove(), Vm.billing_sort.remove()])
    for image in images:
        if image.deleted_at and parse_iso(image.deleted_at) + HOUR <= month_end:
            image.update(actions=[Image.billing_shard.remove(), Image.billing_sort.remove()])
