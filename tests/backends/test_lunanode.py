"""The LunaNode backend against a fake LunaNode API that checks every signature."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
import requests

from chalicelib.backends.base import ImageState, VmState
from chalicelib.backends.lunanode import LunaNodeBackend
from chalicelib.backends.registry import create_backend
from chalicelib.errors import BackendError, InvalidRequest, NotFound
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.lunanode import API_ID, API_KEY, GIB, NONCE_WINDOW_SECONDS, FakeLunaNode

SECRETS = {"api_id": API_ID, "api_key": API_KEY}


def make_backend(base_url: str, secrets: dict[str, str] = SECRETS, **settings: object) -> LunaNodeBackend:
    merged = {"api_url": base_url + "/api/", "timeout_seconds": CONTRACT_TIMEOUT_SECONDS, **settings}
    backend = create_backend("lunanode", "test", merged, secrets)
    assert isinstance(backend, LunaNodeBackend)
    backend.http.sleep = lambda seconds: None
    return backend


@pytest.fixture
def fake() -> Iterator[FakeLunaNode]:
    server = FakeLunaNode()
    server.base_url = server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake: FakeLunaNode) -> LunaNodeBackend:
    return make_backend(fake.base_url)


@pytest.fixture
def harness(fake: FakeLunaNode, backend: LunaNodeBackend) -> Harness:
    return Harness(
        backend=backend,
        fake=fake,
        plan_backend_id="m.1s",
        image_backend_id="101",
        make_active=fake.make_active,
        set_traffic=fake.set_traffic,
        resize_plan_backend_id="m.2",
        create_path="/api/vm/create/",
        # vm/info reports traffic in GiB with two decimals.
        traffic_tolerance=GIB // 200,
    )


class TestLunaNode(BackendContract):
    pass


# Signatures and nonces.


def test_request_is_signed_as_documented(fake: FakeLunaNode, backend: LunaNodeBackend) -> None:
    backend.list_plans()

    form = fake.requests[-1].form()
    request_map = json.loads(form["req"])
    assert form["handler"] == "plan/list/"
    assert request_map == {"api_id": API_ID, "api_partialkey": API_KEY[:64]}
    assert len(form["signature"]) == 128
    assert fake.rejections == []


def test_wrong_key_fails_signature_check(fake: FakeLunaNode) -> None:
    wrong_key = API_KEY[:64] + "x" * 64
    backend = make_backend(fake.base_url, secrets={"api_id": API_ID, "api_key": wrong_key})

    with pytest.raises(BackendError) as raised:
        backend.list_plans()

    assert fake.rejections == ["invalid signature"]
    assert raised.value.message == "LunaNode rejected plan/list/: invalid signature"


def test_tampered_request_is_rejected(fake: FakeLunaNode, backend: LunaNodeBackend) -> None:
    form = backend.sign("vm/info/", {"vm_id": "1"})
    form["req"] = form["req"].replace('"1"', '"2"')

    reply = requests.post(fake.base_url + "/api/vm/info/", data=form, timeout=5).json()

    assert reply == {"success": "no", "error": "invalid signature"}


def test_replayed_old_nonce_is_rejected(fake: FakeLunaNode, backend: LunaNodeBackend) -> None:
    form = backend.sign("plan/list/", {})
    first = requests.post(fake.base_url + "/api/plan/list/", data=form, timeout=5).json()

    fake.clock_offset = NONCE_WINDOW_SECONDS + 1
    replayed = requests.post(fake.base_url + "/api/plan/list/", data=form, timeout=5).json()

    assert first["success"] == "yes"
    assert replayed["success"] == "no"
    assert "nonce" in replayed["error"]


def test_backend_clock_far_off_is_rejected(fake: FakeLunaNode) -> None:
    backend = make_backend(fake.base_url)
    backend.clock = lambda: fake.now() - 10 * NONCE_WINDOW_SECONDS

    with pytest.raises(BackendError) as raised:
        backend.list_plans()

    assert "nonce" in raised.value.message


def test_handler_mismatch_is_rejected(fake: FakeLunaNode, backend: LunaNodeBackend) -> None:
    form = backend.sign("plan/list/", {})

    reply = requests.post(fake.base_url + "/api/vm/list/", data=form, timeout=5).json()

    assert reply["success"] == "no"


def test_wrong_key_length_is_rejected_before_sending(fake: FakeLunaNode) -> None:
    backend = make_backend(fake.base_url, secrets={"api_id": API_ID, "api_key": "short"})

    with pytest.raises(BackendError) as raised:
        backend.list_plans()

    assert "128" in raised.value.message
    assert fake.requests == []


# Error replies.


def test_error_reply_becomes_message(backend: LunaNodeBackend, harness: Harness) -> None:
    with pytest.raises(BackendError) as raised:
        backend.create_vm(dataclasses.replace(harness.spec(), plan_backend_id="x.99"))

    assert raised.value.message == "LunaNode rejected vm/create/: invalid plan"


def test_unknown_vm_raises_not_found(backend: LunaNodeBackend) -> None:
    with pytest.raises(NotFound):
        backend.get_vm("424242")


def test_wrong_api_url_raises_backend_error(fake: FakeLunaNode) -> None:
    backend = make_backend(fake.base_url + "/wrong")

    with pytest.raises(BackendError) as raised:
        backend.delete_vm("5001")

    assert not isinstance(raised.value, NotFound)
    assert "api_url" in raised.value.message


# Provider-specific behaviour.


def test_create_passes_ssh_key_and_removes_it(fake: FakeLunaNode, backend: LunaNodeBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(harness.spec()).backend_id

    assert fake.vms[backend_id].key_ids != ""
    assert fake.vms[backend_id].region == "toronto"
    assert fake.ssh_keys == {}


def test_create_without_ssh_key_adds_none(fake: FakeLunaNode, backend: LunaNodeBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(dataclasses.replace(harness.spec(), ssh_public_key=None)).backend_id

    assert fake.vms[backend_id].key_ids == ""
    assert not any(r.path.startswith("/api/sshkey/") for r in fake.requests)


def test_new_vm_is_provisioning(backend: LunaNodeBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(harness.spec()).backend_id

    assert backend.get_vm(backend_id).state == VmState.PROVISIONING


def test_traffic_is_converted_from_gib(fake: FakeLunaNode, backend: LunaNodeBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.set_traffic(backend_id, 5 * GIB + GIB // 4)

    assert backend.read_traffic(backend_id) == 5 * GIB + GIB // 4


def test_reverse_dns_only_for_own_address(fake: FakeLunaNode, backend: LunaNodeBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    other_id = harness.running_vm()
    other_ip = fake.vms[other_id].ip

    with pytest.raises(InvalidRequest):
        backend.set_reverse_dns(backend_id, other_ip, "mail.example.com")

    own_ip = fake.vms[backend_id].ip
    backend.set_reverse_dns(backend_id, own_ip, "mail.example.com")
    addresses = {a.ip: a for a in backend.list_addresses(backend_id)}
    assert addresses[own_ip].reverse_dns == "mail.example.com"
    assert addresses[fake.vms[backend_id].private_ip].private is True


def test_fetch_iso_sets_format(fake: FakeLunaNode, backend: LunaNodeBackend) -> None:
    image_id = backend.fetch_image("https://images.example.com/rescue.iso", "rescue")

    assert fake.images[image_id].source == "https://images.example.com/rescue.iso"
    assert backend.get_image(image_id).state == ImageState.PENDING


def test_fetch_rejects_non_http_url(backend: LunaNodeBackend) -> None:
    with pytest.raises(InvalidRequest):
        backend.fetch_image("file:///etc/passwd", "x")


def test_plans_are_mapped(backend: LunaNodeBackend) -> None:
    plans = {plan.backend_id: plan for plan in backend.list_plans()}

    assert plans["m.2"].ram_mb == 2048
    assert plans["m.2"].disk_gb == 40
    assert plans["m.2"].bandwidth_gib == 2000


def test_delete_image_twice_is_not_an_error(backend: LunaNodeBackend, harness: Harness) -> None:
    image_id = backend.snapshot_vm(harness.running_vm(), "snap")

    backend.delete_image(image_id)
    backend.delete_image(image_id)

    assert image_id not in {image.backend_id for image in backend.list_images()}


def test_login_details_and_hostname(backend: LunaNodeBackend, harness: Harness) -> None:
    info = backend.get_vm(harness.running_vm())

    assert info.hostname == "contract-vm"
    assert info.login_details == "username: ubuntu; password: not-a-secret"
    assert info.details["region"] == "toronto"
