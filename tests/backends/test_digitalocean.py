"""DigitalOcean backend against the local DigitalOcean fake, which checks each request
against DigitalOcean's OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from chalicelib.backends.base import ImageState, VmSpec, VmState
from chalicelib.backends.digitalocean import DigitalOceanBackend, droplet_name
from chalicelib.errors import BackendError, BackendUnavailable, Conflict
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.digitalocean import TOKEN, FakeDigitalOcean, _public_image, _size

PLAN = "s-1vcpu-1gb"
BIGGER_PLAN = "s-2vcpu-2gb"
IMAGE = "ubuntu-24-04-x64"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0cZfJxN0s1bEJ4pD3zhDRYyHTdJrpXbJ3Gn4rxYVe user@example"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDigitalOcean]:
    fake = FakeDigitalOcean()
    fake.base_url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeDigitalOcean) -> FakeDigitalOcean:
    server.reset()
    return server


def make_backend(fake: FakeDigitalOcean, token: str | None = TOKEN, **settings: object) -> DigitalOceanBackend:
    backend = DigitalOceanBackend(
        "do-test",
        {
            "api_url": fake.base_url,
            "region": "nyc3",
            "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
            "action_poll_seconds": 0.01,
            **settings,
        },
        {"token": token} if token else {},
    )
    backend.http.sleep = lambda seconds: None
    return backend


def spec(name: str = "web-1", ssh_public_key: str | None = SSH_KEY) -> VmSpec:
    return VmSpec(name, PLAN, IMAGE, ram_mb=1024, vcpus=1, disk_gb=25, ssh_public_key=ssh_public_key)


def sent(fake: FakeDigitalOcean, method: str, path: str) -> list[dict]:
    return [json.loads(r.body or b"null") for r in fake.requests if r.method == method and r.path == path]


class TestDigitalOcean(BackendContract):
    @pytest.fixture
    def harness(self, fake: FakeDigitalOcean) -> Iterator[Harness]:
        def no_traffic(backend_id: str, value: int) -> None:
            raise AssertionError("DigitalOcean has no traffic counter")

        yield Harness(
            backend=make_backend(fake),
            fake=fake,
            plan_backend_id=PLAN,
            image_backend_id=IMAGE,
            make_active=fake.make_active,
            set_traffic=no_traffic,
            resize_plan_backend_id=BIGGER_PLAN,
            create_path="/v2/droplets",
        )
        assert [reason for _, reason in fake.rejections if "Unable to authenticate" not in reason] == []


# Authentication and errors.


def test_missing_token_rejected_before_any_request(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake, token=None)

    with pytest.raises(BackendError, match="`token` secret"):
        backend.get_vm("1")

    assert fake.requests == []


def test_wrong_token_rejected_by_provider(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake, token="dop_v1_wrong")

    with pytest.raises(BackendError, match=r"DigitalOcean rejected the credentials \(HTTP 401\)") as raised:
        backend.list_plans()

    assert raised.value.status_code == 401
    assert fake.rejections[0][1] == "Unable to authenticate you"


def test_fake_answers_401_without_bearer_token(fake: FakeDigitalOcean) -> None:
    response = requests.get(f"{fake.base_url}/v2/sizes", timeout=5)

    assert response.status_code == 401
    assert response.json()["id"] == "unauthorized"


def test_fake_rejects_body_outside_openapi_document(fake: FakeDigitalOcean) -> None:
    response = requests.post(
        f"{fake.base_url}/v2/droplets",
        json={"name": "web 1!", "size": PLAN, "image": IMAGE},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert response.status_code == 422
    assert response.json()["id"] == "unprocessable_entity"
    assert "body.name" in response.json()["message"]
    assert fake.droplets == {}


def test_provider_error_message_surfaces(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    bad_plan = VmSpec("web-1", "no-such-size", IMAGE, ram_mb=1024, vcpus=1, disk_gb=25)

    with pytest.raises(BackendError, match="You specified an invalid size for Droplet creation"):
        backend.create_vm(bad_plan)


def test_missing_region_setting_rejected(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake, region="")

    with pytest.raises(BackendError, match="`region` setting"):
        backend.create_vm(spec())


# Creation details.


def test_create_adds_missing_ssh_key_once(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    backend.create_vm(spec("web-1"))
    requests_after_first = len(fake.requests)
    backend.create_vm(spec("web-2"))

    assert len(fake.ssh_keys) == 1
    assert len(sent(fake, "POST", "/v2/account/keys")) == 1
    assert len(fake.requests) - requests_after_first == 1
    created = sent(fake, "POST", "/v2/droplets")
    assert created[-1]["ssh_keys"] == [fake.ssh_keys[0]["fingerprint"]]


def test_create_sets_generated_root_password(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    created = backend.create_vm(spec(ssh_public_key=None))

    user_data = sent(fake, "POST", "/v2/droplets")[0]["user_data"]
    assert created.login_details is not None
    assert created.login_details.startswith("username: root; password: ")
    password = created.login_details.split("password: ")[1]
    assert len(password) >= 20
    assert f"password: {password}" in user_data
    assert "ssh_pwauth: true" in user_data


def test_create_with_key_keeps_password_ssh_off(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    backend.create_vm(spec())

    assert "ssh_pwauth" not in sent(fake, "POST", "/v2/droplets")[-1]["user_data"]


def test_droplet_name_is_sanitized(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    backend_id = backend.create_vm(spec("My VM #1 ")).backend_id

    assert fake.droplets[int(backend_id)]["name"] == "My-VM-1"
    assert droplet_name("***") == "vm"


def test_new_droplet_is_provisioning(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    info = backend.get_vm(backend.create_vm(spec()).backend_id)

    assert info.state == VmState.PROVISIONING
    assert info.addresses == ()


# Asynchronous actions.


def test_resize_powers_off_and_waits_for_action(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    fake.action_seconds = 0.2

    backend.resize_vm(backend_id, BIGGER_PLAN)

    actions = sent(fake, "POST", f"/v2/droplets/{backend_id}/actions")
    assert [action["type"] for action in actions] == ["power_off", "resize"]
    assert actions[1] == {"type": "resize", "size": BIGGER_PLAN, "disk": True}
    polls = [r for r in fake.requests if r.method == "GET" and r.path.startswith("/v2/actions/")]
    assert len(polls) >= 2


def test_resize_gives_up_when_power_off_never_finishes(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake, action_timeout_seconds=0.2)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    fake.action_seconds = 30

    with pytest.raises(BackendUnavailable, match="did not finish power_off"):
        backend.resize_vm(backend_id, BIGGER_PLAN)

    actions = sent(fake, "POST", f"/v2/droplets/{backend_id}/actions")
    assert [action["type"] for action in actions] == ["power_off"]


def test_resize_of_stopped_droplet_skips_power_off(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    backend.stop_vm(backend_id)
    fake.make_active(backend_id)

    backend.resize_vm(backend_id, BIGGER_PLAN)
    fake.make_active(backend_id)

    assert fake.droplets[int(backend_id)]["size_slug"] == BIGGER_PLAN
    assert backend.get_vm(backend_id).state == VmState.STOPPED


def test_snapshot_resolves_to_image_id_after_action(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    fake.action_seconds = 30

    reference = backend.snapshot_vm(backend_id, "before-upgrade")
    pending = backend.get_image(reference)
    fake.make_active(backend_id)
    done = backend.get_image(reference)

    assert pending.state == ImageState.PENDING
    assert pending.backend_id == reference
    assert done.state == ImageState.ACTIVE
    assert done.backend_id.isdigit()
    assert done.name == "before-upgrade"
    assert done.size_bytes == 2_360_000_000


def test_delete_pending_snapshot_conflicts(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    fake.action_seconds = 30
    reference = backend.snapshot_vm(backend_id, "nightly")

    with pytest.raises(Conflict):
        backend.delete_image(reference)

    fake.make_active(backend_id)
    backend.delete_image(reference)
    assert fake.images == {}


def test_second_action_while_one_is_pending_surfaces_error(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)
    fake.action_seconds = 30
    backend.stop_vm(backend_id)

    with pytest.raises(BackendError, match="pending event"):
        backend.reboot_vm(backend_id)


# Lists and images.


def test_reimage_sends_only_the_image(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend_id = backend.create_vm(spec()).backend_id
    fake.make_active(backend_id)

    login = backend.reimage_vm(backend_id, IMAGE, SSH_KEY)

    assert login is None
    assert sent(fake, "POST", f"/v2/droplets/{backend_id}/actions")[-1] == {"type": "rebuild", "image": IMAGE}


def test_public_images_are_distributions_in_region(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    backend.fetch_image("https://images.example.com/disk.qcow2", "custom")
    fake.public_images["debian-12-x64"] = {
        **_public_image(10002, "debian-12-x64", "Debian 12 x64"),
        "regions": ["fra1"],
    }

    images = backend.list_public_images()

    assert [image.backend_id for image in images] == [IMAGE]
    assert images[0].name == "Ubuntu 24.04 (LTS) x64"
    assert images[0].state == ImageState.ACTIVE
    assert sent(fake, "GET", "/v2/images") == [None]


def test_list_plans_follows_pagination(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    fake.sizes.append(_size("s-4vcpu-8gb", 8192, 4, 160, 5.0))
    fake.sizes.append({**_size("s-8vcpu-16gb", 16384, 8, 320, 6.0), "regions": ["fra1"]})
    fake.max_per_page = 1

    plans = backend.list_plans()

    assert [plan.backend_id for plan in plans] == [PLAN, BIGGER_PLAN, "s-4vcpu-8gb"]
    assert len(sent(fake, "GET", "/v2/sizes")) == 4
    assert plans[0].ram_mb == 1024
    assert plans[0].disk_gb == 25
    assert plans[0].bandwidth_gib == 931


def test_fetched_image_becomes_active(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    image_id = backend.fetch_image("https://images.example.com/disk.qcow2", "custom")
    fake.finish_image(image_id)
    info = backend.get_image(image_id)

    assert sent(fake, "POST", "/v2/images")[0]["region"] == "nyc3"
    assert info.state == ImageState.ACTIVE
    assert info.size_bytes == 1_500_000_000


def test_list_images_returns_private_images_across_pages(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)
    fetched = {backend.fetch_image(f"https://images.example.com/{n}.qcow2", f"img-{n}") for n in range(3)}
    fake.max_per_page = 2

    listed = {image.backend_id for image in backend.list_images()}

    assert listed == fetched


def test_delete_missing_image_is_not_an_error(fake: FakeDigitalOcean) -> None:
    backend = make_backend(fake)

    backend.delete_image("424242")
