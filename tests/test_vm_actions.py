"""VM actions through the customer API: rename, reimage, resize, snapshot, console,
addresses and reverse DNS, provider actions and power. Each needs its capability in the
region's backend and an active VM that is not suspended. The demo region lacks some
capabilities, so regions on the fake Vultr and SolusVM servers provide the rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.models.demo import DemoMachine
from chalicelib.models.vms import Vm
from tests.customer_api import (
    SOLUSVM_IMAGE,
    SOLUSVM_REGION,
    VULTR_IMAGE,
    VULTR_REGION,
    call,
    customer,
    item_count,
    solusvm_region,
    vultr_region,
)
from tests.fakes.solusvm import FakeSolusVm
from tests.fakes.vultr import FakeVultr
from tests.test_ssh_keys import ED25519

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 6, 8, 9, 30, tzinfo=UTC)
CREDIT = 20_000_000
DEMO_VM = {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def vultr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVultr]:
    with vultr_region(tmp_path, monkeypatch) as fake:
        yield fake


@pytest.fixture
def solusvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSolusVm]:
    with solusvm_region(tmp_path, monkeypatch) as fake:
        yield fake


def demo_vm(client: Client, email: str = "ann@example.com", credit: int = CREDIT) -> tuple[str, dict[str, Any]]:
    _, token = customer(client, email, credit, T0)
    status, vm = call(client, "POST", "/v1/vms", DEMO_VM, token)
    assert status == 201, vm
    assert vm["state"] == "active"
    return token, vm


def vultr_vm(client: Client, fake: FakeVultr) -> tuple[str, dict[str, Any]]:
    _, token = customer(client, "vultr@example.com", CREDIT, T0)
    status, vm = call(client, "POST", "/v1/vms", {**DEMO_VM, "region": VULTR_REGION, "image": VULTR_IMAGE}, token)
    assert status == 201, vm
    fake.make_active(stored_vm(vm).backend_id or "")
    status, vm = call(client, "GET", f"/v1/vms/{vm['id']}", token=token)
    assert vm["state"] == "active"
    return token, vm


def solusvm_vm(client: Client, fake: FakeSolusVm) -> tuple[str, dict[str, Any]]:
    _, token = customer(client, "sol@example.com", CREDIT, T0)
    status, vm = call(client, "POST", "/v1/vms", {**DEMO_VM, "region": SOLUSVM_REGION, "image": SOLUSVM_IMAGE}, token)
    assert status == 201, vm
    fake.make_active(stored_vm(vm).backend_id or "")
    status, vm = call(client, "GET", f"/v1/vms/{vm['id']}", token=token)
    assert vm["state"] == "active"
    return token, vm


def stored_vm(vm: dict[str, Any]) -> Vm:
    (stored,) = [item for item in Vm.scan(consistent_read=True) if item.vm_id == vm["id"]]
    return stored


def machine(vm: dict[str, Any]) -> DemoMachine:
    return DemoMachine.get(stored_vm(vm).backend_id or "", consistent_read=True)


def suspend(vm: dict[str, Any]) -> None:
    stored = stored_vm(vm)
    Vm(stored.account_id, stored.vm_id).update(actions=[Vm.suspended.set("auto")])


# Rename.


def test_rename_changes_name_here_and_on_backend(client: Client) -> None:
    token, vm = demo_vm(client)

    status, renamed = call(client, "PATCH", f"/v1/vms/{vm['id']}", {"name": "db1.example"}, token)

    assert status == 200
    assert renamed["name"] == "db1.example"
    assert machine(vm).name == "db1.example"


def test_rename_on_vultr_sets_label(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)

    assert call(client, "PATCH", f"/v1/vms/{vm['id']}", {"name": "api2"}, token)[0] == 200

    assert vultr.instances[stored_vm(vm).backend_id or ""]["label"] == "api2"


def test_rename_bad_input_names_field_and_keeps_name(client: Client) -> None:
    token, vm = demo_vm(client)

    for body, field in [({"name": "bad name!"}, "name"), ({}, "name"), ({"name": "a", "plan": "m2"}, "plan")]:
        status, error = call(client, "PATCH", f"/v1/vms/{vm['id']}", body, token)

        assert status == 400, body
        assert error["error"]["field"] == field, body
    assert stored_vm(vm).name == "web1"
    assert machine(vm).name == "web1"


# Reimage.


def test_reimage_installs_image_and_key(client: Client) -> None:
    token, vm = demo_vm(client)
    _, key = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519}, token)

    status, reimaged = call(client, "POST", f"/v1/vms/{vm['id']}/reimage", {"image": "ubuntu-24.04", "ssh_key": key["id"]}, token)

    assert status == 200, reimaged
    assert reimaged["image"] == "ubuntu-24.04"
    assert machine(vm).image == "ubuntu-24.04-x64"


def test_reimage_bad_input_names_field_and_changes_nothing(client: Client) -> None:
    token, vm = demo_vm(client)
    cases = [
        ({"image": "windows"}, "image"),
        ({"image": VULTR_IMAGE}, "image"),
        ({"image": "ubuntu-24.04", "ssh_key": "key_000000000000"}, "ssh_key"),
        ({"ssh_key": "key_000000000000"}, "image"),
    ]

    for body, field in cases:
        status, error = call(client, "POST", f"/v1/vms/{vm['id']}/reimage", body, token)

        assert status == 400, body
        assert error["error"]["field"] == field, body
    assert machine(vm).image == "debian-12-x64"
    assert stored_vm(vm).image_id == "debian-12"


# Resize.


def test_resize_prices_new_plan_from_next_vm_hour(client: Client) -> None:
    token, vm = demo_vm(client)
    clock.set_time(datetime(2026, 6, 8, 10, 10, tzinfo=UTC))

    status, resized = call(client, "POST", f"/v1/vms/{vm['id']}/resize", {"plan": "m2"}, token)

    assert status == 200
    assert resized["plan"] == "m2"
    assert machine(vm).plan == "demo-2"
    history = stored_vm(vm).plan_history
    assert [entry["plan"] for entry in history] == ["s1", "m2"]
    assert history[-1]["price_from"] == "2026-06-08T10:30:00Z"
    assert resized["price_hourly"]["amount"] == "0.0075"


def test_resize_to_same_plan_is_rejected(client: Client) -> None:
    token, vm = demo_vm(client)

    status, error = call(client, "POST", f"/v1/vms/{vm['id']}/resize", {"plan": "s1"}, token)

    assert status == 400
    assert error["error"]["field"] == "plan"
    assert len(stored_vm(vm).plan_history) == 1


def test_upgrade_needs_minimum_credit_but_downgrade_does_not(client: Client) -> None:
    token, vm = demo_vm(client, credit=1_000_000)
    assert call(client, "POST", f"/v1/vms/{vm['id']}/resize", {"plan": "m2"}, token)[0] == 200
    adjust_credit(stored_vm(vm).account_id, -900_000, "Credit used elsewhere", "spent")

    status, error = call(client, "POST", f"/v1/vms/{vm['id']}/resize", {"plan": "l4"}, token)
    assert status == 402
    assert error["error"]["code"] == "insufficient_credit"

    assert call(client, "POST", f"/v1/vms/{vm['id']}/resize", {"plan": "s1"}, token)[0] == 200
    assert stored_vm(vm).plan_id == "s1"


def test_resize_bad_input_names_field_and_changes_nothing(client: Client) -> None:
    token, vm = demo_vm(client)

    for body in ({"plan": "huge"}, {"plan": 2}, {}):
        status, error = call(client, "POST", f"/v1/vms/{vm['id']}/resize", body, token)

        assert status == 400, body
        assert error["error"]["field"] == "plan", body
    assert stored_vm(vm).plan_id == "s1"


# Console, addresses, reverse DNS.


def test_console_url_from_backend(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)

    status, console = call(client, "GET", f"/v1/vms/{vm['id']}/console", token=token)

    assert status == 200
    assert console["url"] == vultr.instances[stored_vm(vm).backend_id or ""]["kvm"]


def test_addresses_list_marks_reverse_dns_editable(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)

    status, listed = call(client, "GET", f"/v1/vms/{vm['id']}/addresses", token=token)

    assert status == 200
    assert {item["version"] for item in listed["addresses"]} == {4, 6}
    assert all(item["reverse_dns_editable"] for item in listed["addresses"])


def test_demo_addresses_are_not_reverse_dns_editable(client: Client) -> None:
    token, vm = demo_vm(client)

    _, listed = call(client, "GET", f"/v1/vms/{vm['id']}/addresses", token=token)

    assert len(listed["addresses"]) == 2
    assert not any(item["reverse_dns_editable"] for item in listed["addresses"])


def test_reverse_dns_for_ipv4_and_ipv6(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)
    _, listed = call(client, "GET", f"/v1/vms/{vm['id']}/addresses", token=token)
    by_version = {item["version"]: item["ip"] for item in listed["addresses"]}

    for version, hostname in ((4, "Web.Example.com."), (6, "web6.example.com")):
        path = f"/v1/vms/{vm['id']}/addresses/{by_version[version]}/reverse-dns"
        status, address = call(client, "PUT", path, {"hostname": hostname}, token)

        assert status == 200, address
        assert address["reverse_dns"] == hostname.lower().rstrip(".")
    assert vultr.reverse[by_version[4]] == "web.example.com"
    assert vultr.reverse[by_version[6]] == "web6.example.com"


def test_reverse_dns_bad_input_rejected(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)
    main_ip = vultr.instances[stored_vm(vm).backend_id or ""]["main_ip"]
    cases = [
        (main_ip, {"hostname": "-bad.example.com"}, 400, "hostname"),
        (main_ip, {"hostname": "localhost"}, 400, "hostname"),
        (main_ip, {"hostname": "under_score.example.com"}, 400, "hostname"),
        (main_ip, {"hostname": "example.123"}, 400, "hostname"),
        (main_ip, {"hostname": "bücher.example"}, 400, "hostname"),
        (main_ip, {"hostname": "a" * 64 + ".example.com"}, 400, "hostname"),
        (main_ip, {}, 400, "hostname"),
        ("not-an-ip", {"hostname": "web.example.com"}, 400, "ip"),
        ("198.51.100.7", {"hostname": "web.example.com"}, 404, "ip"),
    ]

    for ip, body, status, field in cases:
        answer, error = call(client, "PUT", f"/v1/vms/{vm['id']}/addresses/{ip}/reverse-dns", body, token)

        assert answer == status, (ip, body)
        assert error["error"]["field"] == field, (ip, body)
    assert vultr.reverse == {}


# Capabilities the demo region lacks.


def test_missing_capability_is_not_supported_and_writes_nothing(client: Client) -> None:
    token, vm = demo_vm(client)
    before = item_count()
    cases = [
        ("POST", "/snapshots", {"name": "nightly"}, "snapshot"),
        ("PUT", "/addresses/192.0.2.9/reverse-dns", {"hostname": "web.example.com"}, "reverse DNS"),
        ("GET", "/actions", None, "provider actions"),
        ("POST", "/actions/tuntap", {"value": "enable"}, "provider action 'tuntap'"),
    ]

    for method, path, body, action in cases:
        status, error = call(client, method, f"/v1/vms/{vm['id']}{path}", body, token)

        assert status == 400, path
        assert error["error"]["code"] == "not_supported", path
        assert error["error"]["message"] == f"{action} is not supported in region demo"
    assert item_count() == before


def test_snapshot_bad_name_writes_nothing(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)
    before = item_count()

    status, error = call(client, "POST", f"/v1/vms/{vm['id']}/snapshots", {"name": "  "}, token)

    assert status == 400
    assert error["error"]["field"] == "name"
    assert item_count() == before
    assert vultr.snapshots == {}


# Provider actions.


def test_provider_action_runs_with_offered_value(client: Client, solusvm: FakeSolusVm) -> None:
    token, vm = solusvm_vm(client, solusvm)

    status, listed = call(client, "GET", f"/v1/vms/{vm['id']}/actions", token=token)
    assert status == 200
    assert [(item["action"], item["options"]) for item in listed["actions"]] == [
        ("tuntap", {"enable": "On", "disable": "Off"})
    ]

    status, ran = call(client, "POST", f"/v1/vms/{vm['id']}/actions/tuntap", {"value": "enable"}, token)

    assert status == 200, ran
    assert solusvm.servers[stored_vm(vm).backend_id or ""].tun is True


def test_provider_action_bad_input_names_field(client: Client, solusvm: FakeSolusVm) -> None:
    token, vm = solusvm_vm(client, solusvm)
    cases = [
        ("tuntap", {"value": "sideways"}, "value"),
        ("tuntap", None, "value"),
        ("format-disk", {"value": "yes"}, "action"),
        ("tuntap", {"value": "enable", "force": True}, "force"),
    ]

    for action, body, field in cases:
        status, error = call(client, "POST", f"/v1/vms/{vm['id']}/actions/{action}", body, token)

        assert status == 400, (action, body)
        assert error["error"]["field"] == field, (action, body)
    assert solusvm.servers[stored_vm(vm).backend_id or ""].tun is False


# Power, suspension and ownership.


def test_power_route_still_starts_and_stops(client: Client) -> None:
    token, vm = demo_vm(client)

    status, stopped = call(client, "POST", f"/v1/vms/{vm['id']}/stop", token=token)
    assert status == 200
    assert stopped["power"] == "offline"
    assert machine(vm).power == "offline"

    status, started = call(client, "POST", f"/v1/vms/{vm['id']}/start", token=token)
    assert started["power"] == "online"

    status, error = call(client, "POST", f"/v1/vms/{vm['id']}/explode", token=token)
    assert status == 400
    assert error["error"]["field"] == "action"


def test_suspended_vm_refuses_actions(client: Client) -> None:
    token, vm = demo_vm(client)
    suspend(vm)
    cases = [
        ("PATCH", "", {"name": "renamed"}),
        ("POST", "/reimage", {"image": "ubuntu-24.04"}),
        ("POST", "/resize", {"plan": "m2"}),
        ("GET", "/console", None),
        ("POST", "/start", None),
        ("POST", "/reboot", None),
    ]

    for method, path, body in cases:
        status, error = call(client, method, f"/v1/vms/{vm['id']}{path}", body, token)

        assert status == 409, path
        assert error["error"]["code"] == "vm_suspended", path
    assert stored_vm(vm).name == "web1"
    assert stored_vm(vm).plan_id == "s1"
    assert stored_vm(vm).image_id == "debian-12"


def test_suspended_vm_may_stop_list_addresses_and_delete(client: Client) -> None:
    token, vm = demo_vm(client)
    suspend(vm)

    assert call(client, "POST", f"/v1/vms/{vm['id']}/stop", token=token)[0] == 200
    assert call(client, "GET", f"/v1/vms/{vm['id']}/addresses", token=token)[0] == 200
    assert call(client, "DELETE", f"/v1/vms/{vm['id']}", token=token)[0] == 200


def test_suspended_vm_refuses_snapshot_and_reverse_dns(client: Client, vultr: FakeVultr) -> None:
    token, vm = vultr_vm(client, vultr)
    suspend(vm)
    ip = vultr.instances[stored_vm(vm).backend_id or ""]["main_ip"]

    snapshot = call(client, "POST", f"/v1/vms/{vm['id']}/snapshots", {"name": "nightly"}, token)
    reverse = call(client, "PUT", f"/v1/vms/{vm['id']}/addresses/{ip}/reverse-dns", {"hostname": "web.example.com"}, token)

    assert snapshot[0] == 409
    assert reverse[0] == 409
    assert vultr.snapshots == {}
    assert vultr.reverse == {}


def test_deleted_vm_takes_no_action(client: Client) -> None:
    token, vm = demo_vm(client)
    call(client, "DELETE", f"/v1/vms/{vm['id']}", token=token)

    status, error = call(client, "PATCH", f"/v1/vms/{vm['id']}", {"name": "ghost"}, token)

    assert status == 400
    assert error["error"]["field"] == "vm_id"


def test_other_customers_vm_is_not_found(client: Client) -> None:
    _, vm = demo_vm(client, "owner@example.com")
    _, intruder = customer(client, "intruder@example.com", CREDIT, T0)
    routes = [
        ("GET", "", None),
        ("PATCH", "", {"name": "mine"}),
        ("POST", "/reimage", {"image": "ubuntu-24.04"}),
        ("POST", "/resize", {"plan": "m2"}),
        ("POST", "/snapshots", {"name": "copy"}),
        ("GET", "/console", None),
        ("GET", "/addresses", None),
        ("PUT", "/addresses/192.0.2.9/reverse-dns", {"hostname": "web.example.com"}),
        ("GET", "/actions", None),
        ("POST", "/actions/tuntap", {"value": "enable"}),
        ("POST", "/stop", None),
        ("DELETE", "", None),
    ]

    for method, path, body in routes:
        status, error = call(client, method, f"/v1/vms/{vm['id']}{path}", body, intruder)

        assert status == 404, (method, path)
        assert error["error"]["code"] == "not_found", (method, path)
    assert stored_vm(vm).state == "active"
    assert stored_vm(vm).name == "web1"


def test_unknown_vm_id_is_not_found(client: Client) -> None:
    token, _ = demo_vm(client)

    assert call(client, "GET", "/v1/vms/vm_000000000000", token=token)[0] == 404
    assert call(client, "GET", "/v1/vms/" + "x" * 300, token=token)[0] == 404
