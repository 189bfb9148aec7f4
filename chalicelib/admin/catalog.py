"""Operator changes to plans and public images.

A price change appends `[effective_from, micros]` to the plan's price history and never
rewrites it, so every hour that started before `effective_from` keeps its price. Turning
a plan or image off hides it from new VMs only: existing VMs keep running and being billed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import audit
from chalicelib.catalog import invalidate
from chalicelib.clock import iso, now, parse_iso
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.models.audit import AuditEvent
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem

MAX_BACKEND_ID_LENGTH = 128
MAX_NAME_LENGTH = 100
# Upper bounds that catch a typo (GB for MB) rather than any real offer.
SPEC_LIMITS = {"ram_mb": 16 * 1024 * 1024, "vcpus": 1024, "disk_gb": 1024 * 1024, "bandwidth_gib": 10 * 1024 * 1024}
PLAN_SPEC_FIELDS = ("name", *SPEC_LIMITS)
KIND_FIELDS = {KIND_PLAN: "plan_id", KIND_IMAGE: "image_id", KIND_REGION: "region_id"}


def get_item(kind: str, item_id: str) -> CatalogItem:
    try:
        return CatalogItem.get(kind, item_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"{kind} {item_id!r} not found", field=KIND_FIELDS[kind]) from None


def list_items(kind: str) -> list[CatalogItem]:
    return sorted(CatalogItem.query(kind, consistent_read=True), key=lambda item: item.item_id)


def create_plan(plan_id: str, specs: dict[str, Any], price_micros: int, enabled: bool, event: AuditEvent) -> CatalogItem:
    """Store a new plan; it is offered in a region once it has that region's backend id."""
    check_price(price_micros)
    checked = check_specs(specs, required=True)
    plan = CatalogItem(
        KIND_PLAN,
        plan_id,
        enabled=enabled,
        prices=[[iso(now().replace(microsecond=0)), price_micros]],
        region_ids={},
        **checked,
    )
    _save_new(plan, event, "id")
    logger.info("plan_created", extra={"plan_id": plan_id, "price_micros": price_micros})
    return plan


def set_plan_price(plan_id: str, price_micros: int, effective_from: datetime | None, event: AuditEvent) -> CatalogItem:
    """Append a price that applies to VM-hours starting at or after `effective_from` (default now).

    The moment may not be in the past, where it would reprice hours that already began,
    and must be later than the newest price's.
    """
    check_price(price_micros)
    plan = get_item(KIND_PLAN, plan_id)
    if audit.get_event(event.event_id) is not None:
        return plan
    moment = (effective_from or now()).replace(microsecond=0)
    if moment < now().replace(microsecond=0):
        raise InvalidRequest("effective_from must not be in the past, because hours that began keep their price", field="effective_from")
    newest = max((parse_iso(entry[0]) for entry in plan.prices), default=None)
    if newest is not None and moment <= newest:
        raise InvalidRequest(f"effective_from must be later than the newest price's, {iso(newest)}", field="effective_from")

    history: Any = [*plan.prices, [iso(moment), price_micros]]
    _update(plan, [CatalogItem.prices.set(history)], CatalogItem.prices == plan.prices, event)
    logger.info("plan_price_set", extra={"plan_id": plan_id, "price_micros": price_micros, "effective_from": iso(moment)})
    return get_item(KIND_PLAN, plan_id)


def edit_plan_specs(plan_id: str, changes: dict[str, Any], event: AuditEvent) -> CatalogItem:
    """Change a plan's name or the specs it shows.

    The backend id of each region decides what a VM gets, and the specs only describe it.
    `bandwidth_gib` sets the pool that VMs on this plan add from now on.
    """
    checked = check_specs(changes, required=False)
    if not checked:
        raise InvalidRequest(f"send at least one of {', '.join(PLAN_SPEC_FIELDS)}", field="name")
    plan = get_item(KIND_PLAN, plan_id)

    actions = [getattr(CatalogItem, name).set(value) for name, value in checked.items()]
    _update(plan, actions, CatalogItem.item_id.exists(), event)
    logger.info("plan_specs_edited", extra={"plan_id": plan_id, "fields": sorted(checked)})
    return get_item(KIND_PLAN, plan_id)


def set_plan_region(plan_id: str, region_id: str, backend_id: str | None, event: AuditEvent) -> CatalogItem:
    """Set the backend's plan id of `region_id`, or remove the region from the plan with None.

    Removing a region stops new VMs there; existing VMs keep their backend VM and price.
    """
    plan = get_item(KIND_PLAN, plan_id)
    if audit.get_event(event.event_id) is not None:
        return plan
    get_item(KIND_REGION, region_id)
    if backend_id is not None:
        backend_id = _check_backend_id(backend_id)
    elif region_id not in plan.region_ids:
        raise NotFound(f"plan {plan_id} has no backend id for region {region_id!r}", field="region_id")

    current: dict[str, str] = plan.region_ids  # type: ignore[assignment]
    region_ids: Any = {key: value for key, value in current.items() if key != region_id}
    if backend_id is not None:
        region_ids[region_id] = backend_id
    _update(plan, [CatalogItem.region_ids.set(region_ids)], CatalogItem.region_ids == plan.region_ids, event)
    logger.info("plan_region_set", extra={"plan_id": plan_id, "region_id": region_id, "removed": backend_id is None})
    return get_item(KIND_PLAN, plan_id)


def add_image(image_id: str, name: str, region_id: str, backend_id: str, enabled: bool, event: AuditEvent) -> CatalogItem:
    get_item(KIND_REGION, region_id)
    image = CatalogItem(
        KIND_IMAGE,
        image_id,
        name=_check_name(name),
        enabled=enabled,
        region=region_id,
        backend_id=_check_backend_id(backend_id),
    )
    _save_new(image, event, "id")
    logger.info("image_added", extra={"image_id": image_id, "region_id": region_id})
    return image


def set_enabled(kind: str, item_id: str, enabled: bool, event: AuditEvent) -> CatalogItem:
    """Offer a plan or public image to new VMs, or stop offering it.

    A plan needs a price before it is offered.
    """
    item = get_item(kind, item_id)
    if enabled and kind == KIND_PLAN and not item.prices:
        raise Conflict(f"plan {item_id} has no price; set one before enabling it", field="plan_id")
    _update(item, [CatalogItem.enabled.set(enabled)], CatalogItem.item_id.exists(), event)
    logger.info("catalog_item_enabled" if enabled else "catalog_item_disabled", extra={"kind": kind, "item_id": item_id})
    return get_item(kind, item_id)


def check_price(price_micros: int) -> None:
    if price_micros <= 0:
        raise InvalidRequest("price_hourly must be more than zero", field="price_hourly")


def check_specs(values: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """Return the plan fields in `values`, checked; with `required`, all must be present."""
    checked: dict[str, Any] = {}
    for name in PLAN_SPEC_FIELDS:
        if name not in values or values[name] is None:
            if required:
                raise InvalidRequest(f"{name} is required", field=name)
            continue
        value = values[name]
        if name == "name":
            checked[name] = _check_name(value)
            continue
        if not 1 <= value <= SPEC_LIMITS[name]:
            raise InvalidRequest(f"{name} must be between 1 and {SPEC_LIMITS[name]}", field=name)
        checked[name] = value
    return checked


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return name


def _check_backend_id(backend_id: str) -> str:
    backend_id = backend_id.strip()
    if not backend_id or len(backend_id) > MAX_BACKEND_ID_LENGTH:
        raise InvalidRequest(f"backend_id must be 1 to {MAX_BACKEND_ID_LENGTH} characters", field="backend_id")
    return backend_id


def _save_new(item: CatalogItem, event: AuditEvent, field: str) -> None:
    def write(transaction: TransactWrite) -> None:
        transaction.save(item, condition=CatalogItem.item_id.does_not_exist())

    try:
        audit.write_with_event(event, write)
    except TransactWriteError:
        raise Conflict(f"{item.kind} {item.item_id!r} already exists", field=field) from None
    invalidate()


def _update(item: CatalogItem, actions: list[Any], condition: Any, event: AuditEvent) -> None:
    def write(transaction: TransactWrite) -> None:
        transaction.update(item, actions=actions, condition=condition)

    try:
        audit.write_with_event(event, write)
    except TransactWriteError:
        raise Conflict(f"{item.kind} {item.item_id!r} changed meanwhile; reload it and try again", field=KIND_FIELDS[item.kind]) from None
    invalidate()
