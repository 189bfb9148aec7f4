"""An account's bandwidth per region for one month: pool, usage, GiB charged, percent.

The pool is prorated as billing computes it (`billing.bandwidth.pool_for`): for the
current month a running VM counts until month end. Usage is kept for the current and the
previous month only (see `billing.worker.recent_months`), so only those can be shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.billing.allocation import GIB, overage_gib
from chalicelib.billing.bandwidth import pool_for
from chalicelib.catalog import load_catalog
from chalicelib.clock import month_key, now, parse_iso, parse_month_key, previous_month_start
from chalicelib.errors import InvalidRequest
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm


def check_month(month: str) -> datetime:
    """Return the start of `month` if its usage is still kept; raise InvalidRequest otherwise."""
    start = parse_month_key(month)
    current = now()
    if month > month_key(current):
        raise InvalidRequest(f"month {month} has not started yet", field="month")
    if start < previous_month_start(current):
        raise InvalidRequest(
            f"bandwidth usage is kept for the current and the previous month only; see the ledger for {month}",
            field="month",
        )
    return start


def bandwidth_summary(account: Account, month: str) -> list[dict[str, Any]]:
    """Summarize each region the account had VMs or traffic in during `month`."""
    start = check_month(month)
    catalog = load_catalog()
    vms = list(Vm.query(account.account_id))
    regions = {key.partition("|")[0] for key in account.bandwidth_used if key.endswith(f"|{month}")}
    regions |= {vm.region for vm in vms if _existed_in(vm, start, month)}

    summary = []
    for region in sorted(regions):
        key = f"{region}|{month}"
        pool = pool_for(vms, region, start, catalog)
        used = int(account.bandwidth_used.get(key, 0))
        summary.append(
            {
                "region": region,
                "month": month,
                "pool_bytes": pool,
                "pool_gib": gib_text(pool),
                "used_bytes": used,
                "used_gib": gib_text(used),
                "overage_gib": overage_gib(used, pool),
                "billed_gib": int(account.bandwidth_billed_gib.get(key, 0)),
                "percent": used * 100 // pool if pool else None,
            }
        )
    return summary


def _existed_in(vm: Vm, start: datetime, month: str) -> bool:
    if vm.started_at is None or not vm.plan_history:
        return False
    began = month_key(parse_iso(vm.started_at)) <= month
    ended_before = vm.deleted_at is not None and parse_iso(vm.deleted_at) < start
    return began and not ended_before


def gib_text(byte_count: int) -> str:
    """Render bytes as GiB with two decimals, rounded half up: 1.5 GiB -> "1.50"."""
    hundredths = (byte_count * 100 + GIB // 2) // GIB
    return f"{hundredths // 100}.{hundredths % 100:02d}"
