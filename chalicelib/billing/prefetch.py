"""The hourly worker's reads before it bills a shard: the accounts, in BatchGetItem calls, and
the VMs' traffic counters, in one backend call per region where the backend can batch them.

A prefetched account is only a starting point: the cursor's compare-and-set still guards
every charge, and a failed compare-and-set makes the worker read the account again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pynamodb.exceptions import PynamoDBException

from chalicelib.catalog import backend_for
from chalicelib.errors import LobsterError, NotSupported
from chalicelib.log import logger, metrics
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm

# A VM id maps to its counter in bytes, or to None when the reading failed and nothing is
# stored for it this hour. A VM missing from the map was not read yet.
Readings = dict[str, int | None]


def read_accounts(account_ids: Iterable[str]) -> dict[str, Account]:
    """Read accounts with strongly consistent BatchGetItem calls of up to 100 keys.

    Accounts that do not exist are left out. If a batch call fails, the error is logged and
    an empty map is returned, so each account is read on its own when it is billed.
    """
    keys = list(account_ids)
    if not keys:
        return {}
    try:
        return {account.account_id: account for account in Account.batch_get(keys, consistent_read=True)}
    except PynamoDBException as error:
        logger.warning("account_batch_read_failed", extra={"accounts": len(keys), "error": str(error)})
        return {}


def read_traffic_batches(vms: Iterable[Vm]) -> Readings:
    """Read the traffic counters of `vms`, in one backend call per region that can batch them.

    VMs of a region whose backend has no batch reading are left out, so the caller reads
    them one by one. A VM the backend did not report, or whose region's call failed, maps
    to None: the next successful reading covers the gap.
    """
    by_region: dict[str, list[Vm]] = defaultdict(list)
    for vm in vms:
        if vm.backend_id is not None:
            by_region[vm.region].append(vm)

    readings: Readings = {}
    for region, region_vms in by_region.items():
        readings.update(_read_region(region, region_vms))
    return readings


def _read_region(region: str, vms: list[Vm]) -> Readings:
    try:
        backend = backend_for(region)
        if not backend.supports("traffic"):
            return {}
        counters = backend.read_traffic_batch([vm.backend_id or "" for vm in vms])
    except (NotSupported, LookupError):
        return {}  # read one by one, so a region missing from the catalog fails its accounts alone
    except LobsterError as error:
        logger.error("traffic_batch_reading_failed", extra={"region": region, "vms": len(vms), "error": error.message})
        metrics.add_metric(name="TrafficReadingFailures", unit="Count", value=len(vms))
        return {vm.vm_id: None for vm in vms}

    readings: Readings = {}
    for vm in vms:
        reading = counters.get(vm.backend_id or "")
        if reading is None:
            _log_failed_reading(vm, "the backend reported no counter for this VM")
        readings[vm.vm_id] = reading
    return readings


def read_vm_traffic(vm: Vm) -> int | None:
    """Read one VM's traffic counter; a failed reading stores nothing."""
    if vm.backend_id is None:
        return None
    try:
        backend = backend_for(vm.region)
        if not backend.supports("traffic"):
            return None
        return backend.read_traffic(vm.backend_id)
    except LobsterError as error:
        _log_failed_reading(vm, error.message)
        return None


def _log_failed_reading(vm: Vm, message: str) -> None:
    logger.error("traffic_reading_failed", extra={"vm_id": vm.vm_id, "region": vm.region, "error": message})
    metrics.add_metric(name="TrafficReadingFailures", unit="Count", value=1)
