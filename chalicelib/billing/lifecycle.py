"""The credit life-cycle: low-credit notices, suspension, termination, and lifting
automatic suspensions when credit returns.

Each step is a conditional write on the account or the VM, so a job that runs twice
takes each step once. Admin suspensions ("manual") are never lifted automatically.
"""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.clock import iso, now, parse_iso
from chalicelib.config import settings
from chalicelib.errors import LobsterError
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm
from chalicelib.money import format_micros
from chalicelib.notify.sender import send_notice

RUNWAY_NOTICE_HOURS = 168  # a notice when credit covers less than a week of current cost
NOTICE_INTERVAL = timedelta(hours=24)
NOTICES_BEFORE_SUSPENSION = 5
NOTICES_BEFORE_TERMINATION = 10
TERMINATION_DEBT_HOURS = 168  # terminate once the debt exceeds a week of current cost


def review(account_id: str, hourly_cost: int, account: Account | None = None) -> str | None:
    """Take the next life-cycle step the account's balance calls for; return its name.

    `account` is a copy the caller read earlier. Suspension and termination act only on a
    consistent read, so they see a payment that landed after the copy was read.
    """
    if account is None or _may_enforce(account):
        account = Account.get(account_id, consistent_read=True)
    balance = account.balance_micros

    if hourly_cost <= 0:
        return None
    if balance >= RUNWAY_NOTICE_HOURS * hourly_cost:
        if account.low_credit_notices:
            _reset_notices(account)
        return None

    notices = account.low_credit_notices or 0
    if balance < -TERMINATION_DEBT_HOURS * hourly_cost and notices >= NOTICES_BEFORE_TERMINATION:
        return "terminated" if terminate(account) else None
    if balance < 0 and notices >= NOTICES_BEFORE_SUSPENSION and suspend(account):
        return "suspended"
    return "low_credit" if _send_low_credit_notice(account, hourly_cost) else None


def _may_enforce(account: Account) -> bool:
    return account.balance_micros < 0 and (account.low_credit_notices or 0) >= NOTICES_BEFORE_SUSPENSION


def _context(account: Account, **extra: object) -> dict[str, object]:
    return {"balance": format_micros(account.balance_micros), "currency": settings().currency, **extra}


def _reset_notices(account: Account) -> None:
    try:
        account.update(actions=[Account.low_credit_notices.set(0)], condition=Account.low_credit_notices > 0)
    except UpdateError:
        return


def _send_low_credit_notice(account: Account, hourly_cost: int) -> bool:
    """Send at most one low-credit notice per NOTICE_INTERVAL."""
    last = account.last_notice_at
    if last is not None and now() - parse_iso(last) < NOTICE_INTERVAL:
        return False
    condition = Account.last_notice_at == last if last is not None else Account.last_notice_at.does_not_exist()
    try:
        account.update(actions=[Account.last_notice_at.set(iso(now())), Account.low_credit_notices.add(1)], condition=condition)
    except UpdateError:
        return False

    logger.info("low_credit_notice", extra={"account_id": account.account_id, "notices": account.low_credit_notices})
    send_notice(account.email, "low_credit", _context(account, hourly_cost=format_micros(hourly_cost)))
    return True


def suspend(account: Account) -> bool:
    """Stop and suspend every running VM of the account; True if any VM was suspended now.

    A payment whose own check ran before the VMs were marked would leave them suspended, so
    the balance is checked again afterwards and a positive one lifts the suspension at once.
    """
    suspended = []
    for vm in Vm.query(account.account_id, filter_condition=Vm.suspended == "no"):
        if vm.state != "active":
            continue
        try:
            vm.update(actions=[Vm.suspended.set("auto")], condition=Vm.suspended == "no")
        except UpdateError:
            continue
        suspended.append(vm.vm_id)
        _stop_on_backend(vm)
        logger.info("vm_suspended", extra={"account_id": account.account_id, "vm_id": vm.vm_id})
    if not suspended:
        return False

    send_notice(account.email, "suspended", _context(account))
    on_credit(account.account_id)
    return True


def _stop_on_backend(vm: Vm) -> None:
    from chalicelib.catalog import backend_for

    try:
        backend_for(vm.region).stop_vm(vm.backend_id or "")
        vm.update(actions=[Vm.power.set("offline")])
    except LobsterError as error:
        logger.error("vm_suspend_stop_failed", extra={"vm_id": vm.vm_id, "error": error.message})


def terminate(account: Account) -> bool:
    """Delete every VM (after its final charges) and every image; True if anything was deleted."""
    from chalicelib.images.service import delete_image
    from chalicelib.vms.service import delete_vm

    deleted = 0
    for vm in Vm.query(account.account_id):
        if vm.deleted_at is None and vm.state in ("provisioning", "active", "error"):
            delete_vm(vm)
            deleted += 1
    for image in Image.query(account.account_id):
        if image.deleted_at is None:
            delete_image(image)
            deleted += 1
    if deleted:
        logger.info("account_terminated", extra={"account_id": account.account_id, "resources": deleted})
        send_notice(account.email, "terminated", _context(account))
    return bool(deleted)


def on_credit(account_id: str) -> list[str]:
    """Lift automatic suspensions if the balance is now positive; admin suspensions stay.

    Returns the ids of the VMs unsuspended by this call.
    """
    account = Account.get(account_id, consistent_read=True)
    if account.balance_micros <= 0:
        return []

    lifted = []
    for vm in Vm.query(account_id, filter_condition=Vm.suspended == "auto"):
        try:
            vm.update(actions=[Vm.suspended.set("no")], condition=Vm.suspended == "auto")
        except UpdateError:
            continue
        lifted.append(vm.vm_id)
        logger.info("vm_unsuspended", extra={"account_id": account_id, "vm_id": vm.vm_id})
        send_notice(account.email, "unsuspended", {"vm_name": vm.name})
    if lifted:
        _reset_notices(account)
    return lifted
