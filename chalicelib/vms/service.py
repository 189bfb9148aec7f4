"""VM life cycle on top of a region's backend.

A VM item exists before the backend is asked to create it, so a crash never leaves a
running VM unknown to billing. A VM is charged only once the backend reports it running.
A deletion charges the last partial hour at once and keeps the VM visible, marked
"deleting", until the backend confirms the delete.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.backends.base import VmSpec, VmState
from chalicelib.billing.hours import hour_start, hours_ending_in, owed_hour_count, plan_at
from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.billing.shards import shard_for
from chalicelib.catalog import Catalog, backend_for, load_catalog
from chalicelib.clock import HOUR, hour_key, iso, now, parse_hour_key, parse_iso
from chalicelib.config import settings
from chalicelib.errors import (
    BackendError,
    InsufficientCredit,
    InvalidRequest,
    LimitReached,
    LobsterError,
    NotFound,
    VmSuspended,
)
from chalicelib.images.service import image_backend_id
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
from chalicelib.money import format_micros
from chalicelib.sshkeys.service import public_key_for

VM_ID_BYTES = 6
VM_ID_PATTERN = re.compile(r"^vm_[0-9a-f]{12}$")
MAX_NAME_LENGTH = 64
# Letters, digits, dots and hyphens, starting with a letter or digit: a valid hostname label set.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
LIVE_STATES = ("provisioning", "active", "deleting")
# Rounds of the VM limit check when concurrent creations compete for the last places.
# The wait before round n + 1 is random, up to n times LIMIT_RETRY_JITTER_SECONDS.
LIMIT_CHECK_ATTEMPTS = 4
LIMIT_RETRY_JITTER_SECONDS = 0.25
BATCH_FINAL = "final"
BATCH_ACTIVATION = "activation"
FINAL_LINES_PER_TRANSACTION = 90


def validate_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise InvalidRequest(
            f"{field} must be 1 to {MAX_NAME_LENGTH} letters, digits, dots or hyphens, starting with a letter or digit",
            field=field,
        )
    return name


def list_vms(account_id: str) -> list[Vm]:
    return [vm for vm in Vm.query(account_id) if vm.state != "deleted"]


def get_vm(account_id: str, vm_id: str) -> Vm:
    if not VM_ID_PATTERN.match(vm_id):
        raise NotFound(f"VM {vm_id[:64]!r} not found", field="vm_id")
    try:
        return Vm.get(account_id, vm_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"VM {vm_id!r} not found", field="vm_id") from None


def create_vm(
    account: Account, name: str, region_id: str, plan_id: str, image_id: str, ssh_key_id: str | None = None
) -> Vm:
    """Check the request, record the VM, then ask the region's backend to create it.

    `ssh_key_id` names one of the account's stored SSH keys to install on the VM.
    """
    catalog = load_catalog()
    name = validate_name(name)
    region = catalog.region(region_id)
    plan = catalog.plan(plan_id)
    if region_id not in plan.region_ids:
        raise InvalidRequest(f"plan {plan_id!r} is not offered in region {region_id!r}", field="plan")
    image_backend = image_backend_id(account.account_id, region_id, image_id)
    public_key = public_key_for(account.account_id, ssh_key_id) if ssh_key_id else None
    _check_credit_and_limit(account)

    vm = Vm(
        account.account_id,
        "vm_" + secrets.token_hex(VM_ID_BYTES),
        name=name,
        region=region.item_id,
        plan_id=plan_id,
        image_id=image_id,
        state="provisioning",
        created_at=iso(now()),
        billing_shard=shard_for(account.account_id),
    )
    vm.billing_sort = f"{account.account_id}#{vm.vm_id}"
    vm.save()
    _enforce_vm_limit(account, vm)

    spec = VmSpec(
        name=name,
        plan_backend_id=plan.region_ids[region_id],
        image_backend_id=image_backend,
        ram_mb=int(plan.ram_mb or 0),
        vcpus=int(plan.vcpus or 0),
        disk_gb=int(plan.disk_gb or 0),
        ssh_public_key=public_key,
    )
    try:
        created = backend_for(region_id).create_vm(spec)
    except LobsterError as error:
        _mark_failed(vm, error)
        raise
    # Login details are stored at once: a password generated at creation exists nowhere else.
    actions: list[Action] = [Vm.backend_id.set(created.backend_id), Vm.started_at.set(iso(now().replace(microsecond=0)))]
    if created.login_details:
        actions.append(Vm.login_details.set(created.login_details))
    vm.update(actions=actions)
    logger.info("vm_created", extra={"account_id": account.account_id, "vm_id": vm.vm_id, "region": region_id})
    return refresh_vm(vm)


def reimage_vm(vm: Vm, image_id: str, ssh_public_key: str | None = None) -> Vm:
    """Reinstall an active VM from a public image of its region or one of the owner's images there.

    The provider's new login details replace the stored ones; when it reports none, the
    details from creation still apply and are kept.
    """
    if vm.state != "active":
        raise InvalidRequest(f"VM {vm.vm_id} is {vm.state}; only an active VM can be reimaged", field="vm_id")
    if vm.suspended != "no":
        raise VmSuspended(f"VM {vm.vm_id} is suspended; only stop and delete are allowed")
    image_backend = image_backend_id(vm.account_id, vm.region, image_id)
    login = backend_for(vm.region).reimage_vm(vm.backend_id or "", image_backend, ssh_public_key)

    actions: list[Action] = [Vm.image_id.set(image_id)]
    if login:
        actions.append(Vm.login_details.set(login))
    vm.update(actions=actions)
    logger.info("vm_reimaged", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "image": image_id})
    return vm


def _check_credit_and_limit(account: Account) -> None:
    minimum = settings().minimum_credit_micros
    if account.balance_micros < minimum:
        raise InsufficientCredit(f"creating a VM needs at least {format_micros(minimum)} of credit")
    if len(list_vms(account.account_id)) >= account.vm_limit:
        raise LimitReached(f"this account may have at most {account.vm_limit} VMs; contact support to raise it")


def _enforce_vm_limit(account: Account, vm: Vm) -> None:
    """Count the account's live VMs again after recording `vm`, and withdraw it if the
    count went over the limit.

    The limit is never exceeded, because each request counts the records of the others. When
    only concurrent creations crowd the last places, each withdraws, waits a random moment and
    tries again, so one of them usually gets the place instead of all being refused.
    """
    for attempt in range(LIMIT_CHECK_ATTEMPTS):
        live = [item for item in Vm.query(account.account_id, consistent_read=True) if item.state in LIVE_STATES]
        if len(live) <= account.vm_limit:
            return
        vm.delete()

        # VMs the backend already created hold their places; records without a backend id
        # are other requests in the same race, which may withdraw too.
        settled = sum(1 for item in live if item.vm_id != vm.vm_id and item.backend_id)
        if settled >= account.vm_limit or attempt == LIMIT_CHECK_ATTEMPTS - 1:
            break
        time.sleep(random.uniform(0, LIMIT_RETRY_JITTER_SECONDS * (attempt + 1)))
        vm.save()
    raise LimitReached(f"this account may have at most {account.vm_limit} VMs; contact support to raise it")


def _mark_failed(vm: Vm, error: LobsterError) -> None:
    vm.update(
        actions=[
            Vm.state.set("error"),
            Vm.backend_error.set(error.message),
            Vm.billing_shard.remove(),
            Vm.billing_sort.remove(),
        ]
    )
    logger.warning("vm_create_failed", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "error": error.message})


def refresh_vm(vm: Vm) -> Vm:
    """Update a provisioning VM from its backend; it becomes billable once running.

    A backend that reports an error before the VM ever ran leaves it uncharged.
    """
    if vm.state != "provisioning" or vm.backend_id is None:
        return vm
    try:
        info = backend_for(vm.region).get_vm(vm.backend_id)
    except LobsterError as error:
        logger.warning("vm_refresh_failed", extra={"vm_id": vm.vm_id, "error": error.message})
        return vm

    if info.state in (VmState.RUNNING, VmState.STOPPED):
        _activate(vm, info.state, [a.__dict__ for a in info.addresses], info.login_details)
    elif info.state == VmState.ERROR:
        _mark_failed(vm, BackendError("the provider could not create this VM"))
    return vm


def _activate(vm: Vm, state: VmState, addresses: list[dict[str, Any]], login: str | None) -> None:
    """Mark the VM active and charge at once every hour that ended before the hourly run
    can see it: hours that ended while it provisioned, or that the cursor already passed.
    """
    started = vm.started_at or iso(now().replace(microsecond=0))
    account = Account.get(vm.account_id, consistent_read=True)
    hourly_from = max(now(), parse_hour_key(account.billed_through) + HOUR)
    actions: list[Action] = [
        Vm.state.set("active"),
        Vm.power.set("online" if state == VmState.RUNNING else "offline"),
        Vm.started_at.set(started),
        Vm.hourly_from.set(iso(hourly_from)),
        Vm.plan_history.set([{"plan": vm.plan_id, "at": started, "price_from": started}]),
        Vm.addresses.set(addresses),
    ]
    # Most providers report no login details after creation; the ones stored then stay.
    if login:
        actions.append(Vm.login_details.set(login))
    try:
        vm.update(actions=actions, condition=Vm.state == "provisioning")
    except UpdateError:
        vm.refresh(consistent_read=True)
        return
    logger.info("vm_active", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "started_at": started})

    ended = _hours_ended_by(parse_iso(started), hourly_from)
    _post_vm_hours(vm, range(ended), BATCH_ACTIVATION, load_catalog())


def power_action(account: Account, vm: Vm, action: str) -> Vm:
    """Start, stop or reboot a VM; a suspended VM may only be stopped."""
    if vm.state != "active":
        raise InvalidRequest(f"VM {vm.vm_id} is {vm.state}; power actions need an active VM", field="vm_id")
    if vm.suspended != "no" and action != "stop":
        raise VmSuspended(f"VM {vm.vm_id} is suspended; only stop and delete are allowed")

    backend = backend_for(vm.region)
    call = {"start": backend.start_vm, "stop": backend.stop_vm, "reboot": backend.reboot_vm}[action]
    call(vm.backend_id or "")
    vm.update(actions=[Vm.power.set("offline" if action == "stop" else "online")])
    logger.info("vm_power_action", extra={"account_id": account.account_id, "vm_id": vm.vm_id, "action": action})
    return vm


def resize_vm(vm: Vm, plan_id: str) -> Vm:
    """Move a VM to another plan: its price changes from its next VM-hour, its bandwidth
    allocation from this moment."""
    if vm.state != "active" or not vm.plan_history:
        raise InvalidRequest(f"VM {vm.vm_id} is {vm.state}; only an active VM can be resized", field="vm_id")
    if vm.suspended != "no":
        raise VmSuspended(f"VM {vm.vm_id} is suspended; only stop and delete are allowed")
    catalog = load_catalog()
    plan = catalog.plan(plan_id)
    if vm.region not in plan.region_ids:
        raise InvalidRequest(f"plan {plan_id!r} is not offered in region {vm.region!r}", field="plan")

    backend_for(vm.region).resize_vm(vm.backend_id or "", plan.region_ids[vm.region])
    moment = now().replace(microsecond=0)
    started = parse_iso(vm.started_at or iso(moment))
    next_hour = hour_start(started, _hours_ended_by(started, moment) + 1)
    history = [*vm.plan_history, {"plan": plan_id, "at": iso(moment), "price_from": iso(next_hour)}]
    vm.update(actions=[Vm.plan_id.set(plan_id), Vm.plan_history.set(history)])
    logger.info("vm_resized", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "plan": plan_id})
    return vm


def delete_vm(vm: Vm) -> Vm:
    """Charge the VM's remaining hours, then delete it on the backend.

    If the backend delete fails the VM stays "deleting" and visible, and the hourly
    run retries the delete, so no running VM is left unbilled and unknown.
    """
    if vm.state == "deleted":
        return vm
    if vm.deleted_at is None:
        try:
            vm.update(actions=[Vm.deleted_at.set(iso(now())), Vm.state.set("deleting")], condition=Vm.deleted_at.does_not_exist())
        except UpdateError:
            vm.refresh(consistent_read=True)

    charge_final_hours(vm)
    return retry_backend_delete(vm)


def charge_final_hours(vm: Vm, catalog: Catalog | None = None) -> int:
    """Post every owed VM-hour that the hourly run has not reached; return the amount."""
    if not vm.plan_history or vm.started_at is None or vm.deleted_at is None:
        return 0
    catalog = catalog or load_catalog()
    account = Account.get(vm.account_id, consistent_read=True)
    started, deleted = parse_iso(vm.started_at), parse_iso(vm.deleted_at)
    minimum = settings().minimum_billed_hours

    cursor_end = parse_hour_key(account.billed_through) + HOUR
    far_end = started + (owed_hour_count(started, deleted, minimum) + 1) * HOUR
    indexes = hours_ending_in(started, cursor_end, far_end, deleted, minimum)
    total = _post_vm_hours(vm, indexes, BATCH_FINAL, catalog)
    if total:
        logger.info("vm_final_charge", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "amount_micros": total})
    return total


def _hours_ended_by(started: datetime, moment: datetime) -> int:
    return max(0, int((moment - started).total_seconds()) // 3600)


def _post_vm_hours(vm: Vm, indexes: range, batch: str, catalog: Catalog) -> int:
    """Post the given VM-hours in transactions of at most FINAL_LINES_PER_TRANSACTION lines."""
    started = parse_iso(vm.started_at or "")
    lines = [_vm_hour_line(vm, index, started, catalog, batch) for index in indexes]
    total = 0
    for offset in range(0, len(lines), FINAL_LINES_PER_TRANSACTION):
        total += post_lines(vm.account_id, lines[offset : offset + FINAL_LINES_PER_TRANSACTION]).amount_micros
    return total


def _vm_hour_line(vm: Vm, index: int, started: datetime, catalog: Catalog, batch: str) -> LedgerLine:
    start = hour_start(started, index)
    plan_id = plan_at(vm.plan_history, start)
    return new_line(
        vm.account_id,
        moment=start,
        kind="vm",
        reference=vm.vm_id,
        amount_micros=-catalog.plan_price_at(plan_id, start),
        description=f"VM {vm.name}, plan {catalog.any_plan(plan_id).name}, hour from {iso(start)}",
        batch=batch,
        period=hour_key(start + HOUR - HOUR / 3600),
        vm_id=vm.vm_id,
        region=vm.region,
    )


def retry_backend_delete(vm: Vm) -> Vm:
    if vm.backend_id is None:
        vm.update(actions=[Vm.state.set("deleted")])
        return vm
    try:
        backend_for(vm.region).delete_vm(vm.backend_id)
    except NotFound:
        pass
    except LobsterError as error:
        vm.update(actions=[Vm.delete_attempts.add(1), Vm.backend_error.set(error.message)])
        logger.error("vm_delete_failed", extra={"vm_id": vm.vm_id, "region": vm.region, "error": error.message})
        return vm
    vm.update(actions=[Vm.state.set("deleted"), Vm.backend_error.remove()])
    logger.info("vm_deleted", extra={"account_id": vm.account_id, "vm_id": vm.vm_id})
    return vm


def hourly_price(vm: Vm, catalog: Catalog, moment: datetime) -> int:
    plan_id = plan_at(vm.plan_history, moment) if vm.plan_history else vm.plan_id
    return catalog.plan_price_at(plan_id, moment)


def vm_json(vm: Vm, catalog: Catalog) -> dict[str, Any]:
    from chalicelib.money import money_json

    moment = now()
    capabilities: list[str] = []
    region = catalog.regions.get(vm.region)
    if region is not None:
        try:
            capabilities = sorted(backend_for(vm.region).CAPABILITIES)
        except LobsterError:
            capabilities = []
    return {
        "id": vm.vm_id,
        "name": vm.name,
        "region": vm.region,
        "plan": vm.plan_id,
        "image": vm.image_id,
        "state": vm.state,
        "power": vm.power,
        "suspended": vm.suspended,
        "addresses": vm.addresses,
        "login_details": vm.login_details,
        "created_at": vm.created_at,
        "billing_started_at": vm.started_at if vm.state != "provisioning" else None,
        "deleted_at": vm.deleted_at,
        "error": vm.backend_error,
        "price_hourly": money_json(hourly_price(vm, catalog, moment)),
        "capabilities": capabilities,
    }
