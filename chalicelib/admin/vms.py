"""Operator actions on VMs: listing every account's VMs, suspending and unsuspending.

An admin suspension is `suspended = "manual"`: the VM is stopped on its backend and keeps
being billed. Only an admin lifts it, because credit returning lifts "auto" suspensions only.
"""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import audit
from chalicelib.admin.paging import Page, scan_page
from chalicelib.errors import Conflict, LobsterError, NotFound
from chalicelib.log import logger
from chalicelib.models.audit import AuditEvent
from chalicelib.models.vms import Vm

SUSPENDED_MANUAL = "manual"
SUSPENDED_AUTO = "auto"
NOT_SUSPENDED = "no"
VM_KEY_NAMES = frozenset({"account_id", "vm_id"})


def find_vm(vm_id: str) -> Vm:
    """Return any account's VM by id, through the vm-id-index."""
    for vm in Vm.vm_id_index.query(vm_id, limit=1):
        return Vm.get(vm.account_id, vm.vm_id, consistent_read=True)
    raise NotFound(f"VM {vm_id!r} not found", field="vm_id")


def list_vms(limit: int, cursor: str | None, account_id: str | None = None, state: str | None = None) -> Page[Vm]:
    """List VMs of one account (a query) or of all accounts (a paged scan)."""
    condition = Vm.state == state if state else None
    if account_id:
        results = Vm.query(account_id, filter_condition=condition, limit=limit, last_evaluated_key=audit.decode_cursor(cursor, {"account_id": account_id}, frozenset({"vm_id"})))
        items = list(results)
        return Page(items, audit.encode_cursor(results.last_evaluated_key))
    return scan_page(Vm, VM_KEY_NAMES, limit=limit, cursor=cursor, filter_condition=condition)


def suspend_vm(vm_id: str, event: AuditEvent) -> tuple[Vm, str | None]:
    """Suspend a VM by hand and stop it on its backend.

    Returns the VM and the backend's error message if the stop failed. The VM stays
    suspended either way, and the error is logged so the operator can retry the stop.
    """
    vm = find_vm(vm_id)
    if audit.get_event(event.event_id) is not None:
        return vm, None
    if vm.state != "active":
        raise Conflict(f"VM {vm_id} is {vm.state}; only an active VM can be suspended", field="vm_id")
    if vm.suspended == SUSPENDED_MANUAL:
        raise Conflict(f"VM {vm_id} is already suspended by an admin", field="vm_id")

    _write_suspension(vm, vm.suspended, SUSPENDED_MANUAL, event)
    logger.info("vm_suspended", extra={"account_id": vm.account_id, "vm_id": vm_id, "by": event.actor_account_id})
    return vm, _stop_on_backend(vm)


def unsuspend_vm(vm_id: str, event: AuditEvent) -> Vm:
    """Lift an admin suspension; the customer starts the VM again when they want it."""
    vm = find_vm(vm_id)
    if audit.get_event(event.event_id) is not None:
        return vm
    if vm.suspended == SUSPENDED_AUTO:
        raise Conflict(f"VM {vm_id} is suspended for unpaid usage; it is lifted when the account's balance is positive", field="vm_id")
    if vm.suspended != SUSPENDED_MANUAL:
        raise Conflict(f"VM {vm_id} is not suspended", field="vm_id")

    _write_suspension(vm, SUSPENDED_MANUAL, NOT_SUSPENDED, event)
    logger.info("vm_unsuspended", extra={"account_id": vm.account_id, "vm_id": vm_id, "by": event.actor_account_id})
    return vm


def _write_suspension(vm: Vm, before: str, after: str, event: AuditEvent) -> None:
    def write(transaction: TransactWrite) -> None:
        transaction.update(vm, actions=[Vm.suspended.set(after)], condition=Vm.suspended == before)

    try:
        audit.write_with_event(event, write)
    except TransactWriteError:
        raise Conflict(f"VM {vm.vm_id} changed meanwhile; reload it and try again", field="vm_id") from None
    vm.refresh(consistent_read=True)


def _stop_on_backend(vm: Vm) -> str | None:
    from chalicelib.catalog import backend_for

    try:
        backend_for(vm.region).stop_vm(vm.backend_id or "")
    except LobsterError as error:
        logger.error("vm_suspend_stop_failed", extra={"vm_id": vm.vm_id, "region": vm.region, "error": error.message})
        return error.message
    vm.update(actions=[Vm.power.set("offline")])
    return None
