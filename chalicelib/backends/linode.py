"""Linode instances through the public API v4, authenticated with a bearer token.

Lobster generates each instance's root password and sends it with the create and
rebuild calls. Linode instance labels must be unique within the account, so a label
that is taken gets a random suffix.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
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
from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

PROVIDER = "Linode"
DEFAULT_API_URL = "https://api.linode.com/v4"
# Linode accepts page_size from 25 to 500. MAX_PAGES stops a list call that never ends.
PAGE_SIZE = 500
MAX_PAGES = 100
ROOT_PASSWORD_LENGTH = 32
LABEL_MIN = 3
LABEL_MAX = 64
LABEL_SUFFIX_BYTES = 3
IMAGE_LABEL_MAX = 50
INSTANCE_TAG = "lobster"
BYTES_PER_MIB = 1 << 20
BYTES_PER_GB = 10**9
BYTES_PER_GIB = 1 << 30
MIB_PER_GIB = 1024
# Linode hands out private IPv4 addresses from this range.
PRIVATE_IPV4_NETWORK = ipaddress.ip_network("192.168.128.0/17")

STATE_MAP = {
    "running": VmState.RUNNING,
    "offline": VmState.STOPPED,
    "stopped": VmState.STOPPED,
    "billing_suspension": VmState.STOPPED,
    "provisioning": VmState.PROVISIONING,
    "rebuilding": VmState.PROVISIONING,
    "cloning": VmState.PROVISIONING,
    "restoring": VmState.PROVISIONING,
    "deleting": VmState.DELETED,
}
IMAGE_STATE_MAP = {
    "creating": ImageState.PENDING,
    "pending_upload": ImageState.PENDING,
    "available": ImageState.ACTIVE,
}


class LinodeBackend(Backend):
    """A region backed by one Linode account and one Linode region.

    Settings: `region` (a Linode region id such as "us-east", required), `api_url`,
    `timeout_seconds`. Secrets: `token` (a personal access token with read/write access
    to Linodes, images and IPs).

    Snapshots are private images made from the instance's main disk. Linode offers no
    import from a URL (only uploads), so "image_fetch" is not declared, and no console
    URL in API v4.
    """

    TYPE = "linode"
    CAPABILITIES = frozenset(
        {
            "rename",
            "reimage",
            "snapshot",
            "resize",
            "addresses",
            "reverse_dns",
            "images",
            "public_images",
            "plans",
            "traffic",
        }
    )

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets)
        token = self.secrets.get("token")
        self.http = HttpClient(
            provider=PROVIDER,
            base_url=self.settings.get("api_url") or DEFAULT_API_URL,
            default_headers={"Authorization": f"Bearer {token}"} if token else None,
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        password = _generate_password()
        body: dict[str, Any] = {
            "type": spec.plan_backend_id,
            "region": self._region(),
            "image": spec.image_backend_id,
            "label": linode_label(spec.name),
            "root_pass": password,
            "booted": True,
            "tags": [INSTANCE_TAG],
        }
        if spec.ssh_public_key:
            body["authorized_keys"] = [spec.ssh_public_key.strip()]

        instance = self._send_with_free_label("POST", "/linode/instances", body)

        backend_id = str(instance["id"])
        logger.info("vm_created", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})
        return CreatedVm(backend_id, _login_details(password))

    def delete_vm(self, backend_id: str) -> None:
        self._call("DELETE", f"/linode/instances/{backend_id}", idempotent=True, not_found_ok=True)
        logger.info("vm_deleted", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})

    def get_vm(self, backend_id: str) -> VmInfo:
        instance = self._call("GET", f"/linode/instances/{backend_id}")
        status = instance.get("status", "")
        return VmInfo(
            backend_id=backend_id,
            state=STATE_MAP.get(status, VmState.UNKNOWN),
            addresses=tuple(_instance_addresses(instance)),
            created_at=_parse_time(instance.get("created")),
            hostname=instance.get("label"),
            details={"status": status, "type": instance.get("type") or "", "region": instance.get("region") or ""},
        )

    def start_vm(self, backend_id: str) -> None:
        self._call("POST", f"/linode/instances/{backend_id}/boot")

    def stop_vm(self, backend_id: str) -> None:
        self._call("POST", f"/linode/instances/{backend_id}/shutdown")

    def reboot_vm(self, backend_id: str) -> None:
        self._call("POST", f"/linode/instances/{backend_id}/reboot")

    # Optional capabilities.

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._send_with_free_label("PUT", f"/linode/instances/{backend_id}", {"label": linode_label(name)})

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Rebuild the instance from an image with a new root password, and return it.

        The rebuild replaces the disks, so the SSH key given at creation is gone and
        `ssh_public_key` is installed again.
        """
        password = _generate_password()
        body: dict[str, Any] = {"image": image_backend_id, "root_pass": password, "booted": True}
        if ssh_public_key:
            body["authorized_keys"] = [ssh_public_key.strip()]

        self._call("POST", f"/linode/instances/{backend_id}/rebuild", json=body)

        return _login_details(password)

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        self._call(
            "POST",
            f"/linode/instances/{backend_id}/resize",
            json={"type": plan_backend_id, "allow_auto_disk_resize": True},
        )
        logger.info(
            "vm_resize_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "plan_backend_id": plan_backend_id},
        )

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        """Start a private image of the instance's largest non-swap disk."""
        disks = [
            disk for disk in self._paginate(f"/linode/instances/{backend_id}/disks") if disk.get("filesystem") != "swap"
        ]
        if not disks:
            raise BackendError(f"{PROVIDER} instance {backend_id} has no disk to make an image from")
        disk = max(disks, key=lambda item: int(item.get("size") or 0))

        image = self._call("POST", "/images", json={"disk_id": disk["id"], "label": image_label(name)})

        logger.info(
            "snapshot_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "image_backend_id": image["id"]},
        )
        return str(image["id"])

    def list_addresses(self, backend_id: str) -> list[Address]:
        ips = self._call("GET", f"/linode/instances/{backend_id}/ips")
        ipv4 = ips.get("ipv4") or {}
        addresses = [_address(entry, private=False) for entry in ipv4.get("public", [])]
        addresses += [_address(entry, private=True) for entry in ipv4.get("private", [])]
        slaac = (ips.get("ipv6") or {}).get("slaac")
        if slaac and slaac.get("address"):
            addresses.append(_address(slaac, private=False))
        return addresses

    def set_reverse_dns(self, backend_id: str, ip: str, hostname: str) -> None:
        # The networking endpoint accepts any address of the account, so check first
        # that the address belongs to this VM.
        if ip not in {address.ip for address in self.list_addresses(backend_id)}:
            raise NotFound(f"address {ip} does not belong to this VM")
        self._call("PUT", f"/networking/ips/{ip}", idempotent=True, json={"rdns": hostname or None})

    def get_image(self, image_backend_id: str) -> ImageInfo:
        _check_image_id(image_backend_id)
        return _image_info(self._call("GET", f"/images/{image_backend_id}"))

    def list_images(self) -> list[ImageInfo]:
        images = self._paginate("/images", filters={"is_public": False})
        return [_image_info(image) for image in images]

    def delete_image(self, image_backend_id: str) -> None:
        _check_image_id(image_backend_id)
        self._call("DELETE", f"/images/{image_backend_id}", idempotent=True, not_found_ok=True)
        logger.info("image_deleted", extra={"region_id": self.region_id, "image_backend_id": image_backend_id})

    def list_public_images(self) -> list[ImageInfo]:
        """List Linode's public images that are not deprecated; they exist in every region."""
        images = self._paginate("/images", filters={"is_public": True, "deprecated": False})
        return [_image_info(image) for image in images]

    def list_plans(self) -> list[PlanOffer]:
        return [
            PlanOffer(
                backend_id=linode_type["id"],
                name=linode_type.get("label") or linode_type["id"],
                ram_mb=int(linode_type["memory"]),
                vcpus=int(linode_type["vcpus"]),
                disk_gb=int(linode_type["disk"]) // MIB_PER_GIB,
                # NOTE: the API document gives `transfer` in MB, but the values the API
                # returns (1000 for a plan sold with 1 TB) are decimal gigabytes.
                bandwidth_gib=int(linode_type.get("transfer") or 0) * BYTES_PER_GB // BYTES_PER_GIB,
            )
            for linode_type in self._paginate("/linode/types")
        ]

    def read_traffic(self, backend_id: str) -> int:
        """Return this month's network transfer of the instance, in bytes.

        Linode resets the counter at the start of each billing month, and billing treats
        the lower reading as a reset. NOTE: this is the figure Linode bills, and Linode bills
        outbound traffic only, so inbound bytes may be missing from it.
        """
        transfer = self._call("GET", f"/linode/instances/{backend_id}/transfer")
        if not isinstance(transfer, dict) or not isinstance(transfer.get("used"), int):
            raise BackendError(f"{PROVIDER} returned no transfer reading for instance {backend_id}")
        return transfer["used"]

    # Requests.

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.secrets.get("token"):
            raise BackendError(f"region {self.region_id} has no Linode API token. Set the `token` secret.")
        return self.http.json(method, path, **kwargs)

    def _paginate(self, path: str, filters: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        headers = {"X-Filter": json.dumps(filters)} if filters else {}
        for page in range(1, MAX_PAGES + 1):
            body = self._call("GET", path, params={"page": page, "page_size": PAGE_SIZE}, headers=headers)
            yield from body.get("data", [])
            if page >= int(body.get("pages") or 1):
                return
        raise BackendError(f"{PROVIDER} returned more than {MAX_PAGES} pages for {path}")

    def _send_with_free_label(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Send a create or update that sets a label, retrying once if the label is taken.

        Whether the label is taken is checked only after Linode rejected the request,
        so the usual call is one request. A rejected request (4xx) changed nothing, so it
        is safe to send again. A timeout or 5xx is never repeated.
        """
        try:
            return self._call(method, path, json=body)
        except BackendUnavailable:
            raise
        except BackendError:
            if not self._label_taken(body["label"]):
                raise

        body = {**body, "label": _with_suffix(body["label"])}
        return self._call(method, path, json=body)

    def _label_taken(self, label: str) -> bool:
        return any(True for _ in self._paginate("/linode/instances", filters={"label": label}))

    def _region(self) -> str:
        region = self.settings.get("region")
        if not region:
            raise BackendError(f"region {self.region_id} has no Linode region id. Set the `region` setting.")
        return str(region)


# Translation helpers.


def linode_label(name: str) -> str:
    """Return `name` as a valid Linode label: 3-64 characters, starting with a letter,
    then letters, digits, dashes, underscores or dots, never two of -, _ or . in a row."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    cleaned = re.sub(r"([-_.])[-_.]+", r"\1", cleaned).strip("-_.")
    if not cleaned[:1].isalpha():
        cleaned = f"vm-{cleaned}".rstrip("-_.")
    return cleaned[:LABEL_MAX].rstrip("-_.").ljust(LABEL_MIN, "0")


def image_label(name: str) -> str:
    return name.strip()[:IMAGE_LABEL_MAX] or "snapshot"


def _login_details(password: str) -> str:
    return f"username: root; password: {password}"


def _with_suffix(label: str) -> str:
    suffix = secrets.token_hex(LABEL_SUFFIX_BYTES)
    return f"{label[: LABEL_MAX - len(suffix) - 1]}-{suffix}"


def _generate_password() -> str:
    # Linode rejects weak root passwords, so the password has 32 characters from four classes.
    alphabet = string.ascii_letters + string.digits + "-_.!@#%^"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(ROOT_PASSWORD_LENGTH))
        classes = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
        if all(any(test(c) for c in password) for test in classes):
            return password


def _instance_addresses(instance: Mapping[str, Any]) -> list[Address]:
    addresses = [
        Address(ip=ip, version=4, private=ipaddress.ip_address(ip) in PRIVATE_IPV4_NETWORK)
        for ip in instance.get("ipv4") or []
    ]
    ipv6 = instance.get("ipv6")
    if ipv6:
        addresses.append(Address(ip=ipv6.split("/")[0], version=6))
    return addresses


def _address(entry: Mapping[str, Any], *, private: bool) -> Address:
    ip = entry["address"]
    return Address(ip=ip, version=ipaddress.ip_address(ip).version, private=private, reverse_dns=entry.get("rdns"))


def _image_info(image: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        backend_id=str(image["id"]),
        name=image.get("label") or "",
        state=IMAGE_STATE_MAP.get(image.get("status", ""), ImageState.ERROR),
        # Linode's "MB" here are mebibytes, as in disk sizes.
        size_bytes=int(image.get("size") or 0) * BYTES_PER_MIB,
    )


def _parse_time(value: str | None) -> datetime | None:
    # Linode timestamps are UTC without a zone suffix, such as "2018-01-01T00:01:01".
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    read = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    return (min(float(CONNECT_TIMEOUT_SECONDS), read), read)


def _describe_error(response: requests.Response) -> str:
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return ""
    return "; ".join(
        f"{e['field']}: {e.get('reason', '')}" if e.get("field") else str(e.get("reason", "")) for e in errors
    )


def _check_image_id(image_backend_id: str) -> None:
    # Image ids contain a slash and go into the URL path, so they are checked first.
    if not re.fullmatch(r"(private|linode)/[A-Za-z0-9._-]+", image_backend_id):
        raise InvalidRequest(f"{image_backend_id!r} is not a Linode image id such as private/123", field="image")
