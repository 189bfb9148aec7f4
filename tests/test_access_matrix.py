"""Who may call each route, for every route in the registry: anonymous callers, the owner,
another customer, an admin, an API key without the route's action and an API key used from
outside its allowed addresses.

Another customer's resource returns 404 `not_found`, exactly as an unknown id does, so a
caller cannot even learn that it exists. No call by anyone but the owner, or an admin on an
admin route, changes the owner's data, and no response to another caller contains the owner's
ids. The resources are real: a VM and an image on the fake Vultr API, an SSH key, a ticket,
API keys and a payment, all created through the API.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from app import app
from chalicelib import clock
from chalicelib.admin.users import create_admin
from chalicelib.api.http import RouteSpec, registered_routes
from chalicelib.catalog import invalidate
from chalicelib.models import ALL_MODELS, REQUEST_BOOKKEEPING_MODELS
from tests.api_calls import PASSWORD, ApiCaller, Reply
from tests.customer_api import VULTR_IMAGE, VULTR_REGION, vultr_region
from tests.fakes.vultr import FakeVultr

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
# A literal public address: the image URL check needs no DNS, and the fake Vultr API never fetches it.
IMAGE_URL = "http://93.184.215.14/images/debian.qcow2"
# The address-limited key allows only this range; every call in this module comes from elsewhere.
KEY_ADDRESS_RANGE = "198.51.100.0/24"
UNKNOWN_ID = "0123456789abcdef0123"
# Path parameters that name one of the owner's resources; another caller must get 404 for them.
OWNER_RESOURCE_IDS = ("vm_id", "image_id", "ssh_key_id", "api_key_id", "ticket_id", "checkout_id")
NEW_PASSWORD = "another correct horse"
# Routes that end the calling session; other callers use a session of their own for them.
SESSION_ENDING = {("POST", "/v1/auth/logout")}

_addresses = itertools.count()
_key_seeds = itertools.count(1)


def ed25519_public_key(comment: str) -> str:
    """Return a distinct, well-formed OpenSSH ed25519 public key line on each call."""
    point = next(_key_seeds).to_bytes(32, "big")
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", point))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def next_address() -> str:
    """Return a fresh client address for each call, so per-address rate limits never interfere."""
    number = next(_addresses)
    return f"203.0.113.{number % 250 + 1}" if number < 250 else f"192.0.2.{number % 250 + 1}"


@dataclass(frozen=True)
class Case:
    """One route method: the status it returns to its rightful caller (the owner on a customer
    route, an admin on an admin route), its body, and which resource each path parameter
    names where that differs from the parameter's name. Strings in the body are formatted
    with the caller's resources."""

    method: str
    path: str
    status: int
    body: Any = None
    ids: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/v1/admin/")


SSH_KEY = {"key_id": "ssh_key_id"}
API_KEY = {"key_id": "api_key_id"}
CATALOG_IMAGE = {"image_id": "catalog_image_id"}
DEMO_REGION = {"region_id": "demo_region_id"}
VM_BODY = {"name": "web2", "region": VULTR_REGION, "plan": "s1", "image": VULTR_IMAGE, "ssh_key": "{ssh_key_id}"}

# The rightful caller runs these in this order, so the reads come first and every route that
# removes a resource runs after the last route that needs it.
CASES: tuple[Case, ...] = (
    Case("GET", "/health", 200),
    Case("GET", "/openapi.json", 200),
    Case("GET", "/v1/catalog", 200),
    Case("GET", "/v1/announcements", 200),
    Case("GET", "/v1/account", 200),
    Case("GET", "/v1/account/runway", 200),
    Case("GET", "/v1/bandwidth", 200),
    Case("GET", "/v1/ledger", 200),
    Case("GET", "/v1/ledger.csv", 200),
    Case("GET", "/v1/vms", 200),
    Case("GET", "/v1/vms/{vm_id}", 200),
    Case("GET", "/v1/vms/{vm_id}/console", 200),
    Case("GET", "/v1/vms/{vm_id}/addresses", 200),
    # Vultr offers no provider actions: the owner reaches the route and gets not_supported.
    Case("GET", "/v1/vms/{vm_id}/actions", 400),
    Case("GET", "/v1/images", 200),
    Case("GET", "/v1/images/{image_id}", 200),
    Case("GET", "/v1/ssh-keys", 200),
    Case("GET", "/v1/ssh-keys/{key_id}", 200, ids=SSH_KEY),
    Case("GET", "/v1/tickets", 200),
    Case("GET", "/v1/tickets/{ticket_id}", 200),
    Case("GET", "/v1/payments", 200),
    Case("GET", "/v1/payments/gateways", 200),
    Case("GET", "/v1/api-keys", 200),
    Case("GET", "/v1/api-keys/actions", 200),
    Case("PATCH", "/v1/vms/{vm_id}", 200, {"name": "renamed"}),
    Case("POST", "/v1/vms/{vm_id}/reimage", 200, {"image": VULTR_IMAGE}),
    Case("POST", "/v1/vms/{vm_id}/resize", 200, {"plan": "m2"}),
    Case("POST", "/v1/vms/{vm_id}/snapshots", 202, {"name": "backup"}),
    Case("PUT", "/v1/vms/{vm_id}/addresses/{ip}/reverse-dns", 200, {"hostname": "web.example.com"}),
    Case("POST", "/v1/vms/{vm_id}/actions/{action}", 400, {"value": "on"}, ids={"action": "provider_action"}),
    Case("POST", "/v1/vms/{vm_id}/{action}", 200, ids={"action": "power_action"}),
    Case("POST", "/v1/tickets/{ticket_id}/messages", 201, {"message": "Any news?"}),
    Case("POST", "/v1/payments", 201, {"gateway": "demo", "amount": "10.00"}),
    # The demo gateway pays at once, so its checkouts take no capture.
    Case("POST", "/v1/payments/{gateway}/{checkout_id}/capture", 400),
    Case("POST", "/v1/api-keys", 201, {"label": "ci"}),
    Case("POST", "/v1/images", 202, {"region": VULTR_REGION, "name": "fetched", "url": IMAGE_URL}),
    Case("POST", "/v1/ssh-keys", 201, {"name": "laptop", "public_key": "{new_public_key}"}),
    Case("POST", "/v1/tickets", 201, {"subject": "Question", "message": "How do I resize?"}),
    Case("POST", "/v1/vms", 201, VM_BODY),
    # The rightful caller is verified already, so the route rejects the request with 409 conflict.
    Case("POST", "/v1/auth/verify-request", 409),
    Case("POST", "/v1/auth/signup", 201, {"email": "{new_email}", "password": PASSWORD}),
    Case("POST", "/v1/auth/login", 200, {"email": "{email}", "password": PASSWORD}),
    Case("POST", "/v1/auth/verify", 400, {"token": "not-a-token"}),
    Case("POST", "/v1/auth/reset-request", 202, {"email": "{email}"}),
    Case("POST", "/v1/auth/reset", 400, {"token": "not-a-token", "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}),
    Case("GET", "/v1/admin/users", 200, query="id={account_id}"),
    Case("GET", "/v1/admin/users/{account_id}", 200),
    Case("POST", "/v1/admin/users/{account_id}/credit", 200, {"amount": "5.00", "reason": "Goodwill"}, headers={"Idempotency-Key": "matrix-credit"}),
    Case("PUT", "/v1/admin/users/{account_id}/vm-limit", 200, {"vm_limit": 7}),
    Case("POST", "/v1/admin/users/{account_id}/impersonate", 201),
    Case("GET", "/v1/admin/vms", 200),
    Case("GET", "/v1/admin/vms/{vm_id}", 200),
    Case("POST", "/v1/admin/vms/{vm_id}/suspend", 200),
    Case("POST", "/v1/admin/vms/{vm_id}/unsuspend", 200),
    Case("GET", "/v1/admin/payments", 200),
    Case("GET", "/v1/admin/audit", 200),
    Case("GET", "/v1/admin/plans", 200),
    Case("POST", "/v1/admin/plans", 201, {"id": "{plan_id}", "name": "Matrix", "ram_mb": 512, "vcpus": 1, "disk_gb": 10,
                                          "bandwidth_gib": 100, "price_hourly": "0.005"}),
    Case("PATCH", "/v1/admin/plans/{plan_id}", 200, {"name": "Matrix 2"}),
    Case("POST", "/v1/admin/plans/{plan_id}/prices", 201, {"price_hourly": "0.006", "effective_from": "2027-01-01T00:00:00Z"}),
    Case("PUT", "/v1/admin/plans/{plan_id}/regions/{region_id}", 200, {"backend_id": "s1"}, ids=DEMO_REGION),
    Case("DELETE", "/v1/admin/plans/{plan_id}/regions/{region_id}", 200, ids=DEMO_REGION),
    Case("POST", "/v1/admin/plans/{plan_id}/enable", 200),
    Case("POST", "/v1/admin/plans/{plan_id}/disable", 200),
    Case("GET", "/v1/admin/regions", 200),
    Case("POST", "/v1/admin/regions", 201, {"id": "{region_id}", "name": "Matrix", "backend": "demo"}),
    Case("POST", "/v1/admin/regions/{region_id}/import", 200),
    Case("POST", "/v1/admin/regions/{region_id}/disable", 200),
    Case("POST", "/v1/admin/regions/{region_id}/enable", 200),
    Case("GET", "/v1/admin/images", 200),
    Case("POST", "/v1/admin/images", 201, {"id": "{catalog_image_id}", "name": "Matrix", "region": "demo", "backend_id": "debian-12-x64"}),
    Case("POST", "/v1/admin/images/{image_id}/enable", 200, ids=CATALOG_IMAGE),
    Case("POST", "/v1/admin/images/{image_id}/disable", 200, ids=CATALOG_IMAGE),
    Case("GET", "/v1/admin/announcements", 200),
    Case("POST", "/v1/admin/announcements", 201, {"title": "Maintenance", "body": "Tonight."}),
    Case("DELETE", "/v1/admin/announcements/{announcement_id}", 200),
    Case("GET", "/v1/admin/tickets", 200),
    Case("GET", "/v1/admin/tickets/{ticket_id}", 200),
    Case("POST", "/v1/admin/tickets/{ticket_id}/reply", 201, {"message": "Looking into it."}),
    Case("POST", "/v1/admin/tickets/{ticket_id}/close", 200),
    Case("POST", "/v1/tickets/{ticket_id}/close", 200),
    Case("DELETE", "/v1/ssh-keys/{key_id}", 200, ids=SSH_KEY),
    Case("DELETE", "/v1/images/{image_id}", 200),
    Case("DELETE", "/v1/vms/{vm_id}", 200),
    Case("DELETE", "/v1/api-keys/{key_id}", 204, ids=API_KEY),
    # The same password again: the route runs in full, yet every caller can still log in.
    Case("POST", "/v1/account/password", 200, {"current_password": PASSWORD, "new_password": PASSWORD}),
    Case("POST", "/v1/auth/logout-others", 200),
    Case("POST", "/v1/auth/logout", 204),
    Case("POST", "/v1/admin/users/{account_id}/disable", 200),
    Case("POST", "/v1/admin/users/{account_id}/enable", 200),
    # The customer still has the VM that POST /v1/vms created, and an account goes only once it has none.
    Case("DELETE", "/v1/admin/users/{account_id}", 409),
)
CASES_BY_ROUTE = {case.key: case for case in CASES}
ROUTES: dict[tuple[str, str], RouteSpec] = {(spec.method, spec.path): spec for spec in registered_routes()}


@dataclass
class Customer:
    email: str
    token: str
    ids: dict[str, str]


@dataclass
class World:
    api: ApiCaller
    owner: Customer
    other: Customer
    admin: Customer
    keys: dict[str, str]
    fake: FakeVultr
    counter: Iterator[int] = field(default_factory=itertools.count)

    def stranger(self) -> dict[str, str]:
        """Return the owner's ids with an unused e-mail address, a new one on each call."""
        return {**self.owner.ids, "email": f"stranger{next(self.counter)}@example.com"}

    def call(self, case: Case, caller: Customer | None, ids: Mapping[str, str], token: str | None = None) -> Reply:
        number = next(self.counter)
        values = {**ids, "new_email": f"new{number}@example.com", "new_public_key": ed25519_public_key(f"new{number}@example")}
        path = case.path.format_map({name: values[case.ids.get(name, name)] for name in _placeholders(case.path)})
        if case.query:
            path += "?" + case.query.format_map(values)
        body = _format(case.body, values)
        credential = token
        if credential is None and caller is not None:
            credential = caller.token
        return send(self.api, case.method, path, body, credential, dict(case.headers))


def send(api: ApiCaller, method: str, path: str, body: Any, token: str | None, headers: dict[str, str]) -> Reply:
    """Send one request from a fresh address; a body that is not JSON (the CSV statement) stays text."""
    request_headers = {"Content-Type": "application/json", **headers}
    if token:
        request_headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode() if body is not None else b""
    api.gateway.event_converter.LOCAL_SOURCE_IP = next_address()
    response = api.gateway.handle_request(method=method, path=path, headers=request_headers, body=payload)
    text = response.get("body") or ""
    is_json = response["headers"].get("Content-Type", "").startswith("application/json")
    return Reply(response["statusCode"], json.loads(text) if text and is_json else text or None, dict(response["headers"]))


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _format(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(values)
    if isinstance(value, dict):
        return {name: _format(item, values) for name, item in value.items()}
    return value


def settle(fake: FakeVultr) -> None:
    """Finish every installation, state change and snapshot on the fake Vultr API."""
    for instance_id in list(fake.instances):
        fake.make_active(instance_id)
    fake.finish_snapshots()


def create_customer(api: ApiCaller, fake: FakeVultr, email: str) -> Customer:
    """Sign up a verified customer with credit, a VM, an image, an SSH key, a ticket, an API key and a payment."""
    token = api.verified_session(email)

    def created(method: str, path: str, body: Any, status: int) -> dict[str, Any]:
        reply = api.call(method, path, body, token, source_ip=next_address())
        assert reply.status == status, (path, reply.body)
        return reply.body

    payment = created("POST", "/v1/payments", {"gateway": "demo", "amount": "50.00"}, 201)
    ssh_key = created("POST", "/v1/ssh-keys", {"name": "main", "public_key": ed25519_public_key(email)}, 201)
    vm = created("POST", "/v1/vms", {**VM_BODY, "ssh_key": ssh_key["id"]}, 201)
    image = created("POST", "/v1/images", {"region": VULTR_REGION, "name": "backup", "url": IMAGE_URL}, 202)
    ticket = created("POST", "/v1/tickets", {"subject": "Hello", "message": "First message"}, 201)
    settle(fake)
    assert created("GET", f"/v1/vms/{vm['id']}", None, 200)["state"] == "active"
    api_key = created("POST", "/v1/api-keys", {"label": "spare"}, 201)
    addresses = created("GET", f"/v1/vms/{vm['id']}/addresses", None, 200)["addresses"]
    account_id = created("GET", "/v1/account", None, 200)["account_id"]

    ids = {
        "email": email,
        "account_id": account_id,
        "vm_id": vm["id"],
        "image_id": image["id"],
        "ssh_key_id": ssh_key["id"],
        "api_key_id": api_key["id"],
        "ticket_id": ticket["id"],
        "checkout_id": payment["payment_id"],
        "gateway": "demo",
        "ip": addresses[0]["ip"],
        "power_action": "reboot",
        "provider_action": "tuntap",
        "plan_id": "mx-plan",
        "region_id": "mx-region",
        "demo_region_id": "demo",
        "catalog_image_id": "mx-image",
        "announcement_id": "none",
    }
    return Customer(email, token, ids)


@pytest.fixture(scope="module")
def world(tables: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tools.seed import seed_demo

    for model in ALL_MODELS:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    invalidate()
    seed_demo()
    clock.set_time(T0)

    with pytest.MonkeyPatch.context() as monkeypatch, vultr_region(tmp_path_factory.mktemp("matrix"), monkeypatch) as fake:
        api = ApiCaller(app)
        owner = create_customer(api, fake, "owner@example.com")
        other = create_customer(api, fake, "other@example.com")
        create_admin("admin@example.com", PASSWORD)
        admin = Customer("admin@example.com", api.log_in("admin@example.com", source_ip=next_address()), {})

        def owner_key(**limits: Any) -> str:
            reply = api.call("POST", "/v1/api-keys", {"label": "limited", **limits}, owner.token, source_ip=next_address())
            assert reply.status == 201, reply.body
            return reply.body["secret"]

        keys = {
            "tickets_only": owner_key(actions=["tickets:read"]),
            "vms_only": owner_key(actions=["vms:read"]),
            "other_addresses": owner_key(allowed_cidrs=[KEY_ADDRESS_RANGE]),
        }
        yield World(api, owner, other, admin, keys, fake)
    clock.set_time(None)
    invalidate()


def owner_items(owner: Customer) -> list[str]:
    """Return every stored item that names one of the owner's ids, as sorted JSON text."""
    needles = [owner.ids[name] for name in ("account_id", *OWNER_RESOURCE_IDS)]
    items = []
    for model in ALL_MODELS:
        if model in REQUEST_BOOKKEEPING_MODELS:
            continue
        for item in model.scan(consistent_read=True):
            text = json.dumps(item.attribute_values, sort_keys=True, default=str)
            if any(needle in text for needle in needles):
                items.append(text)
    return sorted(items)


def names_owner(reply: Reply, owner: Customer) -> bool:
    text = json.dumps(reply.body)
    return any(owner.ids[name] in text for name in ("account_id", "email", *OWNER_RESOURCE_IDS))


def names_owner_resource(case: Case) -> bool:
    """Return whether a path parameter of the case names one of the owner's resources."""
    return any(case.ids.get(name, name) in OWNER_RESOURCE_IDS for name in _placeholders(case.path))


def key_without_action(world: World, spec: RouteSpec) -> str:
    return world.keys["vms_only"] if spec.action == "tickets:read" else world.keys["tickets_only"]


def test_every_registered_route_has_a_case() -> None:
    assert set(ROUTES) - set(CASES_BY_ROUTE) == set()
    assert set(CASES_BY_ROUTE) - set(ROUTES) == set()
    assert len(CASES_BY_ROUTE) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{case.method} {case.path}" for case in CASES])
def test_route_rejects_everyone_but_rightful_caller(world: World, case: Case) -> None:
    spec = ROUTES[case.key]
    before = owner_items(world.owner)

    if spec.public:
        # A public route acts on whatever account its body names, so each caller names a stranger.
        replies = [world.call(case, caller, world.stranger()) for caller in (None, world.other, world.admin, world.owner)]
        replies += [world.call(case, None, world.stranger(), token=key) for key in world.keys.values()]
        assert {reply.status for reply in replies} == {replies[0].status}, [reply.body for reply in replies]
        assert not any(names_owner(reply, world.owner) for reply in replies)
    else:
        target = world.owner.ids
        anonymous = world.call(case, None, target)
        outside_range = world.call(case, None, target, token=world.keys["other_addresses"])
        without_action = world.call(case, None, target, token=key_without_action(world, spec))

        assert (anonymous.status, anonymous.body["error"]["code"]) == (401, "unauthenticated")
        assert (outside_range.status, outside_range.body["error"]["code"]) == (403, "forbidden")
        assert (without_action.status, without_action.body["error"]["code"]) == (403, "forbidden")

    if case.is_admin:
        for caller in (world.owner, world.other):
            reply = world.call(case, caller, world.owner.ids)
            assert (reply.status, reply.body["error"]["code"]) == (403, "forbidden")
    elif not spec.public:
        for caller in (world.other, world.admin):
            token = world.api.log_in(caller.email, source_ip=next_address()) if case.key in SESSION_ENDING else None
            reply = world.call(case, caller, world.owner.ids, token=token)
            assert reply.status not in (401, 403), reply.body
            if reply.status < 400:
                assert not names_owner(reply, world.owner), reply.body
            if names_owner_resource(case):
                unknown = world.call(case, caller, {**world.owner.ids, **dict.fromkeys(OWNER_RESOURCE_IDS, UNKNOWN_ID)})
                assert reply.status == 404, reply.body
                assert reply.body["error"]["code"] == unknown.body["error"]["code"] == "not_found"
                assert reply.body["error"]["field"] == unknown.body["error"]["field"]

    assert owner_items(world.owner) == before


def test_rightful_callers_reach_every_route(world: World) -> None:
    """Run every route as its rightful caller, on a customer of its own, in CASES order."""
    customer = create_customer(world.api, world.fake, "rightful@example.com")
    ids = dict(customer.ids)

    for case in CASES:
        caller = world.admin if case.is_admin else customer
        reply = world.call(case, caller, ids)
        assert reply.status == case.status, (case.method, case.path, reply.body)
        if case.key == ("POST", "/v1/admin/announcements"):
            ids["announcement_id"] = reply.body["id"]
        settle(world.fake)
