"""The Libcloud backend, driving Libcloud's Vultr driver against a fake Vultr API v2."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from libcloud.compute.drivers.digitalocean import DigitalOcean_v2_NodeDriver
from libcloud.compute.drivers.openstack import OpenStack_2_NodeDriver
from libcloud.compute.drivers.vultr import VultrNodeDriverV2

from chalicelib.backends.base import VmState
from chalicelib.backends.libcloud_driver import LibcloudBackend, driver_capabilities
from chalicelib.backends.registry import backend_class, create_backend
from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, NotFound, NotSupported
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.libcloud_target import API_KEY, FakeVultr


def settings_for(base_url: str, **overrides: object) -> dict[str, object]:
    parts = urlsplit(base_url)
    settings: dict[str, object] = {
        "provider": "VULTR",
        "driver_kwargs": {"host": parts.hostname, "port": parts.port, "secure": False},
        "location": "ewr",
        "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
    }
    settings.update(overrides)
    return settings


def make_backend(base_url: str, key: str = API_KEY, **overrides: object) -> LibcloudBackend:
    backend = create_backend("libcloud", "test", settings_for(base_url, **overrides), {"key": key})
    assert isinstance(backend, LibcloudBackend)
    backend.sleep = lambda seconds: None
    return backend


@pytest.fixture
def fake() -> Iterator[FakeVultr]:
    server = FakeVultr()
    server.base_url = server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake: FakeVultr) -> LibcloudBackend:
    return make_backend(fake.base_url)


@pytest.fixture
def harness(fake: FakeVultr, backend: LibcloudBackend) -> Harness:
    return Harness(
        backend=backend,
        fake=fake,
        plan_backend_id="vc2-1c-1gb",
        image_backend_id="1743",
        make_active=fake.make_active,
        set_traffic=fake.set_traffic,
        resize_plan_backend_id="vc2-1c-2gb",
        create_path="/v2/instances",
    )


class TestLibcloudVultr(BackendContract):
    pass


# Capabilities per driver.


def test_capabilities_follow_the_driver(backend: LibcloudBackend) -> None:
    assert backend.CAPABILITIES == frozenset({"addresses", "plans", "resize"})
    assert type(backend).__name__ == "LibcloudBackend_VultrNodeDriverV2"
    assert backend_class("libcloud") is LibcloudBackend


def test_digitalocean_driver_capabilities() -> None:
    capabilities = driver_capabilities(DigitalOcean_v2_NodeDriver)

    assert {"rename", "snapshot", "images", "resize", "plans", "addresses"} <= capabilities
    # Its ex_rebuild_node takes no image, so reimaging to another image is not offered.
    assert "reimage" not in capabilities


def test_openstack_driver_offers_reimage() -> None:
    assert "reimage" in driver_capabilities(OpenStack_2_NodeDriver)


def test_vultr_driver_capabilities_match_subclass() -> None:
    assert driver_capabilities(VultrNodeDriverV2) == frozenset({"addresses", "plans", "resize"})


def test_undeclared_snapshot_raises_not_supported(backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()

    with pytest.raises(NotSupported):
        backend.snapshot_vm(backend_id, "snap")
    with pytest.raises(NotSupported):
        backend.list_images()


# Settings.


def test_unknown_provider_is_rejected(fake: FakeVultr) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make_backend(fake.base_url, provider="NOT_A_CLOUD")

    assert raised.value.field == "provider"


def test_missing_key_is_rejected(fake: FakeVultr) -> None:
    with pytest.raises(InvalidRequest) as raised:
        create_backend("libcloud", "test", settings_for(fake.base_url), {})

    assert raised.value.field == "key"


def test_driver_rejecting_arguments_is_invalid_request(fake: FakeVultr) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make_backend(fake.base_url, driver_kwargs={"api_version": "9"})

    assert "VULTR driver rejected its settings" in raised.value.message


def test_missing_location_is_rejected(backend: LibcloudBackend, fake: FakeVultr, harness: Harness) -> None:
    backend = make_backend(fake.base_url, location=None)

    with pytest.raises(InvalidRequest) as raised:
        backend.create_vm(harness.spec())

    assert raised.value.field == "location"
    assert fake.instances == {}


# Requests and errors.


def test_wrong_key_is_rejected(fake: FakeVultr) -> None:
    backend = make_backend(fake.base_url, key="wrong")

    with pytest.raises(BackendError) as raised:
        backend.list_plans()

    assert not isinstance(raised.value, BackendUnavailable)
    assert "HTTP 401" in raised.value.message


def test_create_sends_ssh_key_as_cloud_config(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(harness.spec("web-1")).backend_id

    instance = fake.instances[backend_id]
    assert instance["label"] == "web-1"
    assert instance["os_id"] == 1743
    assert instance["plan"] == "vc2-1c-1gb"
    assert fake.user_data[backend_id].startswith("#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 ")


def test_unknown_plan_is_reported_before_create(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    with pytest.raises(BackendError) as raised:
        backend.create_vm(dataclasses.replace(harness.spec(), plan_backend_id="vc9-huge"))

    assert "vc9-huge" in raised.value.message
    assert not any(r.method == "POST" for r in fake.requests)


def test_unknown_image_is_reported(backend: LibcloudBackend, harness: Harness) -> None:
    with pytest.raises(BackendError) as raised:
        backend.create_vm(dataclasses.replace(harness.spec(), image_backend_id="999"))

    assert "999" in raised.value.message


def test_provider_error_message_is_kept(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    fake.fail_next(status=400, body=b'{"error": "Plan is not available in this region.", "status": 400}')

    with pytest.raises(BackendError) as raised:
        backend.stop_vm(harness.running_vm())

    assert "Plan is not available in this region." in raised.value.message


def test_unknown_vm_raises_not_found(backend: LibcloudBackend) -> None:
    with pytest.raises(NotFound):
        backend.get_vm("00000000-0000-0000-0000-000000000000")


def test_reads_are_retried_after_server_error(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.fail_next(status=502, count=2)

    assert backend.get_vm(backend_id).state == VmState.RUNNING


def test_state_and_addresses(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(harness.spec()).backend_id

    pending = backend.get_vm(backend_id)
    fake.make_active(backend_id)
    running = backend.get_vm(backend_id)

    assert pending.state == VmState.PROVISIONING
    assert running.state == VmState.RUNNING
    assert running.created_at is not None and running.created_at.tzinfo is not None
    assert [(a.version, a.private) for a in running.addresses] == [(4, False)]


def test_plans_are_mapped(backend: LibcloudBackend) -> None:
    plans = {plan.backend_id: plan for plan in backend.list_plans()}

    assert plans["vc2-1c-2gb"].ram_mb == 2048
    assert plans["vc2-1c-2gb"].vcpus == 1
    assert plans["vc2-1c-2gb"].disk_gb == 55
    assert plans["vc2-1c-2gb"].bandwidth_gib == 2048 * 10**9 // (1 << 30)


def test_stop_uses_halt(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()

    backend.stop_vm(backend_id)

    assert fake.requests[-1].path == "/v2/instances/halt"
    assert fake.instances[backend_id]["power_status"] == "stopped"


def test_html_404_is_not_taken_as_deleted(fake: FakeVultr, backend: LibcloudBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.fail_next(status=404, body=b"<html><body>No such host</body></html>")

    with pytest.raises(BackendError) as raised:
        backend.delete_vm(backend_id)

    assert not isinstance(raised.value, NotFound)
    assert backend_id in fake.instances
