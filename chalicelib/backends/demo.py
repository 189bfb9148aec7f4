"""The demo backend for local runs: VMs live in their own DynamoDB table.

A VM provisions for `demo_provision_seconds`, then runs; power actions change its state,
and its traffic counter grows by a steady, VM-specific rate from its creation or its last
counter reset. Refused outside the local and test stages.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.backends.base import (
    Address,
    Backend,
    CreatedVm,
    ImageInfo,
    ImageState,
    PlanOffer,
    VmInfo,
    VmSpec,
    VmState,
)
from chalicelib.clock import iso, now, parse_iso
from chalicelib.config import public_url, settings
from chalicelib.errors import BackendUnavailable, NotFound
from chalicelib.models.demo import DemoMachine

# Simulated traffic: between 50 kB/s and 250 kB/s per VM, chosen from the VM id.
MIN_BYTES_PER_SECOND = 50_000
BYTES_PER_SECOND_SPREAD = 200_000
LOGIN_DETAILS = "username: root (log in with your SSH key)"
PUBLIC_IMAGES = (
    ("debian-12-x64", "Debian 12 x64"),
    ("ubuntu-24.04-x64", "Ubuntu 24.04 LTS x64"),
)


class DemoBackend(Backend):
    TYPE = "demo"
    CAPABILITIES = frozenset(
        {"traffic", "console", "rename", "reimage", "resize", "addresses", "plans", "public_images"}
    )

    def __init__(self, region_id: str, settings_: Mapping[str, Any], secrets_: Mapping[str, str]) -> None:
        if not settings().is_local:
            raise RuntimeError("the demo backend runs only in the local and test stages")
        super().__init__(region_id, settings_, secrets_)

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        machine = DemoMachine(
            f"demo-{secrets.token_hex(6)}",
            name=spec.name,
            plan=spec.plan_backend_id,
            image=spec.image_backend_id,
            created_at=iso(now()),
        )
        machine.save()
        return CreatedVm(machine.machine_id, LOGIN_DETAILS)

    def delete_vm(self, backend_id: str) -> None:
        DemoMachine(backend_id).delete()

    def get_vm(self, backend_id: str) -> VmInfo:
        machine = self._machine(backend_id)
        created = parse_iso(machine.created_at)
        return VmInfo(
            backend_id=backend_id,
            state=self._state(machine, created),
            addresses=tuple(self._addresses(backend_id)),
            created_at=created,
            hostname=machine.name,
            login_details=LOGIN_DETAILS,
        )

    def start_vm(self, backend_id: str) -> None:
        self._machine(backend_id).update(actions=[DemoMachine.power.set("online")])

    def stop_vm(self, backend_id: str) -> None:
        self._machine(backend_id).update(actions=[DemoMachine.power.set("offline")])

    def reboot_vm(self, backend_id: str) -> None:
        self.start_vm(backend_id)

    def read_traffic(self, backend_id: str) -> int:
        return self._counter(self._machine(backend_id), now())

    def read_traffic_batch(self, backend_ids: Sequence[str]) -> dict[str, int]:
        """Read the counters with consistent BatchGetItem calls of up to 100 machines."""
        moment = now()
        try:
            machines = list(DemoMachine.batch_get(set(backend_ids), consistent_read=True))
        except PynamoDBException as error:
            raise BackendUnavailable(f"reading {len(backend_ids)} demo traffic counters failed: {error}") from error
        return {machine.machine_id: self._counter(machine, moment) for machine in machines}

    def reset_traffic_counter(self, backend_id: str) -> None:
        """Simulate a provider-side counter reset (used by tests and the demo)."""
        self._machine(backend_id).update(actions=[DemoMachine.counter_reset_at.set(iso(now()))])

    def get_console_url(self, backend_id: str) -> str:
        self._machine(backend_id)
        return f"{public_url()}/assets/demo-console.html?vm={backend_id}"

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._machine(backend_id).update(actions=[DemoMachine.name.set(name)])

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        self._machine(backend_id).update(actions=[DemoMachine.image.set(image_backend_id)])
        return None

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        self._machine(backend_id).update(actions=[DemoMachine.plan.set(plan_backend_id)])

    def list_addresses(self, backend_id: str) -> list[Address]:
        self._machine(backend_id)
        return self._addresses(backend_id)

    def list_plans(self) -> list[PlanOffer]:
        return [
            PlanOffer("demo-1", "Demo 1 GB", 1024, 1, 25, 1000),
            PlanOffer("demo-2", "Demo 2 GB", 2048, 1, 50, 2000),
            PlanOffer("demo-4", "Demo 4 GB", 4096, 2, 80, 4000),
        ]

    def list_public_images(self) -> list[ImageInfo]:
        return [ImageInfo(backend_id, name, ImageState.ACTIVE) for backend_id, name in PUBLIC_IMAGES]

    def _machine(self, backend_id: str) -> DemoMachine:
        try:
            return DemoMachine.get(backend_id, consistent_read=True)
        except DoesNotExist as error:
            raise NotFound(f"demo VM {backend_id} does not exist") from error

    def _counter(self, machine: DemoMachine, moment: datetime) -> int:
        since = parse_iso(machine.counter_reset_at or machine.created_at)
        seconds = max(0, int((moment - since).total_seconds()))
        return seconds * self._rate(machine.machine_id)

    def _state(self, machine: DemoMachine, created: datetime) -> VmState:
        if (now() - created).total_seconds() < settings().demo_provision_seconds:
            return VmState.PROVISIONING
        return VmState.RUNNING if machine.power == "online" else VmState.STOPPED

    @staticmethod
    def _rate(backend_id: str) -> int:
        return MIN_BYTES_PER_SECOND + zlib.crc32(backend_id.encode()) % BYTES_PER_SECOND_SPREAD

    @staticmethod
    def _addresses(backend_id: str) -> list[Address]:
        host = zlib.crc32(backend_id.encode())
        return [
            Address(f"192.0.2.{host % 250 + 2}", 4),
            Address(f"2001:db8::{host % 65535:x}", 6),
        ]
