"""Vultr cloud compute instances through the public API v2, authenticated with a
bearer API key.

Images are Vultr OS ids (digits) or snapshot ids (UUIDs); snapshots and images fetched
from a URL are both Vultr snapshots. The traffic counter is this UTC month's sum of the
per-day bandwidth figures, so it resets at the start of each month.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests

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
from chalicelib.clock import now, parse_iso
from chalicelib.errors import BackendError, InvalidRequest
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

PROVIDER = "Vultr"
DEFAULT_API_URL = "https://api.vultr.com/v2"
# Vultr pages with an opaque cursor. MAX_PAGES stops a list call that never ends.
PAGE_SIZE = 500
MAX_PAGES = 100
# The bandwidth endpoint's `date_range` is in days, at most 180.
MAX_DATE_RANGE_DAYS = 180
LABEL_MAX = 255
HOSTNAME_MAX = 63
INSTANCE_TAG = "lobster"
BYTES_PER_GB = 10**9
BYTES_PER_GIB = 1 << 30
# Vultr reports "0.0.0.0" as the main IP until an address is assigned.
UNASSIGNED_IPV4 = "0.0.0.0"
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Entries of /os that install no operating system: a custom ISO, or a restore of a
# snapshot, backup or application, which each need their own id at create.
NON_OS_FAMILIES = frozenset({"iso", "snapshot", "backup", "application"})

IMAGE_STATE_MAP = {
    "pending": ImageState.PENDING,
    "complete": ImageState.ACTIVE,
}


class VultrBackend(Backend):
    """A region backed by one Vultr account and one Vultr region.

    Settings: `region` (a Vultr region id such as "ewr", required), `api_url`,
    `timeout_seconds`. Secrets: `api_key` (a Vultr API key; Vultr also checks the
    caller's IP against the key's access control list).

    The customer's SSH key is installed by cloud-init from the instance's user data:
    Vultr's own key store needs a key id, and looking one up would cost a request
    before every create.
    """

    TYPE = "vultr"
    CAPABILITIES = frozenset(
        {
            "console",
            "rename",
            "reimage",
            "snapshot",
            "resize",
            "addresses",
            "reverse_dns",
            "image_fetch",
            "images",
            "public_images",
            "plans",
            "traffic",
        }
    )

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets)
        api_key = self.secrets.get("api_key")
        self.http = HttpClient(
            provider=PROVIDER,
            base_url=self.settings.get("api_url") or DEFAULT_API_URL,
            default_headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create an instance. Vultr returns its root password only in this response."""
        body: dict[str, Any] = {
            "region": self._region(),
            "plan": spec.plan_backend_id,
            "label": spec.name.strip()[:LABEL_MAX] or "vm",
            "hostname": vultr_hostname(spec.name),
            "tags": [INSTANCE_TAG],
            "activation_email": False,
            **_image_source(spec.image_backend_id),
        }
        if spec.ssh_public_key:
            body["user_data"] = _user_data(spec.ssh_public_key)

        instance = self._call("POST", "/instances", json=body)["instance"]

        backend_id = str(instance["id"])
        logger.info("vm_created", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})
        return CreatedVm(backend_id, _login_details(instance))

    def delete_vm(self, backend_id: str) -> None:
        self._call("DELETE", f"/instances/{backend_id}", idempotent=True, not_found_ok=True)
        logger.info("vm_deleted", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})

    def get_vm(self, backend_id: str) -> VmInfo:
        instance = self._instance(backend_id)
        return VmInfo(
            backend_id=backend_id,
            state=_state(instance),
            addresses=tuple(_instance_addresses(instance)),
            created_at=_parse_time(instance.get("date_created")),
            hostname=instance.get("label"),
            details={
                "status": instance.get("status", ""),
                "power_status": instance.get("power_status", ""),
                "server_status": instance.get("server_status", ""),
                "plan": instance.get("plan", ""),
                "region": instance.get("region", ""),
            },
        )

    def start_vm(self, backend_id: str) -> None:
        self._call("POST", f"/instances/{backend_id}/start")

    def stop_vm(self, backend_id: str) -> None:
        self._call("POST", f"/instances/{backend_id}/halt")

    def reboot_vm(self, backend_id: str) -> None:
        self._call("POST", f"/instances/{backend_id}/reboot")

    # Optional capabilities.

    def get_console_url(self, backend_id: str) -> str:
        url = self._instance(backend_id).get("kvm")
        if not url:
            raise BackendError(
                f"{PROVIDER} has no console for instance {backend_id} yet. Try again once it is running."
            )
        return str(url)

    def rename_vm(self, backend_id: str, name: str) -> None:
        # Only the label: changing the hostname makes Vultr reinstall the instance.
        self._call("PATCH", f"/instances/{backend_id}", json={"label": name.strip()[:LABEL_MAX] or "vm"})

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Reinstall with an OS, or restore a snapshot over the instance's disk.

        A new OS gets `ssh_public_key` through new user data, as at creation. A restored
        snapshot keeps the keys and passwords it contains, so the key is not sent.
        NOTE: Vultr documents `default_password` only for the create response. It is read
        from the reinstall response when present, and otherwise None is returned.
        """
        source = _image_source(image_backend_id)
        if "os_id" in source:
            body = dict(source)
            if ssh_public_key:
                body["user_data"] = _user_data(ssh_public_key)
            response = self._call("PATCH", f"/instances/{backend_id}", json=body)
        else:
            response = self._call("POST", f"/instances/{backend_id}/restore", json=source)
        logger.info("vm_reimage_started", extra={"region_id": self.region_id, "backend_id": backend_id})
        return _login_details(response.get("instance") or {})

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        # Vultr moves instances only to larger plans and rejects a smaller one with an error.
        self._call("PATCH", f"/instances/{backend_id}", json={"plan": plan_backend_id})
        logger.info(
            "vm_resize_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "plan_backend_id": plan_backend_id},
        )

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        snapshot = self._call("POST", "/snapshots", json={"instance_id": backend_id, "description": name})["snapshot"]
        logger.info(
            "snapshot_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "image_backend_id": snapshot["id"]},
        )
        return str(snapshot["id"])

    def list_addresses(self, backend_id: str) -> list[Address]:
        addresses = [
            Address(
                ip=entry["ip"],
                version=4,
                private=entry.get("type") == "private",
                reverse_dns=entry.get("reverse") or None,
            )
            for entry in self._paginate(f"/instances/{backend_id}/ipv4", "ipv4s")
        ]
        reverse_ipv6 = {
            entry["ip"]: entry.get("reverse")
            for entry in self._call("GET", f"/instances/{backend_id}/ipv6/reverse").get("reverse_ipv6s", [])
        }
        addresses += [
            Address(ip=entry["ip"], version=6, reverse_dns=reverse_ipv6.get(entry["ip"]))
            for entry in self._paginate(f"/instances/{backend_id}/ipv6", "ipv6s")
        ]
        return addresses

    def set_reverse_dns(self, backend_id: str, ip: str, hostname: str) -> None:
        # The endpoints belong to the instance, and Vultr refuses addresses it does not hold.
        version = 6 if ":" in ip else 4
        self._call(
            "POST",
            f"/instances/{backend_id}/ipv{version}/reverse",
            idempotent=True,
            json={"ip": ip, "reverse": hostname},
        )

    def fetch_image(self, url: str, name: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"image URL {url!r} must start with http:// or https://", field="url")

        snapshot = self._call("POST", "/snapshots/create-from-url", json={"url": url, "description": name})["snapshot"]

        logger.info("image_fetch_started", extra={"region_id": self.region_id, "image_backend_id": snapshot["id"]})
        return str(snapshot["id"])

    def get_image(self, image_backend_id: str) -> ImageInfo:
        return _image_info(self._call("GET", f"/snapshots/{image_backend_id}")["snapshot"])

    def list_images(self) -> list[ImageInfo]:
        return [_image_info(snapshot) for snapshot in self._paginate("/snapshots", "snapshots")]

    def delete_image(self, image_backend_id: str) -> None:
        self._call("DELETE", f"/snapshots/{image_backend_id}", idempotent=True, not_found_ok=True)
        logger.info("image_deleted", extra={"region_id": self.region_id, "image_backend_id": image_backend_id})

    def list_public_images(self) -> list[ImageInfo]:
        """List the operating systems Vultr installs, by OS id."""
        return [
            ImageInfo(backend_id=str(entry["id"]), name=entry.get("name") or "", state=ImageState.ACTIVE)
            for entry in self._paginate("/os", "os")
            if entry.get("family") not in NON_OS_FAMILIES
        ]

    def list_plans(self) -> list[PlanOffer]:
        region = self._region()
        return [
            PlanOffer(
                backend_id=plan["id"],
                name=plan["id"],
                ram_mb=int(plan["ram"]),
                vcpus=int(plan["vcpu_count"]),
                disk_gb=int(plan["disk"]),
                bandwidth_gib=int(plan.get("bandwidth") or 0) * BYTES_PER_GB // BYTES_PER_GIB,
            )
            for plan in self._paginate("/plans", "plans")
            if region in plan.get("locations", [])
        ]

    def read_traffic(self, backend_id: str) -> int:
        """Return the instance's traffic (in plus out) in the current UTC month, in bytes.

        Vultr reports bandwidth per UTC day over a sliding window of days. A sum over
        the window would drop whenever a busy day leaves it, which billing would read as
        a counter reset and count twice, so only the days of the current month are
        summed: a counter that resets once a month. NOTE: Vultr refreshes these figures
        periodically, so traffic of a month's last hours can show up only after the
        month's final reading and then never be counted.
        """
        today = now()
        month = today.strftime("%Y-%m")
        days = min(today.day + 1, MAX_DATE_RANGE_DAYS)

        body = self._call("GET", f"/instances/{backend_id}/bandwidth", params={"date_range": days})

        per_day = body.get("bandwidth") if isinstance(body, dict) else None
        if not isinstance(per_day, dict):
            raise BackendError(f"{PROVIDER} returned no bandwidth reading for instance {backend_id}")
        return sum(
            int(usage.get("incoming_bytes") or 0) + int(usage.get("outgoing_bytes") or 0)
            for day, usage in per_day.items()
            if day.startswith(month)
        )

    # Requests.

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.secrets.get("api_key"):
            raise BackendError(f"region {self.region_id} has no Vultr API key. Set the `api_key` secret.")
        return self.http.json(method, path, **kwargs) or {}

    def _instance(self, backend_id: str) -> dict[str, Any]:
        return self._call("GET", f"/instances/{backend_id}")["instance"]

    def _paginate(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        cursor = ""
        for _ in range(MAX_PAGES):
            params = {"per_page": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
            body = self._call("GET", path, params=params)
            yield from body.get(key, [])
            cursor = ((body.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return
        raise BackendError(f"{PROVIDER} returned more than {MAX_PAGES} pages for {path}")

    def _region(self) -> str:
        region = self.settings.get("region")
        if not region:
            raise BackendError(f"region {self.region_id} has no Vultr region id. Set the `region` setting.")
        return str(region)


# Translation helpers.


def vultr_hostname(name: str) -> str:
    """Return `name` as a hostname label: letters, digits and dashes, at most 63."""
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[:HOSTNAME_MAX].strip("-")
    return cleaned.lower() or "vm"


def _image_source(image_backend_id: str) -> dict[str, Any]:
    if image_backend_id.isdigit():
        return {"os_id": int(image_backend_id)}
    if UUID_PATTERN.fullmatch(image_backend_id):
        return {"snapshot_id": image_backend_id}
    raise InvalidRequest(f"{image_backend_id!r} is neither a Vultr OS id nor a snapshot id", field="image")


def _user_data(public_key: str) -> str:
    config = "#cloud-config\nusers:\n  - name: root\n    ssh_authorized_keys:\n      - " + public_key.strip() + "\n"
    return base64.b64encode(config.encode()).decode()


def _login_details(instance: Mapping[str, Any]) -> str | None:
    password = instance.get("default_password")
    return f"username: root; password: {password}" if password else None


def _state(instance: Mapping[str, Any]) -> VmState:
    status = instance.get("status")
    if status == "pending" or instance.get("server_status") == "installingbooting":
        return VmState.PROVISIONING
    if status == "suspended":
        return VmState.STOPPED
    if status != "active":
        return VmState.UNKNOWN
    return {"running": VmState.RUNNING, "stopped": VmState.STOPPED}.get(
        instance.get("power_status", ""), VmState.UNKNOWN
    )


def _instance_addresses(instance: Mapping[str, Any]) -> list[Address]:
    addresses = []
    if instance.get("main_ip") and instance["main_ip"] != UNASSIGNED_IPV4:
        addresses.append(Address(ip=instance["main_ip"], version=4))
    if instance.get("internal_ip"):
        addresses.append(Address(ip=instance["internal_ip"], version=4, private=True))
    if instance.get("v6_main_ip"):
        addresses.append(Address(ip=instance["v6_main_ip"], version=6))
    return addresses


def _image_info(snapshot: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        backend_id=str(snapshot["id"]),
        name=snapshot.get("description") or "",
        state=IMAGE_STATE_MAP.get(snapshot.get("status", ""), ImageState.ERROR),
        size_bytes=int(snapshot.get("size") or 0),
    )


def _parse_time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    read = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    return (min(float(CONNECT_TIMEOUT_SECONDS), read), read)


def _describe_error(response: requests.Response) -> str:
    body = response.json()
    return str(body.get("error") or "") if isinstance(body, dict) else ""
