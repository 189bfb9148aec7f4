"""Regions, plans and public images as read by the API and the billing run.

The catalog is small; each process keeps it for CACHE_SECONDS so the hourly run reads it
once per invocation rather than once per VM.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.backends.base import Backend
from chalicelib.backends.registry import create_backend
from chalicelib.billing.hours import price_at
from chalicelib.errors import InvalidRequest
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.secrets import get_secret

CACHE_SECONDS = 60


@dataclass(frozen=True)
class Catalog:
    regions: dict[str, CatalogItem]
    plans: dict[str, CatalogItem]
    images: dict[str, CatalogItem]

    def region(self, region_id: str, *, field: str = "region") -> CatalogItem:
        region = self.regions.get(region_id)
        if region is None or not region.enabled:
            raise InvalidRequest(f"region {region_id!r} does not exist or is disabled", field=field)
        return region

    def plan(self, plan_id: str, *, field: str = "plan") -> CatalogItem:
        plan = self.plans.get(plan_id)
        if plan is None or not plan.enabled:
            raise InvalidRequest(f"plan {plan_id!r} does not exist or is disabled", field=field)
        return plan

    def any_plan(self, plan_id: str) -> CatalogItem:
        """Return a plan even when disabled: existing VMs keep being billed on it."""
        plan = self.plans.get(plan_id)
        if plan is None:
            raise LookupError(f"plan {plan_id!r} is missing from the catalog")
        return plan

    def plan_price_at(self, plan_id: str, moment: datetime) -> int:
        return price_at(self.any_plan(plan_id).prices, moment)

    def plan_price_now(self, plan_id: str, moment: datetime) -> int:
        return self.plan_price_at(plan_id, moment)


_cached: tuple[float, Catalog] | None = None
_load_lock = threading.Lock()
_backends: dict[str, Backend] = {}


def load_catalog(*, fresh: bool = False) -> Catalog:
    """Return the catalog from a cache kept CACHE_SECONDS. Threads that find the cache empty at
    the same time read the catalog once."""
    global _cached
    with _load_lock:
        if not fresh and _cached is not None and _cached[0] > time.monotonic():
            return _cached[1]

        groups: dict[str, dict[str, CatalogItem]] = {KIND_REGION: {}, KIND_PLAN: {}, KIND_IMAGE: {}}
        for kind, items in groups.items():
            for item in CatalogItem.query(kind):
                items[item.item_id] = item

        catalog = Catalog(regions=groups[KIND_REGION], plans=groups[KIND_PLAN], images=groups[KIND_IMAGE])
        _cached = (time.monotonic() + CACHE_SECONDS, catalog)
        return catalog


def invalidate() -> None:
    global _cached
    _cached = None
    _backends.clear()


def backend_for(region_id: str) -> Backend:
    """Return the backend driving `region_id`, built once per process."""
    backend = _backends.get(region_id)
    if backend is not None:
        return backend

    region = load_catalog().regions.get(region_id)
    if region is None:
        raise LookupError(f"region {region_id!r} is missing from the catalog")
    backend = create_backend(region.backend or "", region_id, region.settings, get_secret(region.secret_ref))
    _backends[region_id] = backend
    return backend


def plan_json(plan: CatalogItem, moment: datetime) -> dict[str, Any]:
    from chalicelib.money import money_json

    hourly = price_at(plan.prices, moment)
    return {
        "id": plan.item_id,
        "name": plan.name,
        "ram_mb": plan.ram_mb,
        "vcpus": plan.vcpus,
        "disk_gb": plan.disk_gb,
        "bandwidth_gib": plan.bandwidth_gib,
        "price_hourly": money_json(hourly),
        "price_monthly_estimate": money_json(hourly * 730),
        "regions": sorted(plan.region_ids),
    }
