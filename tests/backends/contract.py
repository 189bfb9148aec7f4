"""The contract every backend meets, run against each backend's local fake provider.

A backend's test module subclasses `BackendContract` and provides a `harness` fixture
returning a `Harness`. Capability tests run only for capabilities the backend declares.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chalicelib.backends.base import Backend, CreatedVm, ImageState, VmSpec, VmState
from chalicelib.errors import BackendUnavailable, LobsterError, NotFound, NotSupported
from tests.fakes.server import FakeProvider, Request

# Backends under contract test are configured with this read timeout, in seconds.
CONTRACT_TIMEOUT_SECONDS = 1


@dataclass
class Harness:
    backend: Backend
    fake: FakeProvider | None
    plan_backend_id: str
    image_backend_id: str
    # Finish provisioning of a VM on the provider's side.
    make_active: Callable[[str], None]
    # Set the provider's traffic counter of a VM, in bytes.
    set_traffic: Callable[[str, int], None]
    resize_plan_backend_id: str | None = None
    # Recorded counter granularity: readings are compared with this tolerance in bytes.
    traffic_tolerance: int = 0
    # The provider request that creates a VM: its method and a regular expression for its
    # path. Requests the backend sends before it (a login, a key lookup) do not match.
    create_method: str = "POST"
    create_path: str = ".*"

    def spec(self, name: str = "contract-vm") -> VmSpec:
        return VmSpec(
            name=name,
            plan_backend_id=self.plan_backend_id,
            image_backend_id=self.image_backend_id,
            ram_mb=1024,
            vcpus=1,
            disk_gb=25,
            ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0cZfJxN0s1bEJ4pD3zhDRYyHTdJrpXbJ3Gn4rxYVe contract@test",
        )

    def running_vm(self) -> str:
        backend_id = self.backend.create_vm(self.spec()).backend_id
        self.make_active(backend_id)
        return backend_id

    def is_create_request(self, request: Request) -> bool:
        return request.method == self.create_method and re.fullmatch(self.create_path, request.path) is not None


def _wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


class BackendContract:
    """Tests shared by every backend. Subclasses define the `harness` fixture."""

    def test_create_then_active_has_addresses(self, harness: Harness) -> None:
        created = harness.backend.create_vm(harness.spec())
        backend_id = created.backend_id
        assert isinstance(created, CreatedVm)
        assert isinstance(backend_id, str) and backend_id
        assert created.login_details is None or isinstance(created.login_details, str)

        harness.make_active(backend_id)
        info = harness.backend.get_vm(backend_id)

        assert info.backend_id == backend_id
        assert info.state == VmState.RUNNING
        assert any(address.version == 4 and not address.private for address in info.addresses)

    def test_power_actions_change_state(self, harness: Harness) -> None:
        backend_id = harness.running_vm()

        harness.backend.stop_vm(backend_id)
        _wait_for(lambda: harness.backend.get_vm(backend_id).state == VmState.STOPPED)
        harness.backend.start_vm(backend_id)
        _wait_for(lambda: harness.backend.get_vm(backend_id).state == VmState.RUNNING)
        harness.backend.reboot_vm(backend_id)
        _wait_for(lambda: harness.backend.get_vm(backend_id).state == VmState.RUNNING)

    def test_delete_then_gone(self, harness: Harness) -> None:
        backend_id = harness.running_vm()

        harness.backend.delete_vm(backend_id)

        def gone() -> bool:
            try:
                return harness.backend.get_vm(backend_id).state == VmState.DELETED
            except NotFound:
                return True

        _wait_for(gone)

    def test_delete_unknown_vm_is_not_an_error(self, harness: Harness) -> None:
        backend_id = harness.running_vm()
        harness.backend.delete_vm(backend_id)

        harness.backend.delete_vm(backend_id)

    def test_provider_server_error_raises_unavailable(self, harness: Harness) -> None:
        if harness.fake is None:
            pytest.skip("backend has no fake provider")
        backend_id = harness.running_vm()

        harness.fake.fail_next(status=503, count=10)
        with pytest.raises(BackendUnavailable) as raised:
            harness.backend.get_vm(backend_id)

        assert raised.value.status_code == 503

    def test_create_is_not_retried_after_server_error(self, harness: Harness) -> None:
        if harness.fake is None:
            pytest.skip("backend has no fake provider")
        before = len(harness.fake.requests)

        harness.fake.fail_next(status=500, count=1, method=harness.create_method, path=harness.create_path)
        with pytest.raises(BackendUnavailable):
            harness.backend.create_vm(harness.spec())

        creates = [r for r in harness.fake.requests[before:] if harness.is_create_request(r)]
        assert len(creates) == 1

    def test_timeout_raises_unavailable(self, harness: Harness) -> None:
        if harness.fake is None:
            pytest.skip("backend has no fake provider")
        backend_id = harness.running_vm()

        harness.fake.hang_next(CONTRACT_TIMEOUT_SECONDS + 1.0, count=10)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            harness.backend.get_vm(backend_id)
        assert time.monotonic() - started < 30

    def test_traffic_counter_reset_and_failed_reading(self, harness: Harness) -> None:
        if not harness.backend.supports("traffic"):
            pytest.skip("backend has no traffic counters")
        backend_id = harness.running_vm()
        gib = 1 << 30

        harness.set_traffic(backend_id, 3 * gib)
        first = harness.backend.read_traffic(backend_id)
        harness.set_traffic(backend_id, 5 * gib)
        second = harness.backend.read_traffic(backend_id)
        harness.set_traffic(backend_id, 1 * gib)
        after_reset = harness.backend.read_traffic(backend_id)

        assert abs(first - 3 * gib) <= harness.traffic_tolerance
        assert abs(second - 5 * gib) <= harness.traffic_tolerance
        assert abs(after_reset - 1 * gib) <= harness.traffic_tolerance
        if harness.fake is not None:
            harness.fake.fail_next(status=500, count=10)
            with pytest.raises(LobsterError):
                harness.backend.read_traffic(backend_id)

    def test_undeclared_capability_raises_not_supported(self, harness: Harness) -> None:
        missing = {"console", "rename", "reimage", "snapshot", "resize", "public_images"} - harness.backend.CAPABILITIES
        backend_id = harness.running_vm()

        for capability in missing:
            call = {
                "console": lambda: harness.backend.get_console_url(backend_id),
                "rename": lambda: harness.backend.rename_vm(backend_id, "x"),
                "reimage": lambda: harness.backend.reimage_vm(backend_id, harness.image_backend_id),
                "snapshot": lambda: harness.backend.snapshot_vm(backend_id, "x"),
                "resize": lambda: harness.backend.resize_vm(backend_id, harness.plan_backend_id),
                "public_images": harness.backend.list_public_images,
            }[capability]
            with pytest.raises(NotSupported):
                call()

    # Optional capabilities.

    def test_console_url(self, harness: Harness) -> None:
        if not harness.backend.supports("console"):
            pytest.skip("no console capability")
        url = harness.backend.get_console_url(harness.running_vm())
        assert url.startswith(("https://", "http://"))

    def test_rename(self, harness: Harness) -> None:
        if not harness.backend.supports("rename"):
            pytest.skip("no rename capability")
        backend_id = harness.running_vm()
        harness.backend.rename_vm(backend_id, "renamed-vm")
        hostname = harness.backend.get_vm(backend_id).hostname
        assert hostname in (None, "renamed-vm")

    def test_reimage(self, harness: Harness) -> None:
        if not harness.backend.supports("reimage"):
            pytest.skip("no reimage capability")
        backend_id = harness.running_vm()
        login = harness.backend.reimage_vm(backend_id, harness.image_backend_id, harness.spec().ssh_public_key)
        harness.make_active(backend_id)
        assert login is None or isinstance(login, str)
        assert harness.backend.get_vm(backend_id).state != VmState.ERROR

    def test_snapshot_creates_image(self, harness: Harness) -> None:
        if not harness.backend.supports("snapshot"):
            pytest.skip("no snapshot capability")
        image_id = harness.backend.snapshot_vm(harness.running_vm(), "contract-snapshot")
        assert image_id
        if harness.backend.supports("images"):
            info = harness.backend.get_image(image_id)
            assert info.state in (ImageState.PENDING, ImageState.ACTIVE)

    def test_resize(self, harness: Harness) -> None:
        if not harness.backend.supports("resize"):
            pytest.skip("no resize capability")
        backend_id = harness.running_vm()
        harness.backend.resize_vm(backend_id, harness.resize_plan_backend_id or harness.plan_backend_id)
        harness.make_active(backend_id)
        assert harness.backend.get_vm(backend_id).state in (VmState.RUNNING, VmState.STOPPED)

    def test_addresses_and_reverse_dns(self, harness: Harness) -> None:
        if not harness.backend.supports("addresses"):
            pytest.skip("no addresses capability")
        backend_id = harness.running_vm()
        addresses = harness.backend.list_addresses(backend_id)
        assert addresses
        if harness.backend.supports("reverse_dns"):
            public = next(a for a in addresses if not a.private)
            harness.backend.set_reverse_dns(backend_id, public.ip, "vm.example.com")
            updated = {a.ip: a for a in harness.backend.list_addresses(backend_id)}
            assert updated[public.ip].reverse_dns in ("vm.example.com", None)

    def test_image_fetch_and_delete(self, harness: Harness) -> None:
        if not harness.backend.supports("image_fetch"):
            pytest.skip("no image fetch capability")
        image_id = harness.backend.fetch_image("https://images.example.com/disk.qcow2", "fetched")
        assert image_id
        if harness.backend.supports("images"):
            assert harness.backend.get_image(image_id).state in (ImageState.PENDING, ImageState.ACTIVE)
            assert image_id in {image.backend_id for image in harness.backend.list_images()}
            harness.backend.delete_image(image_id)

    def test_list_public_images(self, harness: Harness) -> None:
        if not harness.backend.supports("public_images"):
            pytest.skip("no public image list capability")
        images = harness.backend.list_public_images()
        assert images
        assert all(image.backend_id and image.name for image in images)
        assert harness.image_backend_id in {image.backend_id for image in images}

    def test_list_plans(self, harness: Harness) -> None:
        if not harness.backend.supports("plans"):
            pytest.skip("no plan list capability")
        plans = harness.backend.list_plans()
        assert plans
        assert all(plan.backend_id and plan.ram_mb > 0 for plan in plans)
