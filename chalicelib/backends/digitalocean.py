"""DigitalOcean droplets through the public API v2, authenticated with a bearer token.

Power, rename, rebuild, resize and snapshot are droplet actions that DigitalOcean runs
asynchronously. A snapshot's image id exists only once its action completes, so until
then the snapshot's backend id is a pending reference that `get_image` resolves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import string
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
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
from chalicelib.clock import parse_iso
from chalicelib.errors import BackendError, BackendUnavailable, Conflict, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

PROVIDER = "DigitalOcean"
DEFAULT_API_URL = "https://api.digitalocean.com"
# DigitalOcean caps `per_page` at 200. MAX_PAGES stops a list call whose `links` never end.
PAGE_SIZE = 200
MAX_PAGES = 100
# Waiting for an action (the power-off before a resize) must fit in an API request.
ACTION_TIMEOUT_SECONDS = 25.0
ACTION_POLL_SECONDS = 2.0
ROOT_PASSWORD_LENGTH = 24
DROPLET_NAME_MAX = 255
DROPLET_TAG = "lobster"
BYTES_PER_GB = 10**9
BYTES_PER_GIB = 1 << 30
BYTES_PER_TB = 10**12
# Backend id of a snapshot whose action has not finished: action:<droplet>:<action>:<name>.
PENDING_SNAPSHOT_PREFIX = "action:"

STATE_MAP = {
    "new": VmState.PROVISIONING,
    "active": VmState.RUNNING,
    "off": VmState.STOPPED,
    "archive": VmState.UNKNOWN,
}
IMAGE_STATE_MAP = {
    "NEW": ImageState.PENDING,
    "pending": ImageState.PENDING,
    "available": ImageState.ACTIVE,
}


class DigitalOceanBackend(Backend):
    """A region backed by one DigitalOcean account and one DigitalOcean region.

    Settings: `region` (a region slug such as "nyc3", required), `api_url`,
    `timeout_seconds`, `action_timeout_seconds`, `action_poll_seconds`.
    Secrets: `token` (a personal access token with droplet, image and SSH key scopes).

    NOTE: "traffic" is not declared. The v2 API has no per-droplet byte counter: the
    monitoring endpoint /v2/monitoring/metrics/droplet/bandwidth returns sampled rates
    in Mbps, and only for droplets that run the metrics agent, so summing them would
    give an estimate, not the counter billing needs.
    NOTE: "reverse_dns" is not declared. DigitalOcean sets the PTR record of a
    droplet's addresses from the droplet name when it is a fully qualified domain name,
    so users get reverse DNS by renaming the VM. A record per address cannot be set.
    """

    TYPE = "digitalocean"
    CAPABILITIES = frozenset(
        {"rename", "reimage", "snapshot", "resize", "addresses", "image_fetch", "images", "public_images", "plans"}
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
        self.action_timeout_seconds = float(self.settings.get("action_timeout_seconds") or ACTION_TIMEOUT_SECONDS)
        self.action_poll_seconds = float(self.settings.get("action_poll_seconds") or ACTION_POLL_SECONDS)

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a droplet whose cloud-init sets a generated root password.

        DigitalOcean never returns that password, so it exists only in the result.
        """
        password = _generate_password()
        body: dict[str, Any] = {
            "name": droplet_name(spec.name),
            "region": self._region_slug(),
            "size": spec.plan_backend_id,
            "image": _image_reference(spec.image_backend_id),
            "user_data": _cloud_config(password, allow_password_ssh=not spec.ssh_public_key),
            "tags": [DROPLET_TAG],
        }
        if spec.ssh_public_key:
            body["ssh_keys"] = [ssh_key_fingerprint(spec.ssh_public_key)]

        droplet = self._create_droplet(body, spec.ssh_public_key)

        backend_id = str(droplet["id"])
        logger.info("vm_created", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})
        return CreatedVm(backend_id, f"username: root; password: {password}")

    def delete_vm(self, backend_id: str) -> None:
        self._call("DELETE", f"/v2/droplets/{backend_id}", idempotent=True, not_found_ok=True)
        logger.info("vm_deleted", extra={"region_id": self.region_id, "backend_id": backend_id, "provider": self.TYPE})

    def get_vm(self, backend_id: str) -> VmInfo:
        droplet = self._call("GET", f"/v2/droplets/{backend_id}")["droplet"]
        status = droplet.get("status", "")
        return VmInfo(
            backend_id=backend_id,
            state=STATE_MAP.get(status, VmState.UNKNOWN),
            addresses=tuple(_droplet_addresses(droplet)),
            created_at=_parse_time(droplet.get("created_at")),
            hostname=droplet.get("name"),
            details={
                "status": status,
                "size": droplet.get("size_slug") or "",
                "region": (droplet.get("region") or {}).get("slug", ""),
                "locked": "yes" if droplet.get("locked") else "no",
            },
        )

    def start_vm(self, backend_id: str) -> None:
        self._post_action(backend_id, {"type": "power_on"})

    def stop_vm(self, backend_id: str) -> None:
        # A hard power-off: suspension must stop the droplet even if its OS ignores ACPI.
        self._post_action(backend_id, {"type": "power_off"})

    def reboot_vm(self, backend_id: str) -> None:
        self._post_action(backend_id, {"type": "reboot"})

    # Optional capabilities.

    def rename_vm(self, backend_id: str, name: str) -> None:
        # A rename finishes in seconds, and waiting lets the caller read the new name back.
        action = self._post_action(backend_id, {"type": "rename", "name": droplet_name(name)})
        self._wait_for_action(action)

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Rebuild the droplet from an image.

        The rebuild action takes only an image, and a droplet's user data cannot change,
        so `ssh_public_key` is not sent. NOTE: DigitalOcean does not document whether the
        user data from creation (the root password and the SSH keys) is applied again to
        the new disk. This returns None on the assumption that it is.
        """
        self._post_action(backend_id, {"type": "rebuild", "image": _image_reference(image_backend_id)})
        return None

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        """Resize to another size slug, growing the disk too (so it cannot shrink later).

        DigitalOcean resizes only powered-off droplets, so a running droplet is powered
        off first. It stays off after the resize until the user starts it.
        """
        droplet = self._call("GET", f"/v2/droplets/{backend_id}")["droplet"]
        if droplet.get("status") != "off":
            power_off = self._post_action(backend_id, {"type": "power_off"})
            self._wait_for_action(power_off)

        self._post_action(backend_id, {"type": "resize", "size": plan_backend_id, "disk": True})
        logger.info(
            "vm_resize_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "plan_backend_id": plan_backend_id},
        )

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        action = self._post_action(backend_id, {"type": "snapshot", "name": name})
        return f"{PENDING_SNAPSHOT_PREFIX}{backend_id}:{action['id']}:{name}"

    def list_addresses(self, backend_id: str) -> list[Address]:
        droplet = self._call("GET", f"/v2/droplets/{backend_id}")["droplet"]
        return _droplet_addresses(droplet)

    def fetch_image(self, url: str, name: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"image URL {url!r} must start with http:// or https://", field="url")
        body = {"name": name, "url": url, "region": self._region_slug(), "distribution": "Unknown"}

        image = self._call("POST", "/v2/images", json=body)["image"]

        image_id = str(image["id"])
        logger.info("image_fetch_started", extra={"region_id": self.region_id, "image_backend_id": image_id})
        return image_id

    def get_image(self, image_backend_id: str) -> ImageInfo:
        if image_backend_id.startswith(PENDING_SNAPSHOT_PREFIX):
            return self._resolve_snapshot(image_backend_id)
        image = self._call("GET", f"/v2/images/{image_backend_id}")["image"]
        return _image_info(image)

    def list_images(self) -> list[ImageInfo]:
        return [_image_info(image) for image in self._paginate("/v2/images", "images", {"private": "true"})]

    def delete_image(self, image_backend_id: str) -> None:
        if image_backend_id.startswith(PENDING_SNAPSHOT_PREFIX):
            info = self._resolve_snapshot(image_backend_id)
            if info.state == ImageState.PENDING:
                raise Conflict(
                    "the snapshot is still in progress, so it cannot be deleted yet; try again once it has finished"
                )
            if info.state == ImageState.ERROR:
                return
            image_backend_id = info.backend_id

        self._call("DELETE", f"/v2/images/{image_backend_id}", idempotent=True, not_found_ok=True)
        logger.info("image_deleted", extra={"region_id": self.region_id, "image_backend_id": image_backend_id})

    def list_public_images(self) -> list[ImageInfo]:
        """List the distribution images offered in the region, by slug."""
        region = self._region_slug()
        return [
            ImageInfo(
                backend_id=str(image.get("slug") or image["id"]),
                name=image.get("name") or "",
                state=IMAGE_STATE_MAP.get(image.get("status", ""), ImageState.ERROR),
                size_bytes=_gigabytes_to_bytes(image.get("size_gigabytes")),
            )
            for image in self._paginate("/v2/images", "images", {"type": "distribution"})
            if region in image.get("regions", [])
        ]

    def list_plans(self) -> list[PlanOffer]:
        region = self._region_slug()
        return [
            PlanOffer(
                backend_id=size["slug"],
                name=size.get("description") or size["slug"],
                ram_mb=int(size["memory"]),
                vcpus=int(size["vcpus"]),
                disk_gb=int(size["disk"]),
                bandwidth_gib=int(Decimal(str(size.get("transfer") or 0)) * BYTES_PER_TB // BYTES_PER_GIB),
            )
            for size in self._paginate("/v2/sizes", "sizes")
            if size.get("available", True) and region in size.get("regions", [])
        ]

    # Requests.

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.secrets.get("token"):
            raise BackendError(f"region {self.region_id} has no DigitalOcean API token. Set the `token` secret.")
        return self.http.json(method, path, **kwargs)

    def _paginate(self, path: str, key: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield every item of a list call, following DigitalOcean's page numbers.

        The `links.pages.next` URL only signals that another page exists. Each request
        is built from `api_url`, so the token never goes to a host named in a response.
        """
        for page in range(1, MAX_PAGES + 1):
            query = {**(params or {}), "page": str(page), "per_page": str(PAGE_SIZE)}
            body = self._call("GET", path, params=query)
            yield from body.get(key, [])
            if not ((body.get("links") or {}).get("pages") or {}).get("next"):
                return
        raise BackendError(f"{PROVIDER} returned more than {MAX_PAGES} pages for {path}")

    def _post_action(self, backend_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v2/droplets/{backend_id}/actions", json=body)["action"]

    def _wait_for_action(self, action: dict[str, Any]) -> None:
        """Poll an action until it completes, and raise if it fails or outlasts the timeout."""
        deadline = time.monotonic() + self.action_timeout_seconds
        while action.get("status") == "in-progress":
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"{PROVIDER} did not finish {action.get('type')} within {self.action_timeout_seconds:g} seconds."
                    " Try again shortly."
                )
            time.sleep(self.action_poll_seconds)
            action = self._call("GET", f"/v2/actions/{action['id']}")["action"]

        if action.get("status") != "completed":
            raise BackendError(f"{PROVIDER} could not {action.get('type')} droplet {action.get('resource_id')}")

    def _region_slug(self) -> str:
        region = self.settings.get("region")
        if not region:
            raise BackendError(f"region {self.region_id} has no DigitalOcean region slug. Set the `region` setting.")
        return str(region)

    # Droplet creation with SSH keys, and snapshots.

    def _create_droplet(self, body: dict[str, Any], public_key: str | None) -> dict[str, Any]:
        """Create the droplet, adding the SSH key to the account first if it is missing.

        The key is looked up only after DigitalOcean rejected the create, so the usual
        create is one request. A rejected create (4xx) made no droplet, so it is safe to
        send again. A timeout or 5xx is never repeated.
        """
        try:
            return self._call("POST", "/v2/droplets", json=body)["droplet"]
        except BackendUnavailable:
            raise
        except BackendError:
            if not public_key or self._has_ssh_key(body["ssh_keys"][0]):
                raise

        self._add_ssh_key(public_key)
        return self._call("POST", "/v2/droplets", json=body)["droplet"]

    def _add_ssh_key(self, public_key: str) -> None:
        fingerprint = ssh_key_fingerprint(public_key)
        body = {"name": f"lobster-{fingerprint.replace(':', '')[:12]}", "public_key": public_key.strip()}
        try:
            self._call("POST", "/v2/account/keys", json=body)
        except BackendUnavailable:
            raise
        except BackendError:
            # Another request may have added the same key since the lookup.
            if not self._has_ssh_key(fingerprint):
                raise
        logger.info("ssh_key_added", extra={"region_id": self.region_id, "fingerprint": fingerprint})

    def _has_ssh_key(self, fingerprint: str) -> bool:
        return any(key.get("fingerprint") == fingerprint for key in self._paginate("/v2/account/keys", "ssh_keys"))

    def _resolve_snapshot(self, reference: str) -> ImageInfo:
        """Return the image a snapshot action made, or a pending/error placeholder."""
        try:
            droplet_id, action_id, name = reference[len(PENDING_SNAPSHOT_PREFIX) :].split(":", 2)
        except ValueError as exc:
            raise NotFound(f"image {reference!r} is not a DigitalOcean image id") from exc

        action = self._call("GET", f"/v2/actions/{action_id}")["action"]
        if action.get("status") == "in-progress":
            return ImageInfo(backend_id=reference, name=name, state=ImageState.PENDING)
        if action.get("status") != "completed":
            return ImageInfo(backend_id=reference, name=name, state=ImageState.ERROR)

        started_at = _parse_time(action.get("started_at"))
        for snapshot in self._paginate("/v2/snapshots", "snapshots", {"resource_type": "droplet"}):
            created_at = _parse_time(snapshot.get("created_at"))
            if (
                str(snapshot.get("resource_id")) == droplet_id
                and snapshot.get("name") == name
                and (started_at is None or created_at is None or created_at >= started_at)
            ):
                return ImageInfo(
                    backend_id=str(snapshot["id"]),
                    name=name,
                    state=ImageState.ACTIVE,
                    size_bytes=_gigabytes_to_bytes(snapshot.get("size_gigabytes")),
                )
        raise NotFound(f"{PROVIDER} has no snapshot {name!r} of droplet {droplet_id}")


# Translation helpers.


def droplet_name(name: str) -> str:
    """Return `name` as a valid droplet name (letters, digits, dots and dashes)."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip(".-")[:DROPLET_NAME_MAX].strip(".-")
    return cleaned or "vm"


def ssh_key_fingerprint(public_key: str) -> str:
    """Return the MD5 fingerprint DigitalOcean uses to name an OpenSSH public key."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, binascii.Error) as exc:
        raise InvalidRequest("the SSH public key is not in OpenSSH format", field="ssh_public_key") from exc
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _image_reference(image_backend_id: str) -> str | int:
    # Public images are addressed by slug, private ones by numeric id.
    return int(image_backend_id) if image_backend_id.isdigit() else image_backend_id


def _cloud_config(password: str, *, allow_password_ssh: bool) -> str:
    lines = [
        "#cloud-config",
        "chpasswd:",
        "  expire: false",
        "  users:",
        "    - name: root",
        f"      password: {password}",
        "      type: text",
    ]
    if allow_password_ssh:
        lines.append("ssh_pwauth: true")
    return "\n".join(lines) + "\n"


def _generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(ROOT_PASSWORD_LENGTH))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def _droplet_addresses(droplet: Mapping[str, Any]) -> list[Address]:
    networks = droplet.get("networks") or {}
    addresses = [
        Address(ip=network["ip_address"], version=4, private=network.get("type") == "private")
        for network in networks.get("v4", [])
    ]
    addresses += [
        Address(ip=network["ip_address"], version=6, private=network.get("type") == "private")
        for network in networks.get("v6", [])
    ]
    return addresses


def _image_info(image: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        backend_id=str(image["id"]),
        name=image.get("name") or "",
        state=IMAGE_STATE_MAP.get(image.get("status", ""), ImageState.ERROR),
        size_bytes=_gigabytes_to_bytes(image.get("size_gigabytes")),
    )


def _gigabytes_to_bytes(value: Any) -> int:
    # DigitalOcean reports sizes as decimal gigabytes in a JSON float.
    if value is None:
        return 0
    return int(Decimal(str(value)) * BYTES_PER_GB)


def _parse_time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    read = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    return (min(float(CONNECT_TIMEOUT_SECONDS), read), read)


def _describe_error(response: requests.Response) -> str:
    body = response.json()
    return str(body.get("message") or "") if isinstance(body, dict) else ""
