"""The customer API through Chalice's test client, on DynamoDB Local: the walking
skeleton's routes and the error format for bad input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.billing.planner import plan_hour
from chalicelib.models import ALL_MODELS, REQUEST_BOOKKEEPING_MODELS
from chalicelib.notify.sender import outbox

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def client() -> Client:
    with Client(app) as test_client:
        yield test_client


def call(client: Client, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = b""
    if raw is not None:
        payload = raw
    elif body is not None:
        payload = json.dumps(body).encode()
    response = client.http.request(method, path, headers=headers, body=payload)
    return response.status_code, json.loads(response.body or b"null")


def signed_in(client: Client, email: str = "ann@example.com") -> str:
    """Sign up, verify the address with the token from the e-mail, and log in."""
    clock.set_time(T0)
    assert call(client, "POST", "/v1/auth/signup", {"email": email, "password": "correct horse battery"})[0] == 201
    assert call(client, "POST", "/v1/auth/verify", {"token": mailed_token(email, "verify_email")})[0] == 200
    status, body = call(client, "POST", "/v1/auth/login", {"email": email, "password": "correct horse battery"})
    assert status == 200
    return body["token"]


def mailed_token(email: str, template: str) -> str:
    """Return the token in the newest `template` e-mail sent to `email`."""
    notice = next(notice for notice in reversed(outbox) if notice.to == email and notice.template == template)
    match = re.search(r"token:\s+(\S+)", notice.body)
    assert match, notice.body
    return match.group(1)


def item_count() -> int:
    """Count the customer data items; rate-limit counters and Idempotency-Key records are left out."""
    return sum(1 for model in ALL_MODELS if model not in REQUEST_BOOKKEEPING_MODELS for _ in model.scan(consistent_read=True))


def test_health(client: Client) -> None:
    status, body = call(client, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok"


def test_first_session_signup_to_ledger(client: Client) -> None:
    token = signed_in(client)

    assert call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, token)[0] == 201
    status, vm = call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)
    assert status == 201
    assert vm["state"] == "active"

    clock.set_time(datetime(2026, 12, 4, 11, 5, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 10, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 10, tzinfo=UTC))

    status, ledger = call(client, "GET", "/v1/ledger?month=2026-12", token=token)
    assert status == 200
    assert [line["amount"]["amount"] for line in ledger["lines"]] == ["20.00", "-0.0075"]
    status, account = call(client, "GET", "/v1/account", token=token)
    assert account["balance"] == {"amount": "19.9925", "micros": 19_992_500}
    assert account["hourly_cost"]["micros"] == 7_500

    status, listed = call(client, "GET", "/v1/vms", token=token)
    assert [item["id"] for item in listed["vms"]] == [vm["id"]]
    assert call(client, "DELETE", f"/v1/vms/{vm['id']}", token=token)[0] == 200


def test_catalog_lists_demo_region_plans_images(client: Client) -> None:
    status, catalog = call(client, "GET", "/v1/catalog")
    assert status == 200
    assert [region["id"] for region in catalog["regions"]] == ["demo"]
    assert {plan["id"] for plan in catalog["plans"]} == {"s1", "m2", "l4"}
    assert catalog["plans"][-1]["price_hourly"]["amount"] == "0.0075"
    assert len(catalog["images"]) == 2


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/auth/signup", {"email": "x@example.com"}, "password"),
        ("/v1/auth/signup", {"email": "not-an-email", "password": "correct horse battery"}, "email"),
        ("/v1/auth/signup", {"email": "x@example.com", "password": "short"}, "password"),
        ("/v1/auth/signup", {"email": "x@example.com", "password": "correct horse battery", "admin": True}, "admin"),
        ("/v1/auth/signup", {"email": 42, "password": "correct horse battery"}, "email"),
    ],
)
def test_signup_bad_input_names_field_and_writes_nothing(client: Client, path: str, body: dict[str, Any], field: str) -> None:
    before = item_count()

    status, error = call(client, "POST", path, body)

    assert status == 400
    assert error["error"]["field"] == field
    assert item_count() == before


def test_malformed_json_is_rejected(client: Client) -> None:
    status, error = call(client, "POST", "/v1/auth/signup", raw=b"{not json")
    assert status == 400
    assert error["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gateway": "demo", "amount": "-5.00"}, "amount"),
        ({"gateway": "demo", "amount": "twenty"}, "amount"),
        ({"gateway": "demo", "amount": 20.0}, "amount"),
        ({"gateway": "demo", "amount": "1.00"}, "amount"),
        ({"gateway": "bitcoin", "amount": "20.00"}, "gateway"),
    ],
)
def test_payment_bad_input_names_field_and_credits_nothing(client: Client, body: dict[str, Any], field: str) -> None:
    token = signed_in(client)
    before = item_count()

    status, error = call(client, "POST", "/v1/payments", body, token)

    assert status == 400
    assert error["error"]["field"] == field
    assert item_count() == before


@pytest.mark.parametrize(
    ("override", "field"),
    [({"plan": "huge"}, "plan"), ({"region": "mars"}, "region"), ({"image": "windows"}, "image"), ({"name": "bad name!"}, "name")],
)
def test_vm_bad_input_names_field_and_writes_nothing(client: Client, override: dict[str, str], field: str) -> None:
    token = signed_in(client)
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, token)
    before = item_count()

    body = {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"} | override
    status, error = call(client, "POST", "/v1/vms", body, token)

    assert status == 400
    assert error["error"]["field"] == field
    assert item_count() == before


def test_vm_needs_minimum_credit(client: Client) -> None:
    token = signed_in(client)

    status, error = call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)

    assert status == 402
    assert error["error"]["code"] == "insufficient_credit"


@pytest.mark.parametrize("token", ["forged-token", "", "x" * 500])
def test_forged_token_is_rejected(client: Client, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.http.get("/v1/account", headers=headers)
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "unauthenticated"


def test_expired_token_is_rejected(client: Client) -> None:
    token = signed_in(client)
    clock.set_time(datetime(2026, 12, 6, tzinfo=UTC))

    status, _ = call(client, "GET", "/v1/account", token=token)

    assert status == 401


def test_other_customer_cannot_see_vm(client: Client) -> None:
    owner = signed_in(client, "owner@example.com")
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, owner)
    _, vm = call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, owner)
    intruder = signed_in(client, "intruder@example.com")

    assert call(client, "GET", f"/v1/vms/{vm['id']}", token=intruder)[0] == 404
    assert call(client, "DELETE", f"/v1/vms/{vm['id']}", token=intruder)[0] == 404
    assert call(client, "GET", "/v1/vms", token=intruder)[1] == {"vms": []}


def test_ledger_month_must_be_valid(client: Client) -> None:
    token = signed_in(client)
    status, error = call(client, "GET", "/v1/ledger?month=2026-13", token=token)
    assert status == 400
    assert error["error"]["field"] == "month"


def test_statement_csv_has_opening_lines_and_closing(client: Client) -> None:
    token = signed_in(client)
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, token)
    call(client, "POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)
    clock.set_time(datetime(2026, 12, 4, 11, 5, tzinfo=UTC))
    plan_hour(datetime(2026, 12, 4, 10, tzinfo=UTC))

    response = client.http.get("/v1/ledger.csv?month=2026-12", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = [row.split(",") for row in response.body.decode().strip().split("\r\n")]
    assert rows[0] == ["time", "kind", "description", "amount", "currency", "balance"]
    assert rows[1][1] == "opening_balance"
    assert rows[1][-1] == "0.00"
    assert [row[1] for row in rows[2:-1]] == ["payment", "vm"]
    assert rows[-1][1] == "closing_balance"
    assert rows[-1][-1] == "19.9925"


def test_deeply_nested_json_is_rejected(client: Client) -> None:
    status, error = call(client, "POST", "/v1/auth/login", raw=b"[" * 30000 + b"]" * 30000)
    assert status == 400
    assert error["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "1999-12"])
def test_ledger_month_outside_range_is_rejected(client: Client, month: str) -> None:
    token = signed_in(client)
    for path in ("/v1/ledger", "/v1/ledger.csv"):
        status, error = call(client, "GET", f"{path}?month={month}", token=token)
        assert status == 400
        assert error["error"]["field"] == "month"


def test_parallel_creates_never_exceed_vm_limit(client: Client) -> None:
    import threading

    from chalicelib.models.accounts import Account
    from chalicelib.vms.service import create_vm, list_vms

    token = signed_in(client)
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, token)
    account = next(iter(Account.scan()))
    results: list[str] = []

    def create(index: int) -> None:
        try:
            create_vm(Account.get(account.account_id), f"p{index}", "demo", "s1", "debian-12")
            results.append("created")
        except Exception as error:  # noqa: BLE001 - the outcome is what the test counts
            results.append(type(error).__name__)

    threads = [threading.Thread(target=create, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(list_vms(account.account_id)) <= account.vm_limit
    assert results.count("created") == len(list_vms(account.account_id))
    assert set(results) <= {"created", "LimitReached"}


def test_last_vm_place_goes_to_one(client: Client) -> None:
    import threading

    from chalicelib.models.accounts import Account
    from chalicelib.models.vms import Vm
    from chalicelib.vms.service import create_vm, list_vms

    token = signed_in(client)
    call(client, "POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, token)
    account = next(iter(Account.scan()))
    for index in range(account.vm_limit - 1):
        create_vm(Account.get(account.account_id), f"base{index}", "demo", "s1", "debian-12")
    results: list[str] = []

    def create(index: int) -> None:
        try:
            create_vm(Account.get(account.account_id), f"race{index}", "demo", "s1", "debian-12")
            results.append("created")
        except Exception as error:  # noqa: BLE001 - the outcome is what the test counts
            results.append(type(error).__name__)

    # Every request records its VM before any of them counts: the closest race there is.
    barrier = threading.Barrier(10)
    first_counts: set[int] = set()

    def hold_first_count(**_: object) -> None:
        if threading.get_ident() not in first_counts:
            first_counts.add(threading.get_ident())
            barrier.wait(timeout=10)

    client_events = Vm._get_connection().connection.client.meta.events
    client_events.register("before-call.dynamodb.Query", hold_first_count)
    threads = [threading.Thread(target=create, args=(index,)) for index in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        client_events.unregister("before-call.dynamodb.Query", hold_first_count)

    assert results.count("created") == 1
    assert results.count("LimitReached") == 9
    assert len(list_vms(account.account_id)) == account.vm_limit
