"""An account's current hourly cost: its running VMs at today's prices plus image storage."""

from __future__ import annotations

from chalicelib.billing.hours import plan_at
from chalicelib.catalog import load_catalog
from chalicelib.clock import now
from chalicelib.config import settings
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm
from chalicelib.money import round_half_up

BYTES_PER_GB = 10**9


def hourly_cost(account_id: str) -> int:
    catalog = load_catalog()
    moment = now()
    total = 0
    for vm in Vm.query(account_id):
        if vm.state in ("active", "deleting") and vm.plan_history and vm.deleted_at is None:
            total += catalog.plan_price_at(plan_at(vm.plan_history, moment), moment)

    stored = sum(image.size_bytes for image in Image.query(account_id) if image.deleted_at is None)
    total += round_half_up(settings().storage_micros_per_gb_hour * stored / BYTES_PER_GB)
    return total
