"""Vultr backend against the local Vultr fake, which checks each request body and query
against schemas written from Vultr's API reference."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import requests

from chalicelib import clock
from chalicelib.backends.base import ImageState, VmSpec, VmState
from chalicelib.backends.vultr import VultrBackend, vultr_hostname
from chalicelib.errors import BackendError, InvalidRequest
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.vultr import API_KEY, FakeVultr, _plan

PLAN = "vc2-1c-1gb"
BIGGER_PLAN = "vc2-1c-2gb"
IMAGE = "2136"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0cZfJxN0s1bEJ4pD3zhDRYyHTdJrpXbJ3Gn4rxYVe user@example"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVultr]:
    fake = FakeVultr()
    fake.base_url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeVultr) -> FakeVultr:
    server.reset()
    return server


def make_backend(fake: FakeVultr, api_key: str | None = API_KEY, **settings: object) -> VultrBackend:
    backend = VultrBackend(
        "vultr-test",
        {"api_url": f"{fake.base_url}/v2", "region": "ewr", "timeout_seconds": CONTRACT_TIMEOUT_SECONDS, **settings},
        {"api_key": api_key} if api_key else {},
    )
    backend.http.sleep = lambda seconds: None
    return backend


def spec(name: str = "web-1", image: str = IMAGE, ssh_public_key: str | None = SSH_KEY) -> VmSpec:
    return VmSpec(name, PLAN, image, ram_mb=1024, vcpus=1, disk_gb=25, ssh_public_key=ssh_public_key)


def sent(fake: FakeVultr, method: str, path: str) -> list[dict]:
    return [json.loads(r.body or b"null") for r in fake.requests if r.method == method and r.path == path]


def running(fake: FakeVultr, backend: VultrBackend) -> str:
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    return backend_id


class TestVultr(BackendContract):
    @pytest.fixture
    def harness(self, fake: FakeVultr) -> Iterator[Harness]:
        yield Harness(
            backend=make_backend(fake),
            fake=fake,
            plan_backend_id=PLAN,
            image_backend_id=IMAGE,
            make_active=fake.make_active,
            set_traffic=fake.set_traffic,
            resize_plan_backend_id=BIGGER_PLAN,
            create_path="/v2/instances",
        )
        assert [reason for _, reason in fake.rejections] == []


# Authentication and errors.


def test_missing_api_key_rejected_before_any_request(fake: FakeVultr) -> None:
    backend = make_backend(fake, api_key=None)

    with pytest.raises(BackendError, match="`api_key` secret"):
        backend.list_plans()

    assert fake.requests == []


def test_wrong_api_key_rejected_by_provider(fake: FakeVultr) -> None:
    backend = make_backend(fake, api_key="WRONGKEY")

    with pytest.raises(BackendError, match="rejected the credentials") as raised:
        backend.get_vm("cb676a46-66fd-4dfb-b839-443f2e6c0b60")

    assert raised.value.status_code == 401

    assert fake.rejections[0][1] == "Invalid API token."


def test_fake_answers_401_without_bearer_token(fake: FakeVultr) -> None:
    response = requests.get(f"{fake.base_url}/v2/plans", timeout=5)

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API token.", "status": 401}


def test_fake_rejects_unknown_body_field(fake: FakeVultr) -> None:
    response = requests.post(
        f"{fake.base_url}/v2/instances",
        json={"region": "ewr", "plan": PLAN, "os_id": 2136, "os": "debian"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=5,
    )

    assert response.status_code == 400
    assert "'os' was unexpected" in response.json()["error"]
    assert fake.instances == {}


def test_provider_error_message_surfaces(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    with pytest.raises(BackendError, match="Invalid operating system"):
        backend.create_vm(spec(image="999999"))


def test_image_id_of_unknown_form_rejected(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    with pytest.raises(InvalidRequest):
        backend.create_vm(spec(image="ubuntu"))

    assert fake.requests == []


# Creation details.


def test_create_installs_key_through_cloud_init(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    backend_id = backend.create_vm(spec("My Web #1")).backend_id

    body = sent(fake, "POST", "/v2/instances")[0]
    assert body["os_id"] == 2136
    assert body["label"] == "My Web #1"
    assert body["hostname"] == "my-web-1"
    assert body["activation_email"] is False
    assert SSH_KEY in base64.b64decode(body["user_data"]).decode()
    assert fake.user_data[backend_id].startswith("#cloud-config\n")


def test_create_without_key_sends_no_user_data(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    backend.create_vm(spec(ssh_public_key=None))

    assert "user_data" not in sent(fake, "POST", "/v2/instances")[0]


def test_login_details_come_from_create_response(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    created = backend.create_vm(spec())

    assert created.login_details == "username: root; password: v#8Fake9Password"
    assert backend.get_vm(created.backend_id).login_details is None


def test_pending_instance_is_provisioning_without_address(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    info = backend.get_vm(backend.create_vm(spec()).backend_id)

    assert info.state == VmState.PROVISIONING
    assert info.addresses == ()


def test_hostname_is_sanitized() -> None:
    assert vultr_hostname("Web Server_01") == "web-server-01"
    assert vultr_hostname("***") == "vm"


# Rebuild, snapshots and images.


def test_reimage_with_os_patches_instance(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    login = backend.reimage_vm(backend_id, "2284")

    assert sent(fake, "PATCH", f"/v2/instances/{backend_id}") == [{"os_id": 2284}]
    assert backend.get_vm(backend_id).state == VmState.PROVISIONING
    assert login is None


def test_reimage_with_os_installs_key_again(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    fake.user_data[backend_id] = ""

    backend.reimage_vm(backend_id, "2284", SSH_KEY)

    body = sent(fake, "PATCH", f"/v2/instances/{backend_id}")[0]
    assert body["os_id"] == 2284
    assert SSH_KEY in fake.user_data[backend_id]


def test_reimage_with_snapshot_restores(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    snapshot_id = backend.snapshot_vm(backend_id, "golden")
    fake.finish_snapshots()

    login = backend.reimage_vm(backend_id, snapshot_id, SSH_KEY)

    assert sent(fake, "POST", f"/v2/instances/{backend_id}/restore") == [{"snapshot_id": snapshot_id}]
    assert login is None


def test_public_images_leave_out_restore_entries(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    fake.max_per_page = 1

    images = backend.list_public_images()

    assert [(image.backend_id, image.name) for image in images] == [
        ("2136", "Debian 12 x64 (bookworm)"),
        ("2284", "Ubuntu 24.04 LTS x64"),
    ]
    assert len(sent(fake, "GET", "/v2/os")) == 4


def test_create_from_snapshot(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    snapshot_id = backend.snapshot_vm(running(fake, backend), "golden")
    fake.finish_snapshots()

    backend.create_vm(spec(image=snapshot_id))

    assert sent(fake, "POST", "/v2/instances")[-1]["snapshot_id"] == snapshot_id


def test_snapshot_becomes_active(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    snapshot_id = backend.snapshot_vm(running(fake, backend), "nightly")

    pending = backend.get_image(snapshot_id)
    fake.finish_snapshots()
    done = backend.get_image(snapshot_id)

    assert pending.state == ImageState.PENDING
    assert done.state == ImageState.ACTIVE
    assert done.name == "nightly"
    assert done.size_bytes == 25 * 10**9


def test_fetch_image_uses_create_from_url(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    image_id = backend.fetch_image("https://images.example.com/disk.qcow2", "custom")

    assert sent(fake, "POST", "/v2/snapshots/create-from-url") == [
        {"url": "https://images.example.com/disk.qcow2", "description": "custom"}
    ]
    assert backend.get_image(image_id).state == ImageState.PENDING


def test_list_images_follows_cursor(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    fetched_ids = {backend.fetch_image(f"https://images.example.com/{n}.raw", f"img-{n}") for n in range(5)}
    fake.max_per_page = 2

    listed = {image.backend_id for image in backend.list_images()}

    assert listed == fetched_ids
    assert len(sent(fake, "GET", "/v2/snapshots")) == 3


def test_resize_to_smaller_plan_surfaces_error(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    backend.resize_vm(backend_id, BIGGER_PLAN)
    fake.make_active(backend_id)

    with pytest.raises(BackendError, match="must be larger"):
        backend.resize_vm(backend_id, PLAN)


# Console, addresses and plans.


def test_console_url_is_instance_kvm_link(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    assert backend.get_console_url(backend_id) == fake.instances[backend_id]["kvm"]


def test_console_before_install_raises(fake: FakeVultr) -> None:
    backend = make_backend(fake)

    with pytest.raises(BackendError, match="no console"):
        backend.get_console_url(backend.create_vm(spec()).backend_id)


def test_reverse_dns_for_ipv4_and_ipv6(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    by_version = {a.version: a for a in backend.list_addresses(backend_id)}

    backend.set_reverse_dns(backend_id, by_version[4].ip, "web.example.com")
    backend.set_reverse_dns(backend_id, by_version[6].ip, "web6.example.com")

    updated = {a.version: a for a in backend.list_addresses(backend_id)}
    assert updated[4].reverse_dns == "web.example.com"
    assert updated[6].reverse_dns == "web6.example.com"


def test_reverse_dns_of_foreign_address_surfaces_error(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    with pytest.raises(BackendError, match="Invalid IP address"):
        backend.set_reverse_dns(backend_id, "203.0.113.99", "evil.example.com")


def test_list_plans_filters_region_and_follows_cursor(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    fake.plans.append(_plan("vc2-2c-4gb", 2, 4096, 80, 3072))
    fake.plans.append({**_plan("vhf-1c-1gb", 1, 1024, 32, 1024), "locations": ["nrt"]})
    fake.max_per_page = 3

    plans = backend.list_plans()

    assert [plan.backend_id for plan in plans] == [PLAN, BIGGER_PLAN, "vc2-2c-4gb"]
    assert len(sent(fake, "GET", "/v2/plans")) == 2
    assert plans[0].bandwidth_gib == 953


# Traffic.


def test_traffic_sums_only_current_month(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    fake.today = date(2026, 3, 2)
    fake.set_day_traffic(backend_id, date(2026, 2, 28), incoming=7_000, outgoing=9_000)
    fake.set_day_traffic(backend_id, date(2026, 3, 1), incoming=100, outgoing=200)
    fake.set_day_traffic(backend_id, date(2026, 3, 2), incoming=10, outgoing=20)

    with clock.frozen(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)):
        reading = backend.read_traffic(backend_id)

    assert reading == 330
    assert [r.query["date_range"] for r in fake.requests if r.path.endswith("/bandwidth")] == [["3"]]


def test_traffic_resets_at_month_start(fake: FakeVultr) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    fake.today = date(2026, 2, 28)
    fake.set_day_traffic(backend_id, date(2026, 2, 28), incoming=5_000, outgoing=5_000)

    with clock.frozen(datetime(2026, 2, 28, 23, 0, tzinfo=UTC)):
        before = backend.read_traffic(backend_id)
    fake.today = date(2026, 3, 1)
    fake.set_day_traffic(backend_id, date(2026, 3, 1), incoming=1, outgoing=2)
    with clock.frozen(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)):
        after = backend.read_traffic(backend_id)

    assert before == 10_000
    assert after == 3
