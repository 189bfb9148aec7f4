"""Operator actions on accounts: search, VM limit, disable and enable, impersonation,
deletion, and creating the first admin.

A change and its audit event are one transaction; when the event already exists the
request was a retry and nothing is changed again.
"""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import audit
from chalicelib.admin.paging import Page, scan_page
from chalicelib.errors import Conflict, Forbidden, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.audit import AuditEvent
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm

ROLE_ADMIN = "admin"
STATUS_ACTIVE = "active"
STATUS_DISABLED = "disabled"
STATUS_DELETED = "deleted"
MAX_VM_LIMIT = 1000
# An impersonation session ends on its own after this long, however long log-in sessions last.
IMPERSONATION_LIFETIME = timedelta(hours=1)
# VM states that no longer run or reserve anything on a backend.
FINISHED_VM_STATES = frozenset({"deleted", "error"})
ACCOUNT_KEY_NAMES = frozenset({"account_id"})


def get_account(account_id: str) -> Account:
    try:
        return Account.get(account_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"account {account_id!r} not found", field="account_id") from None


def search_accounts(email_prefix: str, limit: int, cursor: str | None) -> Page[Account]:
    """Return accounts whose e-mail address starts with `email_prefix` (lower case), or every
    account, page by page, when the prefix is empty.

    NOTE: the accounts table has no e-mail index, so this is a filtered scan in pages. On a
    large table a search needs several pages, and the cursor continues it.
    """
    prefix = email_prefix.strip().lower()
    if not prefix:
        return scan_page(Account, ACCOUNT_KEY_NAMES, limit=limit, cursor=cursor)
    return scan_page(Account, ACCOUNT_KEY_NAMES, limit=limit, cursor=cursor, filter_condition=Account.email.startswith(prefix))


def live_vms(account_id: str) -> list[Vm]:
    return [vm for vm in Vm.query(account_id, consistent_read=True) if vm.state not in FINISHED_VM_STATES]


def set_vm_limit(account_id: str, vm_limit: int, event: AuditEvent) -> Account:
    if not 0 <= vm_limit <= MAX_VM_LIMIT:
        raise InvalidRequest(f"vm_limit must be between 0 and {MAX_VM_LIMIT}", field="vm_limit")
    get_account(account_id)

    def write(transaction: TransactWrite) -> None:
        transaction.update(Account(account_id), actions=[Account.vm_limit.set(vm_limit)], condition=Account.account_id.exists())

    audit.write_with_event(event, write)
    logger.info("account_vm_limit_set", extra={"account_id": account_id, "vm_limit": vm_limit})
    return get_account(account_id)


def set_status(account_id: str, status: str, event: AuditEvent) -> Account:
    """Disable an active account or enable a disabled one.

    Disabling ends the account's sessions, and the API refuses its API keys while it is
    disabled. Its VMs keep running and being billed; suspend them separately.
    """
    if audit.get_event(event.event_id) is not None:
        return get_account(account_id)
    account = get_account(account_id)
    before = STATUS_ACTIVE if status == STATUS_DISABLED else STATUS_DISABLED
    if account.status != before:
        raise Conflict(f"account {account_id} is {account.status}; only a {before} account can become {status}", field="account_id")
    if status == STATUS_DISABLED and account.role == ROLE_ADMIN and account.account_id == event.actor_account_id:
        raise Conflict("an admin cannot disable their own account", field="account_id")

    def write(transaction: TransactWrite) -> None:
        transaction.update(Account(account_id), actions=[Account.status.set(status)], condition=Account.status == before)

    try:
        audit.write_with_event(event, write)
    except TransactWriteError:
        raise Conflict(f"account {account_id} changed meanwhile; reload it and try again", field="account_id") from None

    if status == STATUS_DISABLED:
        from chalicelib.accounts.service import end_sessions

        end_sessions(account_id)
    logger.info("account_status_set", extra={"account_id": account_id, "status": status})
    return get_account(account_id)


def impersonate(account_id: str, event: AuditEvent) -> str:
    """Open a session as the account and return its bearer token; the event names the admin.

    Admin accounts cannot be impersonated, so an impersonation never gains admin rights.
    """
    account = get_account(account_id)
    if account.role == ROLE_ADMIN:
        raise Forbidden("admin accounts cannot be impersonated", field="account_id")
    if account.status != STATUS_ACTIVE:
        raise Conflict(f"account {account_id} is {account.status}; only an active account can be impersonated", field="account_id")
    if not audit.save_event(event):
        raise Conflict("this Idempotency-Key already opened an impersonation session; send a new key for another", field="Idempotency-Key")

    from chalicelib.accounts.service import create_session

    token = create_session(account_id, lifetime=IMPERSONATION_LIFETIME)
    logger.info("account_impersonated", extra={"account_id": account_id, "admin": event.actor_account_id})
    return token


def delete_account(account_id: str, event: AuditEvent) -> None:
    """Close an account that runs nothing and owes nothing.

    Its sign-in identity, sessions and API keys are removed, so the e-mail address can sign
    up again. The account item stays, marked deleted, because its ledger and audit history
    are money records.
    """
    if audit.get_event(event.event_id) is not None:
        return
    account = get_account(account_id)
    _check_deletable(account, event.actor_account_id)

    from chalicelib.accounts.service import identity_key
    from chalicelib.models.auth import AuthItem

    def write(transaction: TransactWrite) -> None:
        transaction.update(
            Account(account_id),
            actions=[Account.status.set(STATUS_DELETED)],
            condition=(Account.balance_micros == 0) & (Account.status != STATUS_DELETED),
        )
        transaction.delete(AuthItem(identity_key(account.email)))

    try:
        audit.write_with_event(event, write)
    except TransactWriteError:
        raise Conflict(f"account {account_id} changed meanwhile; reload it and try again", field="account_id") from None

    _remove_credentials(account_id)
    logger.info("account_deleted", extra={"account_id": account_id, "admin": event.actor_account_id})


def _check_deletable(account: Account, actor_account_id: str) -> None:
    from chalicelib.billing.ledger import applied_sum
    from chalicelib.money import format_micros

    if account.status == STATUS_DELETED:
        raise Conflict(f"account {account.account_id} is already deleted", field="account_id")
    if account.account_id == actor_account_id:
        raise Conflict("an admin cannot delete their own account", field="account_id")
    running = live_vms(account.account_id)
    if running:
        raise Conflict(f"account {account.account_id} still has {len(running)} VMs; delete them first", field="account_id")
    images = [image for image in Image.query(account.account_id, consistent_read=True) if image.deleted_at is None]
    if images:
        raise Conflict(f"account {account.account_id} still has {len(images)} images; delete them first", field="account_id")
    if account.balance_micros != 0:
        raise Conflict(
            f"account {account.account_id} has a balance of {format_micros(int(account.balance_micros))}; "
            "settle it with a credit adjustment to 0.00 first",
            field="account_id",
        )
    _, pending = applied_sum(account)
    if pending:
        raise Conflict(f"account {account.account_id} has hourly charges still being applied; try after the next billing run", field="account_id")


def _remove_credentials(account_id: str) -> None:
    from chalicelib.accounts import apikeys
    from chalicelib.accounts.service import end_sessions

    end_sessions(account_id)
    for key in apikeys.list_keys(account_id):
        apikeys.revoke_key(account_id, key.key_id)


def create_admin(email: str, password: str) -> Account:
    """Create an admin account with a verified e-mail address; the first admin comes from here.

    Raises Conflict when the address already has an account.
    """
    from chalicelib.accounts.service import sign_up

    account = sign_up(email, password)
    account.update(actions=[Account.role.set(ROLE_ADMIN), Account.email_verified.set(True)])
    audit.record(audit.SYSTEM_ACTOR, "admin.created", f"account:{account.account_id}", {"email": account.email, "via": "cli"})
    logger.info("admin_created", extra={"account_id": account.account_id})
    return account
