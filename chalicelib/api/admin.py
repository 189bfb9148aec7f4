"""Admin routes under /v1/admin/: accounts, VMs, payments and the audit log, plus the
helpers every admin route uses (the catalog routes are in chalicelib.api.admin_catalog).

Only an account with role "admin" holding a log-in session may call them: no credentials
is a 401, a customer or an API key a 403. Every call that succeeds is audited with the
caller's address, reads included; a call that fails changes and records nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib import audit
from chalicelib.accounts import cookies
from chalicelib.admin import users, vms
from chalicelib.admin.paging import Page
from chalicelib.api import idempotency
from chalicelib.api.http import current_account, json_response, request_body, request_query, route
from chalicelib.api.schema import Field, Schema, query_param
from chalicelib.config import settings
from chalicelib.errors import Conflict, Forbidden, InvalidRequest
from chalicelib.models.accounts import Account
from chalicelib.models.audit import AuditEvent
from chalicelib.money import InvalidAmount, money_json, parse_micros

blueprint = Blueprint(__name__)

MAX_REASON_LENGTH = 500
DEFAULT_PAGE_SIZE = 50
DAY_FORMAT = "%Y-%m-%d"

CREDIT_ADJUSTMENT = Schema(
    "AdminCreditAdjustment",
    (
        Field("amount", max_length=32, description="Signed decimal amount, e.g. \"-5.00\" to debit or \"10.00\" to credit"),
        Field("reason", max_length=MAX_REASON_LENGTH, description="Shown to the customer on the ledger line"),
    ),
)
SUSPENSION = Schema(
    "AdminSuspension",
    (Field("reason", required=False, max_length=MAX_REASON_LENGTH, description="Kept in the audit log with the change"),),
)
VM_LIMIT = Schema("AdminVmLimit", (Field("vm_limit", kind=int, description=f"0 to {users.MAX_VM_LIMIT}"),))
PAGE_FIELDS = (
    Field("limit", required=False, max_length=8, description=f"Items per page, 1 to {audit.MAX_PAGE_SIZE}; default {DEFAULT_PAGE_SIZE}"),
    Field("cursor", required=False, max_length=1024, description="cursor of the previous page"),
)
USERS_QUERY = Schema(
    "AdminUsersQuery",
    (
        Field("id", required=False, max_length=64, description="Account id; not with email. Without id and email, every account is listed"),
        Field("email", required=False, max_length=254, description="Start of the e-mail address; not with id"),
        *PAGE_FIELDS,
    ),
)
VMS_QUERY = Schema(
    "AdminVmsQuery",
    (
        Field("account_id", required=False, max_length=64, description="Only this account's VMs"),
        Field("state", required=False, max_length=32, description="Only VMs in this state"),
        *PAGE_FIELDS,
    ),
)
PAYMENTS_QUERY = Schema(
    "AdminPaymentsQuery",
    (
        Field("account_id", required=False, max_length=64, description="Only this account's payments"),
        Field("flagged", required=False, max_length=5, description="true keeps the payments flagged for the operator"),
        *PAGE_FIELDS,
    ),
)
AUDIT_QUERY = Schema(
    "AdminAuditQuery",
    (
        Field("day", required=False, max_length=10, description="UTC day as YYYY-MM-DD; default today"),
        Field("target", required=False, max_length=200, description="Only events about this target, such as account:<id>"),
        *PAGE_FIELDS,
    ),
)


def admin_route(path: str, methods: list[str], **options: Any) -> Any:
    """Register an admin route: session credentials only, never an API key. `options`
    (secret_fields, body, query, status) pass on to `route`."""
    return route(blueprint, path, methods, session_only=True, **options)


def require_admin(request: Request) -> Account:
    """Return the calling admin; raise Unauthenticated without credentials, Forbidden otherwise."""
    account = current_account(request)
    if account.role != users.ROLE_ADMIN:
        raise Forbidden("this route is for admins only")
    return account


def client_ip(request: Request) -> str | None:
    """Return the caller's address as API Gateway saw it (`requestContext.identity.sourceIp`)."""
    identity = (request.context or {}).get("identity") or {}
    address = identity.get("sourceIp")
    return address if isinstance(address, str) else None


def admin_event(request: Request, admin: Account, action: str, target: str, details: dict[str, Any] | None = None) -> AuditEvent:
    """Build the audit event of a change. With an Idempotency-Key its id is fixed by the
    admin, route and key, so a retried request finds its event and changes nothing again."""
    key = idempotency.read_key(request.headers)
    event_id = None
    if key is not None:
        digest = hashlib.sha256(f"{request.method} {request.path} {request.uri_params} {key}".encode()).hexdigest()
        event_id = f"admin#{admin.account_id}#{digest[:40]}"
    return audit.new_event(admin.account_id, action, target, details, client_ip(request), event_id=event_id)


def audit_read(request: Request, admin: Account, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    """Record a successful read; read records expire after audit.READ_EVENT_RETENTION."""
    audit.record(admin.account_id, action, target, details, client_ip(request), read_only=True)


def page_limit(request: Request) -> int:
    text = query_param(request.query_params, "limit")
    if text is None:
        return DEFAULT_PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= audit.MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {audit.MAX_PAGE_SIZE}", field="limit")
    return int(text)


def parse_day(text: str) -> datetime:
    try:
        return datetime.strptime(text, DAY_FORMAT)
    except ValueError:
        raise InvalidRequest("day must be YYYY-MM-DD, for example 2026-12-04", field="day") from None


# Accounts.


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.account_id,
        "email": account.email,
        "status": account.status,
        "role": account.role,
        "email_verified": account.email_verified,
        "created_at": account.created_at,
        "balance": money_json(int(account.balance_micros)),
        "vm_limit": int(account.vm_limit),
        "billed_through": account.billed_through,
        "low_credit_notices": int(account.low_credit_notices or 0),
    }


def vm_json(vm: Any) -> dict[str, Any]:
    """Render a VM for admins from the table only, with no backend call per VM."""
    return {
        "id": vm.vm_id,
        "account_id": vm.account_id,
        "name": vm.name,
        "region": vm.region,
        "plan": vm.plan_id,
        "image": vm.image_id,
        "state": vm.state,
        "power": vm.power,
        "suspended": vm.suspended,
        "backend_id": vm.backend_id,
        "created_at": vm.created_at,
        "billing_started_at": vm.started_at,
        "deleted_at": vm.deleted_at,
        "error": vm.backend_error,
    }


@admin_route("/v1/admin/users", ["GET"], query=USERS_QUERY)
def search_users() -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    params = request_query()
    account_id, email = params.get("id"), params.get("email")
    if account_id and email:
        raise InvalidRequest("send at most one of the query parameters id and email", field="email")

    if account_id:
        found = [users.get_account(account_id)]
        page: Page[Account] = Page(found, None)
    else:
        page = users.search_accounts(email or "", page_limit(request), query_param(params, "cursor"))
    audit_read(request, admin, "user.search", "account:*", {"id": account_id, "email": email})
    return json_response({"users": [account_json(account) for account in page.items], "cursor": page.cursor})


@admin_route("/v1/admin/users/{account_id}", ["GET"])
def view_user(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    account = users.get_account(account_id)

    from chalicelib.billing.costs import hourly_cost

    body = {
        **account_json(account),
        "hourly_cost": money_json(hourly_cost(account_id)),
        "vms": [vm_json(vm) for vm in users.live_vms(account_id)],
    }
    audit_read(request, admin, "user.view", f"account:{account_id}")
    return json_response(body)


@admin_route("/v1/admin/users/{account_id}/credit", ["POST"], body=CREDIT_ADJUSTMENT)
def adjust_user_credit(account_id: str) -> object:
    """Credit or debit an account; the Idempotency-Key header is required and is the adjustment id."""
    request = blueprint.current_request
    admin = require_admin(request)
    adjustment_id = idempotency.read_key(request.headers)
    if adjustment_id is None:
        raise InvalidRequest(f"send an {idempotency.HEADER} header, such as a UUID, so a retry cannot credit twice", field=idempotency.HEADER)
    body = request_body()
    amount = _adjustment_amount(body["amount"])
    reason = body["reason"].strip()
    if not reason:
        raise InvalidRequest("reason must not be empty; it is shown to the customer", field="reason")
    account = users.get_account(account_id)
    if account.status == users.STATUS_DELETED:
        raise Conflict(f"account {account_id} is deleted", field="account_id")

    from chalicelib.billing.adjustments import adjust_credit

    try:
        applied = adjust_credit(account_id, amount, reason, adjustment_id, actor_account_id=admin.account_id, ip=client_ip(request))
    except Conflict as error:
        raise Conflict(error.message, field=idempotency.HEADER) from None
    balance = int(users.get_account(account_id).balance_micros)
    return json_response({"applied": applied, "amount": money_json(amount), "balance": money_json(balance)})


def _adjustment_amount(text: str) -> int:
    try:
        amount = parse_micros(text, allow_negative=True)
    except InvalidAmount as error:
        raise InvalidRequest(str(error), field="amount") from None
    if amount == 0:
        raise InvalidRequest("amount must not be zero", field="amount")
    return amount


@admin_route("/v1/admin/users/{account_id}/vm-limit", ["PUT"], body=VM_LIMIT)
def set_user_vm_limit(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    vm_limit = request_body()["vm_limit"]
    event = admin_event(request, admin, "user.vm_limit", f"account:{account_id}", {"vm_limit": vm_limit})
    return json_response(account_json(users.set_vm_limit(account_id, vm_limit, event)))


@admin_route("/v1/admin/users/{account_id}/disable", ["POST"])
def disable_user(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "user.disable", f"account:{account_id}")
    return json_response(account_json(users.set_status(account_id, users.STATUS_DISABLED, event)))


@admin_route("/v1/admin/users/{account_id}/enable", ["POST"])
def enable_user(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "user.enable", f"account:{account_id}")
    return json_response(account_json(users.set_status(account_id, users.STATUS_ACTIVE, event)))


@admin_route("/v1/admin/users/{account_id}/impersonate", ["POST"], secret_fields=("token",), status=201)
def impersonate_user(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "user.impersonate", f"account:{account_id}")
    token = users.impersonate(account_id, event)
    if not _uses_panel_cookie(request):
        return json_response({"account_id": account_id, "token": token, "token_type": "Bearer"}, 201)

    # From the panel, the browser switches to the customer's session, and the admin's own
    # session waits in a cookie until the impersonation logs out.
    admin_token = cookies.session_from_cookies(request.headers) or ""
    lifetime = int(users.IMPERSONATION_LIFETIME.total_seconds())
    switch = cookies.impersonation_cookies(token, admin_token, lifetime, settings().session_hours * 3600)
    return json_response({"account_id": account_id, "token": None, "token_type": "Cookie"}, 201, {"Set-Cookie": switch})


def _uses_panel_cookie(request: Request) -> bool:
    return not request.headers.get("authorization") and cookies.session_from_cookies(request.headers) is not None


@admin_route("/v1/admin/users/{account_id}", ["DELETE"])
def delete_user(account_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "user.delete", f"account:{account_id}")
    users.delete_account(account_id, event)
    return json_response({"id": account_id, "status": users.STATUS_DELETED})


# VMs.


@admin_route("/v1/admin/vms", ["GET"], query=VMS_QUERY)
def list_all_vms() -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    params = request_query()
    page = vms.list_vms(page_limit(request), params.get("cursor"), params.get("account_id"), params.get("state"))
    audit_read(request, admin, "vm.list", f"account:{params['account_id']}" if params.get("account_id") else "vm:*")
    return json_response({"vms": [vm_json(vm) for vm in page.items], "cursor": page.cursor})


@admin_route("/v1/admin/vms/{vm_id}", ["GET"])
def view_vm(vm_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    vm = vms.find_vm(vm_id)
    audit_read(request, admin, "vm.view", f"vm:{vm_id}")
    return json_response(vm_json(vm))


@admin_route("/v1/admin/vms/{vm_id}/suspend", ["POST"], body=SUSPENSION)
def suspend_vm(vm_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "vm.suspend", f"vm:{vm_id}", _reason_details(request_body()))
    vm, stop_error = vms.suspend_vm(vm_id, event)
    return json_response({**vm_json(vm), "stop_error": stop_error})


@admin_route("/v1/admin/vms/{vm_id}/unsuspend", ["POST"], body=SUSPENSION)
def unsuspend_vm(vm_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "vm.unsuspend", f"vm:{vm_id}", _reason_details(request_body()))
    return json_response(vm_json(vms.unsuspend_vm(vm_id, event)))


def _reason_details(body: dict[str, Any]) -> dict[str, Any] | None:
    reason = (body.get("reason") or "").strip()
    return {"reason": reason} if reason else None


# Payments.


def payment_json(payment: Any) -> dict[str, Any]:
    return {
        "key": payment.payment_key,
        "gateway": payment.gateway,
        "gateway_payment_id": payment.gateway_payment_id,
        "account_id": payment.account_id,
        "status": payment.status,
        "currency": payment.currency,
        "requested": money_json(payment.requested_micros),
        "received": money_json(payment.received_micros),
        "flags": payment.flags,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


@admin_route("/v1/admin/payments", ["GET"], query=PAYMENTS_QUERY)
def list_payments() -> object:
    """List payments, newest first per page; `flagged=true` keeps those flagged for the operator."""
    request = blueprint.current_request
    admin = require_admin(request)
    params = request_query()
    flagged = params.get("flagged")
    if flagged not in (None, "true", "false"):
        raise InvalidRequest("flagged must be true or false", field="flagged")

    from chalicelib.admin.payments import list_payments as list_payment_page

    page = list_payment_page(page_limit(request), params.get("cursor"), flagged == "true", params.get("account_id"))
    audit_read(request, admin, "payment.list", f"account:{params['account_id']}" if params.get("account_id") else "payment:*")
    items = sorted(page.items, key=lambda payment: payment.created_at, reverse=True)
    return json_response({"payments": [payment_json(payment) for payment in items], "cursor": page.cursor})


# The audit log.


@admin_route("/v1/admin/audit", ["GET"], query=AUDIT_QUERY)
def list_audit() -> object:
    """List the audit events of one UTC day (`day`, default today) or of one `target`, newest first."""
    request = blueprint.current_request
    admin = require_admin(request)
    params = request_query()
    limit, cursor = page_limit(request), params.get("cursor")
    target = params.get("target")

    if target:
        page = audit.list_target(target, limit, cursor)
    else:
        from chalicelib.clock import now

        day = parse_day(params["day"]) if params.get("day") else now()
        page = audit.list_day(day, limit, cursor)
    audit_read(request, admin, "audit.list", target or "audit:*", {"day": params.get("day"), "target": target})
    return json_response({"events": [audit.event_json(event) for event in page.events], "cursor": page.cursor})
