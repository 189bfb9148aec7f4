"""The admin API through Chalice's test client on DynamoDB Local: who may call each route,
what each route changes, and that every admin and money action is audited exactly once,
retries included, while bad input changes and records nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.admin.users import create_admin
from chalicelib.billing.planner import plan_hour
from chalicelib.models import ALL_MODELS, REQUEST_BOOKKEEPING_MODELS
from chalicelib.models.accounts import Account
from chalicelib.models.audit import AuditEvent
from chalicelib.models.idempotency import IdempotencyRecord
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.payments import Payment
from chalicelib.models.vms import Vm

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery"
ADMIN_EMAIL = "boss@example.com"
CUSTOMER_EMAIL = "ann@example.com"


@pytest.fixture
def client() -> Client:
    with Client(app) as test_client:
        yield test_client


def call(
    client: Client,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    payload = json.dumps(body).encode() if body is not None else b""
    response = client.http.request(method, path, headers=headers, body=payload)
    return response.status_code, json.loads(response.body or b"null")


def log_in(client: Client, email: str) -> str:
    status, body = call(client, "POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, body
    return body["token"]


def customer_token(client: Client, email: str = CUSTOMER_EMAIL) -> str:
    assert call(client, "POST", "/v1/auth/signup", {"email": email, "password": PASSWORD})[0] == 201
    return log_in(client, email)


def account_id_of(email: str) -> str:
    return next(account.account_id for account in Account.scan() if account.email == email)


def audit_events(action: str | None = None, target: str | None = None) -> list[AuditEvent]:
    return [
        event
        for event in AuditEvent.scan(consistent_read=True)
        if (action is None or event.action == action) and (target is None or event.target == target)
    ]


def business_item_count() -> int:
    """Items outside request bookkeeping (rate-limit counters, Idempotency-Key records)."""
    return sum(1 for model in ALL_MODELS if model not in REQUEST_BOOKKEEPING_MODELS for _ in model.scan(consistent_read=True))


def forget_idempotency_records() -> None:
    """Drop stored Idempotency-Key responses, as their expiry would, so a retry runs again."""
    with IdempotencyRecord.batch_write() as batch:
        for record in IdempotencyRecord.scan():
            batch.delete(record)


@dataclass
class World:
    admin: str
    admin_id: str
    customer: str
    customer_id: str
    vm_id: str
    ticket_id: str
    announcement_id: str
    suspended_vm_id: str
    disabled_id: str
    idle_id: str


@pytest.fixture
def world(client: Client) -> World:
    """Build the accounts and items the admin routes act on, at T0.

    They are an admin, a customer with credit, a running VM, a VM an admin suspended and an
    open ticket, an announcement, a disabled customer, and an idle customer with nothing to settle.
    """
    clock.set_time(T0)
    admin_account = create_admin(ADMIN_EMAIL, PASSWORD)
    admin = log_in(client, ADMIN_EMAIL)
    customer = customer_token(client)
    Account(account_id_of(CUSTOMER_EMAIL)).update(actions=[Account.email_verified.set(True)])

    assert call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, customer)[0] == 201
    status, vm = call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, customer)
    assert status == 201, vm
    status, held = call(client, "POST", "/v1/vms", {"name": "held", "region": "demo", "plan": "s1", "image": "debian-12"}, customer)
    assert status == 201, held
    Vm(account_id_of(CUSTOMER_EMAIL), held["id"]).update(actions=[Vm.suspended.set("manual")])
    status, ticket = call(client, "POST", "/v1/tickets", {"subject": "Slow disk", "message": "Disk is slow."}, customer)
    assert status == 201, ticket
    status, announcement = call(client, "POST", "/v1/admin/announcements", {"title": "Upgrade", "body": "Friday night."}, admin)
    assert status == 201, announcement
    customer_token(client, "dora@example.com")
    Account(account_id_of("dora@example.com")).update(actions=[Account.status.set("disabled")])
    customer_token(client, "ida@example.com")
    return World(
        admin,
        admin_account.account_id,
        customer,
        account_id_of(CUSTOMER_EMAIL),
        vm["id"],
        ticket["id"],
        announcement["id"],
        held["id"],
        account_id_of("dora@example.com"),
        account_id_of("ida@example.com"),
    )


def admin_routes() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, entries in app.routes.items()
        if path.startswith("/v1/admin/")
        for method in entries
    }


# One successful call per admin route: (method, path template, body, expected status).
ROUTE_CALLS: list[tuple[str, str, Any, int]] = [
    ("GET", "/v1/admin/users?email=ann", None, 200),
    ("GET", "/v1/admin/users/{account_id}", None, 200),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "5.00", "reason": "Goodwill"}, 200),
    ("PUT", "/v1/admin/users/{account_id}/vm-limit", {"vm_limit": 10}, 200),
    ("POST", "/v1/admin/users/{account_id}/impersonate", None, 201),
    ("POST", "/v1/admin/users/{account_id}/disable", None, 200),
    ("POST", "/v1/admin/users/{disabled_account_id}/enable", None, 200),
    ("DELETE", "/v1/admin/users/{idle_account_id}", None, 200),
    ("GET", "/v1/admin/vms", None, 200),
    ("GET", "/v1/admin/vms/{vm_id}", None, 200),
    ("POST", "/v1/admin/vms/{vm_id}/suspend", None, 200),
    ("POST", "/v1/admin/vms/{suspended_vm_id}/unsuspend", None, 200),
    ("GET", "/v1/admin/plans", None, 200),
    (
        "POST",
        "/v1/admin/plans",
        {"id": "x8", "name": "XL 8 GB", "ram_mb": 8192, "vcpus": 4, "disk_gb": 160, "bandwidth_gib": 8000, "price_hourly": "0.06"},
        201,
    ),
    ("PATCH", "/v1/admin/plans/{plan_id}", {"name": "Small"}, 200),
    ("POST", "/v1/admin/plans/{plan_id}/prices", {"price_hourly": "0.008"}, 201),
    ("PUT", "/v1/admin/plans/{plan_id}/regions/{region_id}", {"backend_id": "demo-1b"}, 200),
    ("DELETE", "/v1/admin/plans/{plan_id}/regions/{region_id}", None, 200),
    ("POST", "/v1/admin/plans/{plan_id}/disable", None, 200),
    ("POST", "/v1/admin/plans/{plan_id}/enable", None, 200),
    ("GET", "/v1/admin/regions", None, 200),
    ("POST", "/v1/admin/regions", {"id": "demo2", "name": "Demo two", "backend": "demo", "settings": {}}, 201),
    ("POST", "/v1/admin/regions/{region_id}/disable", None, 200),
    ("POST", "/v1/admin/regions/{region_id}/enable", None, 200),
    ("POST", "/v1/admin/regions/{region_id}/import", None, 200),
    ("GET", "/v1/admin/images", None, 200),
    ("POST", "/v1/admin/images", {"id": "alma-9", "name": "AlmaLinux 9", "region": "demo", "backend_id": "alma-9-x64"}, 201),
    ("POST", "/v1/admin/images/{image_id}/disable", None, 200),
    ("POST", "/v1/admin/images/{image_id}/enable", None, 200),
    ("GET", "/v1/admin/announcements", None, 200),
    ("POST", "/v1/admin/announcements", {"title": "Maintenance", "body": "Saturday 02:00 UTC."}, 201),
    ("DELETE", "/v1/admin/announcements/{announcement_id}", None, 200),
    ("GET", "/v1/admin/payments?flagged=true", None, 200),
    ("GET", "/v1/admin/audit", None, 200),
    ("GET", "/v1/admin/tickets", None, 200),
    ("GET", "/v1/admin/tickets/{ticket_id}", None, 200),
    ("POST", "/v1/admin/tickets/{ticket_id}/reply", {"message": "We moved your VM."}, 201),
    ("POST", "/v1/admin/tickets/{ticket_id}/close", None, 200),
]


def route_call_ids() -> list[str]:
    return [f"{method} {path}" for method, path, _, _ in ROUTE_CALLS]


def fill(path: str, world: World | None) -> str:
    """Put the world's ids into a path; without a world, ids that exist nowhere."""
    if world is None:
        world = World("", "", "", "acct_0", "vm_0", "tkt_0", "ann_0", "vm_1", "acct_1", "acct_2")
    return path.format(
        account_id=world.customer_id,
        disabled_account_id=world.disabled_id,
        idle_account_id=world.idle_id,
        vm_id=world.vm_id,
        suspended_vm_id=world.suspended_vm_id,
        plan_id="s1",
        region_id="demo",
        image_id="debian-12",
        ticket_id=world.ticket_id,
        announcement_id=world.announcement_id,
    )


def test_route_table_covers_every_admin_route() -> None:
    called = {
        (method, re.sub(r"\{(disabled|idle)_account_id\}", "{account_id}", path.split("?")[0]).replace("suspended_vm_id", "vm_id"))
        for method, path, _, _ in ROUTE_CALLS
    }

    assert called == admin_routes()


def test_admin_routes_reject_anonymous_callers(client: Client) -> None:
    for method, path, body, _ in ROUTE_CALLS:
        status, error = call(client, method, fill(path, None), body, key=str(uuid.uuid4()))

        assert status == 401, f"{method} {path}"
        assert error["error"]["code"] == "unauthenticated", f"{method} {path}"


def test_admin_routes_reject_customers(client: Client) -> None:
    clock.set_time(T0)
    token = customer_token(client)

    for method, path, body, _ in ROUTE_CALLS:
        status, error = call(client, method, fill(path, None), body, token, key=str(uuid.uuid4()))

        assert status == 403, f"{method} {path}"
        assert error["error"]["code"] == "forbidden", f"{method} {path}"
    assert audit_events() == []


def test_every_admin_route_answers_admin_and_audits_once(client: Client, world: World) -> None:
    for method, path, body, expected in ROUTE_CALLS:
        before = {event.event_id for event in audit_events()}

        status, answer = call(client, method, fill(path, world), body, world.admin, key=str(uuid.uuid4()))

        assert status == expected, f"{method} {path}: {answer}"
        added = [event for event in audit_events() if event.event_id not in before]
        assert len(added) == 1, f"{method} {path}: {[event.action for event in added]}"
        assert added[0].actor_account_id == world.admin_id, f"{method} {path}"
        assert added[0].ip == "127.0.0.1", f"{method} {path}"


# Routes whose response contains a secret shown once: a rerun cannot show it again, so it is a 409.
SECRET_ANSWER_PATHS = frozenset({"/v1/admin/users/{account_id}/impersonate"})


def test_retried_admin_actions_are_audited_once(client: Client, world: World) -> None:
    """A retry with the same Idempotency-Key replays the stored response. Once that record
    has expired, the retry runs again and finds its audit event, so nothing happens twice."""
    for method, path, body, expected in ROUTE_CALLS:
        if method == "GET":
            continue
        key = str(uuid.uuid4())
        before = len(audit_events())

        first = call(client, method, fill(path, world), body, world.admin, key=key)
        replayed = call(client, method, fill(path, world), body, world.admin, key=key)
        forget_idempotency_records()
        rerun = call(client, method, fill(path, world), body, world.admin, key=key)

        assert first[0] == expected, f"{method} {path}: {first}"
        assert replayed[0] == expected, f"{method} {path}: {replayed}"
        if path in SECRET_ANSWER_PATHS:
            assert rerun[0] == 409, f"{method} {path}: {rerun}"
            assert rerun[1]["error"]["field"] == "Idempotency-Key", f"{method} {path}: {rerun}"
        else:
            assert rerun[0] < 300, f"{method} {path}: {rerun}"
        assert len(audit_events()) == before + 1, f"{method} {path}"


def test_credit_adjustment_retried_after_days_moves_money_once(client: Client, world: World) -> None:
    path = f"/v1/admin/users/{world.customer_id}/credit"
    body = {"amount": "-2.50", "reason": "Refund reversal"}
    before = Account.get(world.customer_id).balance_micros

    status, first = call(client, "POST", path, body, world.admin, key="adj-1")
    clock.set_time(T0 + timedelta(hours=20))
    forget_idempotency_records()
    status_again, again = call(client, "POST", path, body, world.admin, key="adj-1")

    assert status == 200
    assert first["applied"] is True
    assert status_again == 200
    assert again["applied"] is False
    assert Account.get(world.customer_id, consistent_read=True).balance_micros == before - 2_500_000
    lines = [line for line in LedgerLine.query(world.customer_id, consistent_read=True) if line.kind == "adjustment"]
    assert [line.amount_micros for line in lines] == [-2_500_000]
    events = audit_events(action="credit.adjusted")
    assert len(events) == 1
    assert events[0].actor_account_id == world.admin_id
    assert events[0].details["reason"] == "Refund reversal"
    assert events[0].ip == "127.0.0.1"


def test_credit_adjustment_key_reused_for_other_amount_conflicts(client: Client, world: World) -> None:
    path = f"/v1/admin/users/{world.customer_id}/credit"
    call(client, "POST", path, {"amount": "1.00", "reason": "Goodwill"}, world.admin, key="adj-2")
    forget_idempotency_records()

    status, error = call(client, "POST", path, {"amount": "9.00", "reason": "Goodwill"}, world.admin, key="adj-2")

    assert status == 409
    assert error["error"]["field"] == "Idempotency-Key"
    assert len(audit_events(action="credit.adjusted")) == 1


# Bad input: (method, path, body, Idempotency-Key, the field the error names).
BAD_INPUT = [
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "5.00", "reason": "x"}, None, "Idempotency-Key"),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "five", "reason": "x"}, "k", "amount"),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "0.00", "reason": "x"}, "k", "amount"),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": 5, "reason": "x"}, "k", "amount"),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "5.00", "reason": "  "}, "k", "reason"),
    ("POST", "/v1/admin/users/{account_id}/credit", {"amount": "5.00"}, "k", "reason"),
    ("POST", "/v1/admin/users/acct_0000/credit", {"amount": "5.00", "reason": "x"}, "k", "account_id"),
    ("PUT", "/v1/admin/users/{account_id}/vm-limit", {"vm_limit": "ten"}, None, "vm_limit"),
    ("PUT", "/v1/admin/users/{account_id}/vm-limit", {"vm_limit": -1}, None, "vm_limit"),
    ("GET", "/v1/admin/users?email=a&id=acct_1", None, None, "email"),
    ("GET", "/v1/admin/users?email=a&limit=0", None, None, "limit"),
    ("GET", "/v1/admin/vms?cursor=bm90LWEtY3Vyc29y", None, None, "cursor"),
    ("GET", "/v1/admin/audit?day=2026-13-01", None, None, "day"),
    ("GET", "/v1/admin/payments?flagged=maybe", None, None, "flagged"),
    ("POST", "/v1/admin/plans", {"id": "Bad Id", "name": "n", "ram_mb": 1, "vcpus": 1, "disk_gb": 1, "bandwidth_gib": 1, "price_hourly": "1"}, None, "id"),
    ("POST", "/v1/admin/plans", {"id": "p1", "name": "n", "ram_mb": 1, "vcpus": 1, "disk_gb": 1, "bandwidth_gib": 1, "price_hourly": "0.0000001"}, None, "price_hourly"),
    ("POST", "/v1/admin/plans", {"id": "p1", "name": "n", "ram_mb": 0, "vcpus": 1, "disk_gb": 1, "bandwidth_gib": 1, "price_hourly": "1"}, None, "ram_mb"),
    ("POST", "/v1/admin/plans", {"id": "s1", "name": "n", "ram_mb": 1, "vcpus": 1, "disk_gb": 1, "bandwidth_gib": 1, "price_hourly": "1"}, None, "id"),
    ("POST", "/v1/admin/plans/s1/prices", {"price_hourly": "-1"}, None, "price_hourly"),
    ("POST", "/v1/admin/plans/s1/prices", {"price_hourly": "0.01", "effective_from": "2020-01-01T00:00:00Z"}, None, "effective_from"),
    ("POST", "/v1/admin/plans/s1/prices", {"price_hourly": "0.01", "effective_from": "tomorrow"}, None, "effective_from"),
    ("PUT", "/v1/admin/plans/s1/regions/mars", {"backend_id": "x"}, None, "region_id"),
    ("PATCH", "/v1/admin/plans/s1", {}, None, "name"),
    ("POST", "/v1/admin/images", {"id": "x", "name": "x", "region": "mars", "backend_id": "x"}, None, "region_id"),
    ("POST", "/v1/admin/images", {"id": "UPPER", "name": "x", "region": "demo", "backend_id": "x"}, None, "id"),
    ("POST", "/v1/admin/regions", {"id": "r1", "name": "R", "backend": "demo", "settings": {"api_token": "x"}}, None, "settings"),
    ("POST", "/v1/admin/announcements", {"title": "", "body": "x"}, None, "title"),
    ("POST", "/v1/admin/announcements", {"title": "t", "body": "x", "level": "panic"}, None, "level"),
    ("POST", "/v1/admin/tickets/{ticket_id}/reply", {"message": ""}, None, "message"),
    ("GET", "/v1/admin/tickets?status=lost", None, None, "status"),
]


def test_bad_admin_input_names_field_and_writes_nothing(client: Client, world: World) -> None:
    for method, path, body, key, field in BAD_INPUT:
        before_items = business_item_count()

        status, error = call(client, method, fill(path, world), body, world.admin, key=key)

        assert 400 <= status < 500, f"{method} {path}: {error}"
        assert error["error"]["field"] == field, f"{method} {path}: {error}"
        assert business_item_count() == before_items, f"{method} {path}"


def test_disabled_user_is_locked_out_until_enabled(client: Client, world: World) -> None:
    assert call(client, "POST", f"/v1/admin/users/{world.customer_id}/disable", None, world.admin)[0] == 200

    assert call(client, "GET", "/v1/account", token=world.customer)[0] == 401
    assert call(client, "POST", "/v1/auth/login", {"email": CUSTOMER_EMAIL, "password": PASSWORD})[0] == 401

    assert call(client, "POST", f"/v1/admin/users/{world.customer_id}/enable", None, world.admin)[0] == 200
    assert call(client, "GET", "/v1/account", token=log_in(client, CUSTOMER_EMAIL))[0] == 200


def test_admin_cannot_disable_themselves(client: Client, world: World) -> None:
    status, error = call(client, "POST", f"/v1/admin/users/{world.admin_id}/disable", None, world.admin)

    assert status == 409
    assert error["error"]["field"] == "account_id"


def test_vm_limit_applies_to_new_vms(client: Client, world: World) -> None:
    call(client, "PUT", f"/v1/admin/users/{world.customer_id}/vm-limit", {"vm_limit": 1}, world.admin)

    status, error = call(client, "POST", "/v1/vms", {"name": "web2", "region": "demo", "plan": "s1", "image": "debian-12"}, world.customer)

    assert status == 409
    assert error["error"]["code"] == "limit_reached"


def test_impersonation_acts_as_customer_and_names_admin(client: Client, world: World) -> None:
    status, body = call(client, "POST", f"/v1/admin/users/{world.customer_id}/impersonate", None, world.admin)

    assert status == 201
    status, account = call(client, "GET", "/v1/account", token=body["token"])
    assert status == 200
    assert account["account_id"] == world.customer_id
    [event] = audit_events(action="user.impersonate")
    assert event.actor_account_id == world.admin_id
    assert event.target == f"account:{world.customer_id}"


def test_impersonation_session_ends_after_an_hour(client: Client, world: World) -> None:
    status, body = call(client, "POST", f"/v1/admin/users/{world.customer_id}/impersonate", None, world.admin)
    assert status == 201

    clock.set_time(T0 + timedelta(minutes=59))
    assert call(client, "GET", "/v1/account", token=body["token"])[0] == 200
    clock.set_time(T0 + timedelta(minutes=61))
    assert call(client, "GET", "/v1/account", token=body["token"])[0] == 401
    assert call(client, "GET", "/v1/account", token=world.admin)[0] == 200


def test_admins_cannot_be_impersonated(client: Client, world: World) -> None:
    create_admin("second@example.com", PASSWORD)

    status, error = call(client, "POST", f"/v1/admin/users/{account_id_of('second@example.com')}/impersonate", None, world.admin)

    assert status == 403
    assert audit_events(action="user.impersonate") == []


def test_user_view_shows_balance_and_vms(client: Client, world: World) -> None:
    status, body = call(client, "GET", f"/v1/admin/users/{world.customer_id}", token=world.admin)

    assert status == 200
    assert body["balance"]["amount"] == "20.00"
    assert sorted(vm["id"] for vm in body["vms"]) == sorted([world.vm_id, world.suspended_vm_id])
    assert body["hourly_cost"]["micros"] == 2 * 7_500


def test_user_search_by_email_prefix_and_id(client: Client, world: World) -> None:
    customer_token(client, "anna@example.com")

    by_prefix = call(client, "GET", "/v1/admin/users?email=ANN", token=world.admin)[1]
    by_id = call(client, "GET", f"/v1/admin/users?id={world.customer_id}", token=world.admin)[1]

    assert sorted(user["email"] for user in by_prefix["users"]) == ["ann@example.com", "anna@example.com"]
    assert [user["id"] for user in by_id["users"]] == [world.customer_id]


def test_user_list_without_search_pages_through_every_account(client: Client, world: World) -> None:
    customer_token(client, "anna@example.com")
    expected = sorted(account.email for account in Account.scan())

    first = call(client, "GET", "/v1/admin/users?limit=2", token=world.admin)[1]
    emails = [user["email"] for user in first["users"]]
    cursor = first["cursor"]
    while cursor:
        page = call(client, "GET", f"/v1/admin/users?limit=2&cursor={cursor}", token=world.admin)[1]
        emails += [user["email"] for user in page["users"]]
        cursor = page["cursor"]

    assert sorted(emails) == expected
    assert len(expected) >= 3


def test_delete_user_needs_nothing_running_and_settled_balance(client: Client, world: World) -> None:
    path = f"/v1/admin/users/{world.customer_id}"

    status, error = call(client, "DELETE", path, token=world.admin)
    assert status == 409
    assert "VMs" in error["error"]["message"]

    for vm_id in (world.vm_id, world.suspended_vm_id):
        assert call(client, "DELETE", f"/v1/vms/{vm_id}", token=world.customer)[0] == 200
    status, error = call(client, "DELETE", path, token=world.admin)
    assert status == 409
    assert "balance" in error["error"]["message"]

    balance = Account.get(world.customer_id, consistent_read=True).balance_micros
    settle = {"amount": f"-{balance // 1_000_000}.{balance % 1_000_000:06d}", "reason": "Refunded on closure"}
    assert call(client, "POST", f"{path}/credit", settle, world.admin, key="close-1")[0] == 200
    assert call(client, "DELETE", path, token=world.admin, key="delete-1")[0] == 200

    assert Account.get(world.customer_id).status == "deleted"
    assert call(client, "GET", "/v1/account", token=world.customer)[0] == 401
    assert call(client, "POST", "/v1/auth/login", {"email": CUSTOMER_EMAIL, "password": PASSWORD})[0] == 401
    assert len(audit_events(action="user.delete")) == 1
    assert call(client, "POST", "/v1/auth/signup", {"email": CUSTOMER_EMAIL, "password": PASSWORD})[0] == 201


def test_manual_suspension_stops_vm_and_survives_credit(client: Client, world: World) -> None:
    status, vm = call(client, "POST", f"/v1/admin/vms/{world.vm_id}/suspend", None, world.admin)
    assert status == 200
    assert vm["suspended"] == "manual"
    assert vm["power"] == "offline"
    assert vm["stop_error"] is None

    call(client, "POST", f"/v1/admin/users/{world.customer_id}/credit", {"amount": "5.00", "reason": "Promo"}, world.admin, key="promo")
    assert Vm.get(world.customer_id, world.vm_id).suspended == "manual"
    status, error = call(client, "POST", f"/v1/vms/{world.vm_id}/start", token=world.customer)
    assert status == 409

    status, vm = call(client, "POST", f"/v1/admin/vms/{world.vm_id}/unsuspend", None, world.admin)
    assert status == 200
    assert vm["suspended"] == "no"


def test_suspension_reason_is_kept_in_the_audit_log(client: Client, world: World) -> None:
    status, _ = call(client, "POST", f"/v1/admin/vms/{world.vm_id}/suspend", {"reason": "Abuse report 4411"}, world.admin)
    assert status == 200

    (event,) = audit_events(action="vm.suspend")
    assert event.details == {"reason": "Abuse report 4411"}


def test_suspension_with_unknown_field_changes_nothing(client: Client, world: World) -> None:
    status, error = call(client, "POST", f"/v1/admin/vms/{world.vm_id}/suspend", {"why": "spam"}, world.admin)

    assert status == 400
    assert error["error"]["field"] == "why"
    assert Vm.get(world.customer_id, world.vm_id).suspended == "no"


def test_unsuspend_leaves_automatic_suspension(client: Client, world: World) -> None:
    Vm(world.customer_id, world.vm_id).update(actions=[Vm.suspended.set("auto")])

    status, error = call(client, "POST", f"/v1/admin/vms/{world.vm_id}/unsuspend", None, world.admin)

    assert status == 409
    assert "unpaid" in error["error"]["message"]
    assert Vm.get(world.customer_id, world.vm_id).suspended == "auto"


def test_vm_list_pages_through_every_account(client: Client, world: World) -> None:
    other = customer_token(client, "bob@example.com")
    Account(account_id_of("bob@example.com")).update(actions=[Account.email_verified.set(True)])
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, other)
    call(client, "POST", "/v1/vms", {"name": "db1", "region": "demo", "plan": "s1", "image": "debian-12"}, other)

    everyone = call(client, "GET", "/v1/admin/vms", token=world.admin)[1]
    one = call(client, "GET", f"/v1/admin/vms?account_id={world.customer_id}&limit=1", token=world.admin)[1]

    assert len(everyone["vms"]) == 3
    assert len(one["vms"]) == 1
    assert one["vms"][0]["account_id"] == world.customer_id
    assert one["cursor"] is not None


def test_price_change_keeps_price_of_started_hours(client: Client, world: World) -> None:
    clock.set_time(T0 + timedelta(minutes=15))
    status, plan = call(client, "POST", "/v1/admin/plans/s1/prices", {"price_hourly": "0.0100"}, world.admin)
    assert status == 201
    assert [entry["price_hourly"]["amount"] for entry in plan["prices"]] == ["0.0075", "0.01"]

    clock.set_time(datetime(2026, 12, 4, 12, 5, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 10, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 11, tzinfo=UTC))

    charges = sorted((line.line_key, line.amount_micros) for line in LedgerLine.query(world.customer_id) if line.vm_id == world.vm_id)
    assert [amount for _, amount in charges] == [-7_500, -10_000]


def test_disabled_plan_keeps_billing_existing_vm(client: Client, world: World) -> None:
    assert call(client, "POST", "/v1/admin/plans/s1/disable", None, world.admin)[0] == 200

    catalog = call(client, "GET", "/v1/catalog")[1]
    status, error = call(client, "POST", "/v1/vms", {"name": "web2", "region": "demo", "plan": "s1", "image": "debian-12"}, world.customer)
    clock.set_time(datetime(2026, 12, 4, 11, 5, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 10, tzinfo=UTC))

    assert "s1" not in {plan["id"] for plan in catalog["plans"]}
    assert status == 400
    assert error["error"]["field"] == "plan"
    assert [line.amount_micros for line in LedgerLine.query(world.customer_id) if line.vm_id == world.vm_id] == [-7_500]


def test_enabling_plan_without_price_is_refused(client: Client, world: World) -> None:
    from chalicelib.models.catalog import KIND_PLAN, CatalogItem

    CatalogItem(KIND_PLAN, "imported", name="Imported", enabled=False, prices=[], region_ids={"demo": "x"}).save()

    status, error = call(client, "POST", "/v1/admin/plans/imported/enable", None, world.admin)

    assert status == 409
    assert error["error"]["field"] == "plan_id"


def test_disabled_region_hides_new_vms_only(client: Client, world: World) -> None:
    assert call(client, "POST", "/v1/admin/regions/demo/disable", None, world.admin)[0] == 200

    status, _ = call(client, "POST", "/v1/vms", {"name": "web2", "region": "demo", "plan": "s1", "image": "debian-12"}, world.customer)

    assert status == 400
    assert call(client, "GET", f"/v1/vms/{world.vm_id}", token=world.customer)[1]["state"] == "active"


def test_audit_log_lists_by_day_and_target(client: Client, world: World) -> None:
    call(client, "PUT", f"/v1/admin/users/{world.customer_id}/vm-limit", {"vm_limit": 7}, world.admin)

    day = call(client, "GET", "/v1/admin/audit?day=2026-12-04", token=world.admin)[1]
    target = call(client, "GET", f"/v1/admin/audit?target=account:{world.customer_id}", token=world.admin)[1]
    first_page = call(client, "GET", "/v1/admin/audit?day=2026-12-04&limit=1", token=world.admin)[1]
    second_page = call(client, "GET", f"/v1/admin/audit?day=2026-12-04&limit=1&cursor={first_page['cursor']}", token=world.admin)[1]

    assert "user.vm_limit" in [event["action"] for event in day["events"]]
    assert [event["action"] for event in target["events"]] == ["payment.credited", "user.vm_limit"]
    assert target["events"][1]["details"] == {"vm_limit": 7}
    assert len(first_page["events"]) == 1
    assert len(second_page["events"]) == 1
    assert first_page["events"][0]["id"] != second_page["events"][0]["id"]


def test_audit_cursor_of_another_listing_is_rejected(client: Client, world: World) -> None:
    page = call(client, "GET", "/v1/admin/audit?day=2026-12-04&limit=1", token=world.admin)[1]

    status, error = call(client, "GET", f"/v1/admin/audit?day=2026-12-03&cursor={page['cursor']}", token=world.admin)

    assert status == 400
    assert error["error"]["field"] == "cursor"


def test_flagged_payments_filter(client: Client, world: World) -> None:
    Payment(
        "demo#odd",
        gateway="demo",
        gateway_payment_id="odd",
        account_id=world.customer_id,
        status="completed",
        currency="EUR",
        flags=["currency_mismatch"],
        created_at="2026-12-04T09:40:00Z",
        updated_at="2026-12-04T09:40:00Z",
    ).save()

    flagged = call(client, "GET", "/v1/admin/payments?flagged=true", token=world.admin)[1]
    everything = call(client, "GET", "/v1/admin/payments", token=world.admin)[1]
    mine = call(client, "GET", f"/v1/admin/payments?account_id={world.customer_id}&flagged=true", token=world.admin)[1]

    assert [payment["key"] for payment in flagged["payments"]] == ["demo#odd"]
    assert len(everything["payments"]) >= 2
    assert [payment["key"] for payment in mine["payments"]] == ["demo#odd"]


def test_staff_reply_reaches_customer_ticket(client: Client, world: World) -> None:
    call(client, "POST", f"/v1/admin/tickets/{world.ticket_id}/reply", {"message": "Fixed."}, world.admin)

    ticket = call(client, "GET", f"/v1/tickets/{world.ticket_id}", token=world.customer)[1]

    assert ticket["status"] == "answered"
    assert ticket["messages"][-1] == {"author": "staff", "message": "Fixed.", "created_at": ticket["messages"][-1]["created_at"]}


def test_withdrawn_announcement_leaves_public_list(client: Client, world: World) -> None:
    shown = call(client, "GET", "/v1/announcements")[1]
    call(client, "DELETE", f"/v1/admin/announcements/{world.announcement_id}", None, world.admin)
    after = call(client, "GET", "/v1/announcements")[1]

    assert [item["id"] for item in shown["announcements"]] == [world.announcement_id]
    assert after["announcements"] == []


def test_create_admin_command_reads_password_from_stdin(client: Client) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "create-admin", "--email", "root@example.com"],
        cwd=ROOT,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    token = log_in(client, "root@example.com")
    assert call(client, "GET", "/v1/admin/plans", token=token)[0] == 200
    assert len(audit_events(action="admin.created")) == 1


def test_create_admin_command_rejects_short_password() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "create-admin", "--email", "root@example.com"],
        cwd=ROOT,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "password" in result.stderr
