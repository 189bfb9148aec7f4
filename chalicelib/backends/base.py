"""The backend interface every provider module implements.

A backend drives one region's provider API. The required methods cover the VM life
cycle and traffic counters; optional capabilities are declared in `CAPABILITIES` and
offered to users only when present. Backend ids are the provider's own ids, as strings.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from chalicelib.errors import NotSupported


class VmState(enum.StrEnum):
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    DELETED = "deleted"
    UNKNOWN = "unknown"


class ImageState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ERROR = "error"


# Optional capabilities and the methods each one requires.
CAPABILITY_METHODS: dict[str, tuple[str, ...]] = {
    "console": ("get_console_url",),
    "rename": ("rename_vm",),
    "reimage": ("reimage_vm",),
    "snapshot": ("snapshot_vm",),
    "resize": ("resize_vm",),
    "addresses": ("list_addresses",),
    "reverse_dns": ("set_reverse_dns",),
    "image_fetch": ("fetch_image",),
    "images": ("get_image", "list_images", "delete_image"),
    "public_images": ("list_public_images",),
    "plans": ("list_plans",),
    "actions": ("list_actions", "run_action"),
    "traffic": ("read_traffic",),
}


@dataclass(frozen=True)
class Address:
    ip: str
    version: int  # 4 or 6
    private: bool = False
    reverse_dns: str | None = None


@dataclass(frozen=True)
class VmSpec:
    """A customer's VM request, translated to the region's backend ids."""

    name: str
    plan_backend_id: str
    image_backend_id: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    ssh_public_key: str | None = None


@dataclass(frozen=True)
class CreatedVm:
    """A VM the provider accepted, with what a customer needs to log in to it.

    `login_details` is shown to the customer, so a password the backend generated at
    creation is kept: many providers return it only in the create response.
    """

    backend_id: str
    login_details: str | None = None


@dataclass(frozen=True)
class VmInfo:
    backend_id: str
    state: VmState
    addresses: tuple[Address, ...] = ()
    created_at: datetime | None = None
    hostname: str | None = None
    login_details: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    backend_id: str
    name: str
    state: ImageState
    size_bytes: int = 0


@dataclass(frozen=True)
class PlanOffer:
    backend_id: str
    name: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    bandwidth_gib: int


@dataclass(frozen=True)
class ActionDescriptor:
    action: str
    label: str
    description: str = ""
    dangerous: bool = False
    options: Mapping[str, str] = field(default_factory=dict)


class Backend(ABC):
    """Base class of every backend.

    `settings` contains the region's non-secret configuration (endpoint URL, provider
    region, ...). `secrets` contains credentials and is never logged.
    """

    TYPE: ClassVar[str]
    CAPABILITIES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        self.region_id = region_id
        self.settings = dict(settings)
        self.secrets = dict(secrets)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for capability in cls.CAPABILITIES:
            methods = CAPABILITY_METHODS.get(capability)
            if methods is None:
                raise TypeError(f"{cls.__name__} declares unknown capability {capability!r}")
            for method in methods:
                if getattr(cls, method) is getattr(Backend, method):
                    raise TypeError(f"{cls.__name__} declares {capability!r} but lacks {method}()")

    def supports(self, capability: str) -> bool:
        return capability in self.CAPABILITIES

    # Required: the VM life cycle.

    @abstractmethod
    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a VM and return its backend id and login details once the provider
        accepted it. A create that may have reached the provider (a timeout or a 5xx) is
        never sent again, so it cannot make two VMs."""

    @abstractmethod
    def delete_vm(self, backend_id: str) -> None:
        """Delete a VM. A VM the provider no longer has counts as deleted."""

    @abstractmethod
    def get_vm(self, backend_id: str) -> VmInfo:
        """Return the VM's state, addresses and login details."""

    @abstractmethod
    def start_vm(self, backend_id: str) -> None: ...

    @abstractmethod
    def stop_vm(self, backend_id: str) -> None: ...

    @abstractmethod
    def reboot_vm(self, backend_id: str) -> None: ...

    # Optional capabilities; each raises NotSupported unless the subclass declares it.

    def read_traffic(self, backend_id: str) -> int:
        """Return the VM's traffic counter in bytes (in plus out).

        The counter only grows, except when the provider resets it (a new month, a host
        move); billing treats a reading lower than the last one as a reset.
        """
        raise self._unsupported("traffic")

    def read_traffic_batch(self, backend_ids: Sequence[str]) -> dict[str, int]:
        """Return the traffic counters of several VMs in bytes, keyed by backend id.

        For backends that declare "traffic" and can read many counters in one provider
        request. A VM the provider does not report is left out of the result. The default
        raises NotSupported, and callers then read each VM with `read_traffic`.
        """
        raise NotSupported(f"region {self.region_id} reads traffic counters one VM at a time")

    def get_console_url(self, backend_id: str) -> str:
        raise self._unsupported("console")

    def rename_vm(self, backend_id: str, name: str) -> None:
        raise self._unsupported("rename")

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Reinstall the VM from an image and return its new login details.

        `ssh_public_key` is installed again where the provider's reinstall drops the
        keys given at creation. Returns None when the login details from creation still
        apply or the provider reports none.
        """
        raise self._unsupported("reimage")

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        """Start a snapshot and return an id that `get_image` accepts.

        The id may be provisional: some providers name the new image only once the
        snapshot finishes. `get_image(id).backend_id` is the image's authoritative id,
        so a caller stores that one once the image is active.
        """
        raise self._unsupported("snapshot")

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        raise self._unsupported("resize")

    def list_addresses(self, backend_id: str) -> list[Address]:
        raise self._unsupported("addresses")

    def set_reverse_dns(self, backend_id: str, ip: str, hostname: str) -> None:
        raise self._unsupported("reverse_dns")

    def fetch_image(self, url: str, name: str) -> str:
        """Start importing an image from `url` and return its backend id."""
        raise self._unsupported("image_fetch")

    def get_image(self, image_backend_id: str) -> ImageInfo:
        raise self._unsupported("images")

    def list_images(self) -> list[ImageInfo]:
        raise self._unsupported("images")

    def delete_image(self, image_backend_id: str) -> None:
        raise self._unsupported("images")

    def list_public_images(self) -> list[ImageInfo]:
        """List the provider's stock images (operating systems) that new VMs can use.

        Unlike `list_images`, which lists the account's own images and snapshots, these
        belong to no customer, so an operator may offer them in the catalog.
        """
        raise self._unsupported("public_images")

    def list_plans(self) -> list[PlanOffer]:
        raise self._unsupported("plans")

    def list_actions(self, backend_id: str) -> list[ActionDescriptor]:
        raise self._unsupported("actions")

    def run_action(self, backend_id: str, action: str, value: str | None = None) -> None:
        raise self._unsupported("actions")

    def _unsupported(self, capability: str) -> NotSupported:
        return NotSupported(f"region {self.region_id} does not offer {capability.replace('_', ' ')}")
