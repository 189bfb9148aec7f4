"""Linode backend against the local Linode fake, which checks each request against
Linode's OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from chalicelib.backends.base import ImageState, VmSpec, VmState
from chalicelib.backends.linode import LinodeBackend, linode_label
from chalicelib.errors import BackendError, InvalidRequest, NotFound
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.linode import TOKEN, FakeLinode, _type

PLAN = "g6-nanode-1"
BIGGER_PLAN = "g6-standard-1"
IMAGE = "linode/debian12"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0cZfJxN0s1bEJ4pD3zhDRYyHTdJrpXbJ3Gn4rxYVe user@example"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLinode]:
    fake = FakeLinode()
    fake.base_url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeLinode) -> FakeLinode:
    server.reset()
    return server


def make_backend(fake: FakeLinode, token: str | None = TOKEN, **settings: object) -> LinodeBackend:
    backend = LinodeBackend(
        "linode-test",
        {
            "api_url": f"{fake.base_url}/v4",
            "region": "us-east",
            "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
            **settings,
        },
        {"token": token} if token else {},
    )
    backend.http.sleep = lambda seconds: None
    return backend


def spec(name: str = "web-1", ssh_public_key: str | None = SSH_KEY) -> VmSpec:
    return VmSpec(name, PLAN, IMAGE, ram_mb=1024, vcpus=1, disk_gb=25, ssh_public_key=ssh_public_key)


def sent(fake: FakeLinode, method: str, path: str) -> list[dict]:
    return [json.loads(r.body or b"null") for r in fake.requests if r.method == method and r.path == path]


def running(fake: FakeLinode, backend: LinodeBackend, name: str = "web-1") -> str:
    backend_id = backend.create_vm(spec(name)).backend_id
    fake.make_active(backend_id)
    return backend_id


class TestLinode(BackendContract):
    @pytest.fixture
    def harness(self, fake: FakeLinode) -> Iterator[Harness]:
        yield Harness(
            backend=make_backend(fake),
            fake=fake,
            plan_backend_id=PLAN,
            image_backend_id=IMAGE,
            make_active=fake.make_active,
            set_traffic=fake.set_transfer,
            resize_plan_backend_id=BIGGER_PLAN,
            create_path="/v4/linode/instances",
        )
        assert [reason for _, reason in fake.rejections] == []


# Authentication and errors.


def test_missing_token_rejected_before_any_request(fake: FakeLinode) -> None:
    backend = make_backend(fake, token=None)

    with pytest.raises(BackendError, match="`token` secret"):
        backend.read_traffic("1")

    assert fake.requests == []


def test_wrong_token_rejected_by_provider(fake: FakeLinode) -> None:
    backend = make_backend(fake, token="wrong-token")

    with pytest.raises(BackendError, match="rejected the credentials"):
        backend.list_plans()

    assert fake.rejections[0][1] == "Invalid Token"


def test_fake_answers_401_without_bearer_token(fake: FakeLinode) -> None:
    response = requests.get(f"{fake.base_url}/v4/linode/types", timeout=5)

    assert response.status_code == 401
    assert response.json() == {"errors": [{"reason": "Invalid Token"}]}


def test_fake_rejects_body_outside_openapi_document(fake: FakeLinode) -> None:
    response = requests.post(
        f"{fake.base_url}/v4/linode/instances",
        json={"type": PLAN, "region": "us-east", "label": "web-1", "root_password": "x"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert response.status_code == 400
    assert "root_password" in response.json()["errors"][0]["reason"]
    assert fake.instances == {}


def test_fake_rejects_x_filter_that_is_not_json(fake: FakeLinode) -> None:
    response = requests.get(
        f"{fake.base_url}/v4/linode/instances",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Filter": "label=web-1"},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": "X-Filter", "reason": "X-Filter is not valid JSON"}]}


def test_provider_error_message_surfaces(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    bad_plan = VmSpec("web-1", "g6-nonexistent", IMAGE, ram_mb=1024, vcpus=1, disk_gb=25)

    with pytest.raises(BackendError, match="type: A valid plan type by that ID was not found"):
        backend.create_vm(bad_plan)


def test_image_id_with_path_tricks_rejected(fake: FakeLinode) -> None:
    backend = make_backend(fake)

    with pytest.raises(InvalidRequest):
        backend.get_image("private/../../account")

    assert fake.requests == []


# Creation details.


def test_create_sends_generated_password_and_key(fake: FakeLinode) -> None:
    backend = make_backend(fake)

    created = backend.create_vm(spec())

    password = fake.root_passwords[int(created.backend_id)]
    assert created.login_details == f"username: root; password: {password}"
    assert len(password) >= 20
    assert fake.authorized_keys[int(created.backend_id)] == [SSH_KEY]


def test_taken_label_gets_suffix(fake: FakeLinode) -> None:
    backend = make_backend(fake)

    first = backend.create_vm(spec("web-1")).backend_id
    second = backend.create_vm(spec("web-1")).backend_id

    assert fake.instances[int(first)]["label"] == "web-1"
    assert fake.instances[int(second)]["label"].startswith("web-1-")
    assert len(sent(fake, "POST", "/v4/linode/instances")) == 3


def test_label_is_sanitized() -> None:
    assert linode_label("My VM #1") == "My-VM-1"
    assert linode_label("1st") == "vm-1st"
    assert linode_label("a") == "a00"
    assert linode_label("x" * 80) == "x" * 64


def test_created_time_is_utc(fake: FakeLinode) -> None:
    backend = make_backend(fake)

    info = backend.get_vm(backend.create_vm(spec()).backend_id)

    assert info.state == VmState.PROVISIONING
    assert info.created_at is not None and info.created_at.utcoffset().total_seconds() == 0


def test_reimage_sets_new_password(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    first_password = fake.root_passwords[int(backend_id)]

    login = backend.reimage_vm(backend_id, IMAGE)

    assert fake.root_passwords[int(backend_id)] != first_password
    assert login == f"username: root; password: {fake.root_passwords[int(backend_id)]}"
    assert fake.authorized_keys[int(backend_id)] == []


def test_reimage_installs_ssh_key_again(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    backend.reimage_vm(backend_id, IMAGE, SSH_KEY)

    assert fake.authorized_keys[int(backend_id)] == [SSH_KEY]
    assert sent(fake, "POST", f"/v4/linode/instances/{backend_id}/rebuild")[0]["authorized_keys"] == [SSH_KEY]


# Networking, traffic, images and plans.


def test_reverse_dns_updates_ip(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    public = next(a for a in backend.list_addresses(backend_id) if a.version == 4 and not a.private)

    backend.set_reverse_dns(backend_id, public.ip, "web.example.com")

    updated = {a.ip: a for a in backend.list_addresses(backend_id)}
    assert updated[public.ip].reverse_dns == "web.example.com"
    assert sent(fake, "PUT", f"/v4/networking/ips/{public.ip}") == [{"rdns": "web.example.com"}]


def test_reverse_dns_of_another_vm_address_refused(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    mine = running(fake, backend, "mine")
    other = running(fake, backend, "other")
    other_ip = next(a.ip for a in backend.list_addresses(other) if not a.private)

    with pytest.raises(NotFound):
        backend.set_reverse_dns(mine, other_ip, "evil.example.com")

    assert sent(fake, "PUT", f"/v4/networking/ips/{other_ip}") == []


def test_addresses_include_private_and_ipv6(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    addresses = backend.list_addresses(backend_id)

    assert {(a.version, a.private) for a in addresses} == {(4, False), (4, True), (6, False)}


def test_traffic_reads_monthly_transfer(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    fake.set_transfer(backend_id, 22_956_600_198)

    assert backend.read_traffic(backend_id) == 22_956_600_198


def test_snapshot_images_main_disk(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)

    image_id = backend.snapshot_vm(backend_id, "before upgrade")
    pending = backend.get_image(image_id)
    fake.finish_images()
    done = backend.get_image(image_id)

    main_disk = next(d for d in fake.disks[int(backend_id)] if d["filesystem"] == "ext4")
    assert sent(fake, "POST", "/v4/images") == [{"disk_id": main_disk["id"], "label": "before upgrade"}]
    assert image_id.startswith("private/")
    assert pending.state == ImageState.PENDING
    assert done.state == ImageState.ACTIVE
    assert done.size_bytes == main_disk["size"] * (1 << 20)


def test_list_images_returns_private_images_across_pages(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = running(fake, backend)
    snapshot_ids = {backend.snapshot_vm(backend_id, f"snap-{n}") for n in range(3)}
    fake.max_page_size = 2

    listed = {image.backend_id for image in backend.list_images()}

    assert listed == snapshot_ids
    filters = [r.headers.get("x-filter") for r in fake.requests if r.path == "/v4/images" and r.method == "GET"]
    assert filters == ['{"is_public": false}'] * 2


def test_delete_image_then_missing_is_not_an_error(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    image_id = backend.snapshot_vm(running(fake, backend), "snap")

    backend.delete_image(image_id)
    backend.delete_image(image_id)

    assert image_id not in fake.images


def test_list_plans_follows_pagination(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    fake.types.append(_type("g6-standard-2", "Linode 4GB", 4096, 2, 81920, 4000))
    fake.max_page_size = 2

    plans = backend.list_plans()

    assert [plan.backend_id for plan in plans] == [PLAN, BIGGER_PLAN, "g6-standard-2"]
    assert len(sent(fake, "GET", "/v4/linode/types")) == 2
    assert plans[0].disk_gb == 25
    assert plans[0].bandwidth_gib == 931


def test_resize_to_smaller_plan_surfaces_error(fake: FakeLinode) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(VmSpec("big", BIGGER_PLAN, IMAGE, ram_mb=2048, vcpus=1, disk_gb=50)).backend_id
    fake.make_active(backend_id)

    with pytest.raises(BackendError, match="more disk than the new service plan allows"):
        backend.resize_vm(backend_id, PLAN)
