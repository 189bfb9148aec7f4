"""OpenStack backend against the local fake cloud: the shared contract plus Keystone token
handling, Nova microversions, Glance import and Neutron addresses."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from chalicelib.backends.base import ImageState, VmSpec, VmState
from chalicelib.backends.openstack import NOVA_MICROVERSION, OpenStackBackend
from chalicelib.errors import BackendError, InvalidRequest
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes import openstack as fake_cloud
from tests.fakes.openstack import FakeOpenStack


@pytest.fixture
def fake() -> Iterator[FakeOpenStack]:
    provider = FakeOpenStack()
    provider.start()
    yield provider
    provider.stop()


def make_backend(fake: FakeOpenStack, **overrides: object) -> OpenStackBackend:
    settings: dict[str, object] = {
        "auth_url": f"{fake.base_url}/identity/v3",
        "project": fake_cloud.PROJECT,
        "domain": fake_cloud.DOMAIN,
        "network_id": fake_cloud.PUBLIC_NETWORK_ID,
        "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
    }
    secrets = {"username": fake_cloud.USERNAME, "password": fake_cloud.PASSWORD}
    for key, value in overrides.items():
        if key in secrets:
            secrets[key] = str(value)
        elif value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    backend = OpenStackBackend("os-test", settings, secrets)
    backend.http.sleep = lambda seconds: None
    return backend


def no_traffic_counter(backend_id: str, value: int) -> None:
    raise AssertionError("the OpenStack backend declares no traffic capability")


@pytest.fixture
def harness(fake: FakeOpenStack) -> Harness:
    return Harness(
        backend=make_backend(fake),
        fake=fake,
        plan_backend_id=fake_cloud.SMALL_FLAVOR_ID,
        image_backend_id=fake_cloud.UBUNTU_IMAGE_ID,
        make_active=fake.complete,
        set_traffic=no_traffic_counter,
        resize_plan_backend_id=fake_cloud.MEDIUM_FLAVOR_ID,
        create_path="/compute/v2.1/servers",
    )


class TestOpenStack(BackendContract):
    pass


# Keystone tokens.


def test_token_reused_across_calls(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.get_vm(backend_id)
    harness.backend.get_vm(backend_id)

    assert len(fake.auth_requests()) == 1


def test_expired_token_triggers_reauthentication(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    fake.expire_tokens()
    info = harness.backend.get_vm(backend_id)

    assert info.state == VmState.RUNNING
    assert len(fake.auth_requests()) == 2


def test_token_near_expiry_is_renewed_before_use(fake: FakeOpenStack, harness: Harness) -> None:
    fake.token_lifetime = timedelta(seconds=30)
    backend = make_backend(fake)
    backend_id = backend.create_vm(harness.spec()).backend_id
    requests_before = len(fake.requests)

    backend.get_vm(backend_id)

    new_requests = fake.requests[requests_before:]
    assert [r.path for r in new_requests] == ["/identity/v3/auth/tokens", f"/compute/v2.1/servers/{backend_id}"]


def test_rejected_new_token_raises_after_one_retry(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.reject_all_tokens = True

    with pytest.raises(BackendError, match="rejected a new token"):
        harness.backend.get_vm(backend_id)

    assert len(fake.auth_requests()) == 2


def test_wrong_password_is_rejected(fake: FakeOpenStack) -> None:
    backend = make_backend(fake, password="wrong")

    with pytest.raises(BackendError, match="credentials") as raised:
        backend.list_plans()

    assert raised.value.status_code == 401
    assert len(fake.auth_requests()) == 1


def test_password_scope_request_body(fake: FakeOpenStack, harness: Harness) -> None:
    harness.backend.list_plans()

    auth = fake.auth_requests()[0].json()["auth"]
    assert auth["identity"]["methods"] == ["password"]
    assert auth["identity"]["password"]["user"]["name"] == fake_cloud.USERNAME
    assert auth["identity"]["password"]["user"]["domain"] == {"name": fake_cloud.DOMAIN}
    assert auth["scope"]["project"] == {"name": fake_cloud.PROJECT, "domain": {"name": fake_cloud.DOMAIN}}


def test_auth_url_without_version_suffix(fake: FakeOpenStack) -> None:
    backend = make_backend(fake, auth_url=f"{fake.base_url}/identity/")

    assert backend.list_plans()


def test_missing_setting_raises_invalid_request(fake: FakeOpenStack) -> None:
    with pytest.raises(InvalidRequest) as caught:
        make_backend(fake, project=None)

    assert caught.value.field == "project"


def test_unknown_catalog_region_raises(fake: FakeOpenStack) -> None:
    backend = make_backend(fake, region_name="RegionTwo")

    with pytest.raises(BackendError, match="no public compute endpoint in region RegionTwo"):
        backend.list_plans()


# Nova.


def test_console_request_sends_microversion(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    url = harness.backend.get_console_url(backend_id)

    console_request = [r for r in fake.requests if r.path.endswith("/remote-consoles")][-1]
    assert console_request.headers["openstack-api-version"] == f"compute {NOVA_MICROVERSION}"
    assert console_request.headers["x-openstack-nova-api-version"] == NOVA_MICROVERSION
    assert console_request.json() == {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    assert "token" in url


def test_create_sends_network_and_cloud_config(fake: FakeOpenStack, harness: Harness) -> None:
    spec = harness.spec("web-1")

    harness.backend.create_vm(spec)

    body = [r for r in fake.requests if r.method == "POST" and r.path == "/compute/v2.1/servers"][-1].json()["server"]
    assert body["networks"] == [{"uuid": fake_cloud.PUBLIC_NETWORK_ID}]
    assert body["flavorRef"] == fake_cloud.SMALL_FLAVOR_ID
    user_data = base64.b64decode(body["user_data"]).decode()
    assert user_data.startswith("#cloud-config\n")
    assert json.loads(user_data.split("\n", 1)[1]) == {"ssh_authorized_keys": [spec.ssh_public_key]}


def test_create_without_network_asks_for_auto(fake: FakeOpenStack) -> None:
    backend = make_backend(fake, network_id=None)

    backend_id = backend.create_vm(
        VmSpec(
            name="auto-net",
            plan_backend_id=fake_cloud.SMALL_FLAVOR_ID,
            image_backend_id=fake_cloud.UBUNTU_IMAGE_ID,
            ram_mb=2048,
            vcpus=1,
            disk_gb=20,
        )
    ).backend_id

    body = [r for r in fake.requests if r.method == "POST" and r.path == "/compute/v2.1/servers"][-1].json()["server"]
    assert body["networks"] == "auto"
    assert "user_data" not in body
    fake.complete(backend_id)
    assert all(address.private for address in backend.get_vm(backend_id).addresses)


def test_unknown_flavor_error_shows_nova_message(harness: Harness) -> None:
    bad = dataclasses.replace(harness.spec(), plan_backend_id="999")

    with pytest.raises(BackendError, match="Flavor 999 could not be found"):
        harness.backend.create_vm(bad)


def test_start_running_vm_shows_conflict_message(harness: Harness) -> None:
    backend_id = harness.running_vm()

    with pytest.raises(BackendError, match="HTTP 409.*Cannot 'start' instance"):
        harness.backend.start_vm(backend_id)


def test_resize_confirmed_on_next_read(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.resize_vm(backend_id, fake_cloud.MEDIUM_FLAVOR_ID)
    for _ in range(3):
        harness.backend.get_vm(backend_id)

    confirmations = [r for r in fake.requests if r.path.endswith("/action") and "confirmResize" in r.json()]
    assert len(confirmations) == 1
    assert fake.servers[backend_id].status == "ACTIVE"
    assert fake.servers[backend_id].flavor_id == fake_cloud.MEDIUM_FLAVOR_ID
    assert harness.backend.get_vm(backend_id).details["flavor_id"] == fake_cloud.MEDIUM_FLAVOR_ID


def test_rename_changes_server_name(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.rename_vm(backend_id, "db-2")

    assert fake.servers[backend_id].name == "db-2"


def test_states_follow_nova_status(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.backend.create_vm(harness.spec()).backend_id

    assert harness.backend.get_vm(backend_id).state == VmState.PROVISIONING
    fake.complete(backend_id)
    assert harness.backend.get_vm(backend_id).state == VmState.RUNNING
    fake.servers[backend_id].status = "ERROR"
    assert harness.backend.get_vm(backend_id).state == VmState.ERROR


def test_flavor_list_follows_next_links(fake: FakeOpenStack, harness: Harness) -> None:
    plans = harness.backend.list_plans()

    assert [plan.backend_id for plan in plans] == ["1", "2", "3"]
    assert plans[1].ram_mb == 4096
    assert plans[1].vcpus == 2
    assert plans[1].disk_gb == 40


# Glance.


def test_fetch_image_uses_web_download_import(fake: FakeOpenStack, harness: Harness) -> None:
    url = "https://images.example.com/noble.img"

    image_id = harness.backend.fetch_image(url, "noble")

    create = [r for r in fake.requests if r.method == "POST" and r.path == "/image/v2/images"][-1].json()
    assert create == {"name": "noble", "disk_format": "qcow2", "container_format": "bare", "visibility": "private"}
    import_request = [r for r in fake.requests if r.path == f"/image/v2/images/{image_id}/import"][-1]
    assert import_request.json() == {"method": {"name": "web-download", "uri": url}}
    assert harness.backend.get_image(image_id).state == ImageState.PENDING


def test_fetched_image_becomes_active_with_size(harness: Harness) -> None:
    image_id = harness.backend.fetch_image("https://images.example.com/disk.raw", "raw-disk")

    states = [harness.backend.get_image(image_id).state for _ in range(4)]

    assert states[-1] == ImageState.ACTIVE
    assert harness.backend.get_image(image_id).size_bytes > 0


def test_failed_import_deletes_queued_image(fake: FakeOpenStack, harness: Harness) -> None:
    images_before = set(fake.images)

    with pytest.raises(BackendError, match="invalid scheme"):
        harness.backend.fetch_image("ftp://images.example.com/disk.qcow2", "ftp-disk")

    assert set(fake.images) == images_before


def test_image_list_follows_next_links(fake: FakeOpenStack, harness: Harness) -> None:
    images = harness.backend.list_images()

    assert {image.backend_id for image in images} == set(fake.images)
    assert len(images) == len(fake.images)


def test_delete_unknown_image_is_not_an_error(harness: Harness) -> None:
    harness.backend.delete_image("00000000-0000-4000-8000-00000000dead")


def test_glance_text_error_becomes_message(harness: Harness) -> None:
    with pytest.raises(Exception, match="No image found with ID nope"):
        harness.backend.get_image("nope")


def test_snapshot_returns_glance_image(fake: FakeOpenStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    image_id = harness.backend.snapshot_vm(backend_id, "before-upgrade")

    assert fake.images[image_id].name == "before-upgrade"


# Neutron.


def test_addresses_include_floating_ip_as_public(fake: FakeOpenStack) -> None:
    backend = make_backend(fake, network_id=fake_cloud.PRIVATE_NETWORK_ID)
    backend_id = backend.create_vm(
        VmSpec(
            name="behind-nat",
            plan_backend_id=fake_cloud.SMALL_FLAVOR_ID,
            image_backend_id=fake_cloud.UBUNTU_IMAGE_ID,
            ram_mb=2048,
            vcpus=1,
            disk_gb=20,
        )
    ).backend_id
    floating = fake.associate_floating_ip(backend_id)

    addresses = {address.ip: address for address in backend.list_addresses(backend_id)}

    assert addresses[floating].private is False
    fixed = [address for address in addresses.values() if address.ip != floating]
    assert len(fixed) == 1
    assert fixed[0].private is True
    assert fixed[0].ip.startswith("10.0.0.")


def test_addresses_list_ipv4_and_ipv6(harness: Harness) -> None:
    backend_id = harness.running_vm()

    addresses = harness.backend.list_addresses(backend_id)

    assert sorted(address.version for address in addresses) == [4, 6]
    assert not any(address.private for address in addresses)


def test_public_images_are_active_public_glance_images(fake: FakeOpenStack, harness: Harness) -> None:
    image_id = harness.backend.fetch_image("https://images.example.com/private.qcow2", "private")

    images = harness.backend.list_public_images()

    ids = {image.backend_id for image in images}
    assert {fake_cloud.UBUNTU_IMAGE_ID, fake_cloud.DEBIAN_IMAGE_ID} <= ids
    assert image_id not in ids
    assert all(image.state == ImageState.ACTIVE for image in images)
    image_lists = [r for r in fake.requests if r.method == "GET" and r.path == "/image/v2/images"]
    assert all(r.arg("visibility") == "public" and r.arg("status") == "active" for r in image_lists)
