"""CloudStack backend against the local fake management server: the shared contract plus
request signing, asynchronous jobs and the opt-in traffic counter."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from chalicelib.backends.base import ImageState, VmState
from chalicelib.backends.cloudstack import CloudStackBackend, sign_request
from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, NotFound, NotSupported
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes import cloudstack as fake_cloud
from tests.fakes.cloudstack import FakeCloudStack, command_of

JOB_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def fake() -> Iterator[FakeCloudStack]:
    provider = FakeCloudStack()
    provider.start()
    yield provider
    provider.stop()


def make_backend(fake: FakeCloudStack, **overrides: object) -> CloudStackBackend:
    settings: dict[str, object] = {
        "api_url": f"{fake.base_url}/client/api",
        "zone_id": fake_cloud.ZONE_ID,
        "network_id": fake_cloud.NETWORK_ID,
        "os_type_id": fake_cloud.LINUX_OS_TYPE_ID,
        "vm_stats_traffic": True,
        "job_poll_seconds": 0.01,
        "job_timeout_seconds": JOB_TIMEOUT_SECONDS,
        "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
    }
    secrets = {"api_key": fake_cloud.API_KEY, "secret_key": fake_cloud.SECRET_KEY}
    for key, value in overrides.items():
        if key in secrets:
            secrets[key] = str(value)
        elif value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    backend = CloudStackBackend("cs-test", settings, secrets)
    backend.http.sleep = lambda seconds: None
    return backend


@pytest.fixture
def harness(fake: FakeCloudStack) -> Harness:
    return Harness(
        backend=make_backend(fake),
        fake=fake,
        plan_backend_id=fake_cloud.SMALL_OFFERING_ID,
        image_backend_id=fake_cloud.UBUNTU_TEMPLATE_ID,
        make_active=fake.complete_vm,
        set_traffic=fake.set_traffic,
        resize_plan_backend_id=fake_cloud.MEDIUM_OFFERING_ID,
        # CloudStack reports whole KiB.
        traffic_tolerance=1023,
    )


class TestCloudStack(BackendContract):
    pass


def signed_get(
    fake: FakeCloudStack, params: dict[str, str], secret_key: str = fake_cloud.SECRET_KEY
) -> requests.Response:
    params = dict(params, apiKey=fake_cloud.API_KEY, response="json")
    params["signature"] = sign_request(params, secret_key)
    return requests.get(f"{fake.base_url}/client/api", params=params, timeout=5)


# Signatures.


def test_signature_matches_documented_steps() -> None:
    params = {"command": "listVirtualMachines", "apiKey": "Key-A", "response": "json", "name": "web server ~1*"}
    # Sort by name, encode values with spaces as %20 and "~" as %7E, lower-case, HMAC-SHA1, base64.
    canonical = "apikey=key-a&command=listvirtualmachines&name=web%20server%20%7e1*&response=json"
    expected = base64.b64encode(hmac.new(b"secret", canonical.encode(), hashlib.sha1).digest()).decode()

    assert sign_request(params, "secret") == expected


def test_wrong_secret_gets_cloudstack_error(fake: FakeCloudStack) -> None:
    response = signed_get(fake, {"command": "listServiceOfferings"}, secret_key="not-the-secret")

    assert response.status_code == 401
    assert response.json() == {
        "listserviceofferingsresponse": {
            "uuidList": [],
            "errorcode": 401,
            "cserrorcode": 9999,
            "errortext": "unable to verify user credentials and/or request signature",
        }
    }


def test_wrong_secret_raises_credentials_error(fake: FakeCloudStack) -> None:
    backend = make_backend(fake, secret_key="not-the-secret")

    with pytest.raises(BackendError, match="rejected the region's credentials.*unable to verify") as raised:
        backend.list_plans()

    assert raised.value.status_code == 401


def test_expired_signature_rejected(fake: FakeCloudStack) -> None:
    expired = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S%z")

    response = signed_get(fake, {"command": "listServiceOfferings", "signatureVersion": "3", "expires": expired})

    assert response.status_code == 401


def test_version_3_without_expires_rejected(fake: FakeCloudStack) -> None:
    response = signed_get(fake, {"command": "listServiceOfferings", "signatureVersion": "3"})

    assert response.status_code == 401


def test_tampered_parameter_rejected(fake: FakeCloudStack) -> None:
    params = {"command": "listTemplates", "templatefilter": "self", "apiKey": fake_cloud.API_KEY, "response": "json"}
    params["signature"] = sign_request(params, fake_cloud.SECRET_KEY)
    params["templatefilter"] = "executable"

    response = requests.get(f"{fake.base_url}/client/api", params=params, timeout=5)

    assert response.status_code == 401


def test_requests_use_expiring_signature(fake: FakeCloudStack, harness: Harness) -> None:
    harness.backend.list_plans()

    query = fake.requests[-1].query
    assert query["signatureVersion"] == ["3"]
    expires = datetime.strptime(query["expires"][0], "%Y-%m-%dT%H:%M:%S%z")
    assert timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(minutes=10)


def test_encoded_values_signed_correctly(harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.rename_vm(backend_id, "web server ~1 * é/ü+&=")

    assert harness.backend.get_vm(backend_id).hostname == "web server ~1 * é/ü+&="


def test_writes_use_post_and_reads_get(fake: FakeCloudStack, harness: Harness) -> None:
    harness.running_vm()

    methods = {command_of(r): r.method for r in fake.requests}
    assert methods["deployVirtualMachine"] == "POST"
    assert methods["queryAsyncJobResult"] == "GET"


def test_missing_secret_raises_invalid_request(fake: FakeCloudStack) -> None:
    with pytest.raises(InvalidRequest) as caught:
        make_backend(fake, api_key="")

    assert caught.value.field == "api_key"


# Asynchronous jobs.


def test_create_waits_for_deploy_job(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.backend.create_vm(harness.spec()).backend_id

    assert fake.vms[backend_id].state == "Running"
    assert fake.commands().count("queryAsyncJobResult") == fake.polls_per_job


def test_create_reports_no_password_for_plain_template(fake: FakeCloudStack, harness: Harness) -> None:
    created = harness.backend.create_vm(harness.spec())

    assert created.login_details is None


def test_create_returns_password_of_password_enabled_template(fake: FakeCloudStack, harness: Harness) -> None:
    spec = dataclasses.replace(harness.spec(), image_backend_id=fake_cloud.DEBIAN_TEMPLATE_ID)

    created = harness.backend.create_vm(spec)

    assert created.login_details is not None
    assert created.login_details.startswith("password: ")
    assert len(created.login_details) > len("password: ")


def test_reimage_returns_new_password_of_password_enabled_template(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    first = harness.backend.reimage_vm(backend_id, fake_cloud.DEBIAN_TEMPLATE_ID)
    second = harness.backend.reimage_vm(backend_id, fake_cloud.DEBIAN_TEMPLATE_ID)

    assert first is not None and first.startswith("password: ")
    assert second is not None and second != first
    assert fake.vms[backend_id].templateid == fake_cloud.DEBIAN_TEMPLATE_ID


def test_public_images_are_featured_templates(fake: FakeCloudStack, harness: Harness) -> None:
    own = harness.backend.fetch_image("https://images.example.com/own.qcow2", "own")
    fake.templates[own].isready = True

    images = harness.backend.list_public_images()

    assert {image.backend_id for image in images} == {fake_cloud.UBUNTU_TEMPLATE_ID, fake_cloud.DEBIAN_TEMPLATE_ID}
    assert "featured" in [r.arg("templatefilter") for r in fake.requests if command_of(r) == "listTemplates"]


def test_create_sends_cloud_config_and_names(fake: FakeCloudStack, harness: Harness) -> None:
    spec = harness.spec("web-1")

    backend_id = harness.backend.create_vm(spec).backend_id

    vm = fake.vms[backend_id]
    assert vm.name == "web-1"
    assert vm.displayname == "web-1"
    document = base64.b64decode(vm.userdata or "").decode()
    assert document.startswith("#cloud-config\n")
    assert json.loads(document.split("\n", 1)[1]) == {"ssh_authorized_keys": [spec.ssh_public_key]}


def test_display_name_kept_when_not_hostname(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.backend.create_vm(harness.spec("My Web Server")).backend_id

    assert fake.vms[backend_id].displayname == "My Web Server"
    assert fake.vms[backend_id].name.startswith("VM-")


def test_job_failure_raises_provider_message(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()
    harness.backend.stop_vm(backend_id)

    fake.fail_next_job("Unable to start VM: insufficient capacity in cluster c1")
    with pytest.raises(BackendError, match="startVirtualMachine failed: Unable to start VM: insufficient capacity"):
        harness.backend.start_vm(backend_id)


def test_failed_deploy_destroys_vm_and_raises(fake: FakeCloudStack, harness: Harness) -> None:
    fake.fail_next_job("Unable to create a deployment for VM, no suitable host")

    with pytest.raises(BackendError, match="no suitable host"):
        harness.backend.create_vm(harness.spec())

    (failed_vm,) = fake.vms.values()
    assert failed_vm.state == "Error"
    destroy = [r for r in fake.requests if command_of(r) == "destroyVirtualMachine"]
    assert len(destroy) == 1
    assert destroy[0].form()["id"] == failed_vm.id


def test_job_polling_gives_up_after_timeout(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.hold_jobs = True

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not finish within 0.5 seconds"):
        harness.backend.stop_vm(backend_id)

    assert time.monotonic() - started < JOB_TIMEOUT_SECONDS + 2
    assert fake.vms[backend_id].state == "Stopping"


def test_deploy_still_running_returns_id(fake: FakeCloudStack, harness: Harness) -> None:
    fake.hold_jobs = True

    backend_id = harness.backend.create_vm(harness.spec()).backend_id

    assert harness.backend.get_vm(backend_id).state == VmState.PROVISIONING
    fake.hold_jobs = False
    fake.complete_vm(backend_id)
    assert harness.backend.get_vm(backend_id).state == VmState.RUNNING


def test_delete_waits_for_expunge(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.delete_vm(backend_id)

    assert backend_id in fake.expunged
    destroy = [r for r in fake.requests if command_of(r) == "destroyVirtualMachine"][-1]
    assert destroy.form()["expunge"] == "true"


def test_delete_destroyed_vm_is_not_an_error(fake: FakeCloudStack, harness: Harness) -> None:
    backend = make_backend(fake, expunge=False)
    backend_id = backend.create_vm(harness.spec()).backend_id
    backend.delete_vm(backend_id)
    assert fake.vms[backend_id].state == "Destroyed"

    backend.delete_vm(backend_id)

    assert fake.commands().count("destroyVirtualMachine") == 1


def test_unknown_vm_raises_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound):
        harness.backend.get_vm("4b0c8d1e-0000-4000-8000-00000000dead")


def test_invalid_parameter_shows_cloudstack_text(harness: Harness) -> None:
    bad = dataclasses.replace(harness.spec(), plan_backend_id="")

    with pytest.raises(BackendError, match="HTTP 431.*missing parameter serviceofferingid"):
        harness.backend.create_vm(bad)


# Resize, snapshots, images, plans.


def test_resize_running_vm_scales_live(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    harness.backend.resize_vm(backend_id, fake_cloud.MEDIUM_OFFERING_ID)

    assert "scaleVirtualMachine" in fake.commands()
    assert fake.vms[backend_id].serviceofferingid == fake_cloud.MEDIUM_OFFERING_ID


def test_resize_stopped_vm_changes_service(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()
    harness.backend.stop_vm(backend_id)

    harness.backend.resize_vm(backend_id, fake_cloud.MEDIUM_OFFERING_ID)

    assert "changeServiceForVirtualMachine" in fake.commands()
    assert "scaleVirtualMachine" not in fake.commands()
    assert fake.vms[backend_id].serviceofferingid == fake_cloud.MEDIUM_OFFERING_ID


def test_snapshot_becomes_template(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()

    template_id = harness.backend.snapshot_vm(backend_id, "before-upgrade")

    assert fake.templates[template_id].name == "before-upgrade"
    assert harness.backend.get_image(template_id).state == ImageState.ACTIVE
    assert "deleteSnapshot" in fake.commands()
    create = [r for r in fake.requests if command_of(r) == "createTemplate"][-1].form()
    assert create["ostypeid"] == fake_cloud.LINUX_OS_TYPE_ID


def test_fetch_image_registers_template(fake: FakeCloudStack, harness: Harness) -> None:
    image_id = harness.backend.fetch_image("https://images.example.com/noble.raw", "noble")

    template = fake.templates[image_id]
    assert template.format == "RAW"
    assert template.url == "https://images.example.com/noble.raw"
    states = [harness.backend.get_image(image_id).state for _ in range(4)]
    assert states[0] == ImageState.PENDING
    assert states[-1] == ImageState.ACTIVE


def test_fetch_image_without_os_type_raises(fake: FakeCloudStack) -> None:
    backend = make_backend(fake, os_type_id=None)

    with pytest.raises(BackendError, match="os_type_id"):
        backend.fetch_image("https://images.example.com/disk.qcow2", "disk")


def test_delete_unknown_image_is_not_an_error(harness: Harness) -> None:
    harness.backend.delete_image("c2d3e4f5-0000-4000-8000-00000000dead")


def test_plans_skip_custom_offerings(harness: Harness) -> None:
    plans = {plan.backend_id: plan for plan in harness.backend.list_plans()}

    assert set(plans) == {fake_cloud.SMALL_OFFERING_ID, fake_cloud.MEDIUM_OFFERING_ID}
    assert plans[fake_cloud.SMALL_OFFERING_ID].ram_mb == 2048
    assert plans[fake_cloud.SMALL_OFFERING_ID].disk_gb == 20
    assert plans[fake_cloud.MEDIUM_OFFERING_ID].vcpus == 2


def test_addresses_from_nics(harness: Harness) -> None:
    backend_id = harness.running_vm()

    addresses = harness.backend.list_addresses(backend_id)

    assert sorted(address.version for address in addresses) == [4, 6]
    assert not any(address.private for address in addresses)


# Traffic.


def test_traffic_converts_kib_to_bytes(fake: FakeCloudStack, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.set_traffic(backend_id, 10 * 1024)

    assert harness.backend.read_traffic(backend_id) == 10 * 1024
    stats_request = fake.requests[-1].query
    assert stats_request["details"] == ["stats"]
    assert stats_request["accumulate"] == ["true"]


def test_traffic_without_statistics_raises(harness: Harness) -> None:
    backend_id = harness.running_vm()

    with pytest.raises(BackendError, match="no network statistics"):
        harness.backend.read_traffic(backend_id)


def test_traffic_is_opt_in(fake: FakeCloudStack) -> None:
    backend = make_backend(fake, vm_stats_traffic=None)

    assert not backend.supports("traffic")
    with pytest.raises(NotSupported):
        backend.read_traffic("any")
