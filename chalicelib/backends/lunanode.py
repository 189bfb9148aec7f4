"""The LunaNode backend: drives LunaNode's signed API (dynamic.lunanode.com/api).

Each call POSTs the form fields `handler`, `req`, `nonce` and `signature`. `req` is the
JSON parameters plus `api_id` and `api_partialkey` (the first 64 characters of the key).
The nonce is the current Unix time in seconds. The signature is the hex HMAC-SHA512 of
"handler|req|nonce" keyed with the whole API key. A reply whose `success` is not "yes"
carries the reason in `error`. Backend ids are LunaNode vm_ids.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
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
from chalicelib.errors import BackendError, InvalidRequest, LobsterError, NotFound
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

DEFAULT_API_URL = "https://dynamic.lunanode.com/api/"
DEFAULT_REGION = "toronto"

# Key sizes LunaNode issues; its own client libraries reject anything else.
API_ID_LENGTH = 16
API_KEY_LENGTH = 128
PARTIAL_KEY_LENGTH = 64

# vm/info reports `bandwidthUsedGB` as decimal text. LunaNode's own Go client (cloug)
# multiplies it by 1024^3, so it is read as GiB.
BYTES_PER_REPORTED_GB = 1 << 30

# LunaNode's error text for unknown ids is not documented; these are the phrasings
# read as "not found".
# NOTE: if LunaNode words it otherwise, delete_vm of a gone VM raises BackendError
# instead of succeeding, which keeps the VM marked for a retry rather than losing it.
NOT_FOUND_ERROR = re.compile(
    r"not found|does not exist|no such|invalid (?:vm|virtual machine|image)(?: id)?\b", re.IGNORECASE
)

# `status_nohtml` values of vm/info, lower-cased.
STATE_MAP = {
    "online": VmState.RUNNING,
    "active": VmState.RUNNING,
    "rebooting": VmState.RUNNING,
    "offline": VmState.STOPPED,
    "stopped": VmState.STOPPED,
    "shutoff": VmState.STOPPED,
    "build": VmState.PROVISIONING,
    "building": VmState.PROVISIONING,
    "error": VmState.ERROR,
    "deleted": VmState.DELETED,
}

IMAGE_STATE_MAP = {"active": ImageState.ACTIVE, "error": ImageState.ERROR, "killed": ImageState.ERROR}

SSH_KEY_LABEL_BYTES = 6


class LunaNodeBackend(Backend):
    """A region on one LunaNode region.

    Settings: `api_url` (default LunaNode's), `region` (a LunaNode region such as
    "toronto"), `timeout_seconds`. Secrets: `api_id`, `api_key`. Plan ids are LunaNode
    plan ids ("m.2" or a number) and image ids are LunaNode image ids.
    """

    TYPE = "lunanode"
    CAPABILITIES = frozenset(
        {
            "traffic",
            "console",
            "rename",
            "reimage",
            "snapshot",
            "resize",
            "addresses",
            "reverse_dns",
            "image_fetch",
            "images",
            "plans",
        }
    )

    def __init__(
        self,
        region_id: str,
        settings: Mapping[str, Any],
        secrets_: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(region_id, settings, secrets_)
        self.clock = clock
        self.api_url = str(self.settings.get("api_url") or DEFAULT_API_URL).rstrip("/") + "/"
        self.region = str(self.settings.get("region") or DEFAULT_REGION)
        self.http = HttpClient(
            provider="LunaNode",
            base_url=self.api_url,
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a VM. vm/create reports no login details, so `get_vm` reads them from vm/info."""
        params = {
            "hostname": spec.name,
            "plan_id": spec.plan_backend_id,
            "image_id": spec.image_backend_id,
            "region": self.region,
        }
        key_id = self._add_ssh_key(spec) if spec.ssh_public_key else None
        if key_id:
            params["key_id"] = key_id

        try:
            reply = self._call("vm", "create", params)
        finally:
            if key_id:
                self._remove_ssh_key(key_id)

        vm_id = str(reply.get("vm_id") or "")
        if not vm_id:
            raise BackendError("LunaNode accepted vm/create but returned no vm_id")
        logger.info("backend_vm_created", extra={"region_id": self.region_id, "backend_id": vm_id})
        return CreatedVm(vm_id)

    def delete_vm(self, backend_id: str) -> None:
        try:
            self._call("vm", "delete", {"vm_id": backend_id})
        except NotFound:
            logger.info("backend_vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})

    def get_vm(self, backend_id: str) -> VmInfo:
        reply = self._vm_info(backend_id)
        info = reply.get("info") or {}
        extra = reply.get("extra") or {}

        status = str(info.get("status_nohtml") or "").strip().lower()
        details = {key: str(extra[key]) for key in ("region", "plan_id") if extra.get(key)}
        return VmInfo(
            backend_id=backend_id,
            state=STATE_MAP.get(status, VmState.UNKNOWN),
            addresses=tuple(_addresses(info)),
            hostname=str(info.get("hostname") or extra.get("hostname") or "") or None,
            login_details=str(info.get("login_details") or "") or None,
            details=details,
        )

    def start_vm(self, backend_id: str) -> None:
        self._call("vm", "start", {"vm_id": backend_id})

    def stop_vm(self, backend_id: str) -> None:
        self._call("vm", "stop", {"vm_id": backend_id})

    def reboot_vm(self, backend_id: str) -> None:
        self._call("vm", "reboot", {"vm_id": backend_id})

    # Optional capabilities.

    def read_traffic(self, backend_id: str) -> int:
        """Return vm/info's `bandwidthUsedGB` in bytes (read as GiB, see BYTES_PER_REPORTED_GB)."""
        info = self._vm_info(backend_id).get("info") or {}
        text = str(info.get("bandwidthUsedGB", "")).strip()
        try:
            used = Decimal(text)
        except InvalidOperation as exc:
            raise BackendError(f"LunaNode returned no readable traffic counter for VM {backend_id}") from exc
        if not used.is_finite() or used < 0:
            raise BackendError(f"LunaNode returned an invalid traffic counter {text!r} for VM {backend_id}")
        return int((used * BYTES_PER_REPORTED_GB).to_integral_value())

    def get_console_url(self, backend_id: str) -> str:
        reply = self._call("vm", "vnc", {"vm_id": backend_id})
        url = str(reply.get("vnc_url") or "")
        if not url.startswith(("https://", "http://")):
            raise BackendError("LunaNode returned no console URL")
        return url

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._call("vm", "rename", {"vm_id": backend_id, "hostname": name})

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Reinstall the VM from an image. vm/reimage takes no SSH key, and vm/info reports the
        login details afterwards, so the key is not sent and None is returned."""
        self._call("vm", "reimage", {"vm_id": backend_id, "image_id": image_backend_id})
        return None

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        reply = self._call("vm", "snapshot", {"vm_id": backend_id, "name": name})
        image_id = str(reply.get("image_id") or "")
        if not image_id:
            raise BackendError("LunaNode accepted vm/snapshot but returned no image_id")
        return image_id

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        self._call("vm", "resize", {"vm_id": backend_id, "plan_id": plan_backend_id})

    def list_addresses(self, backend_id: str) -> list[Address]:
        return _addresses(self._vm_info(backend_id).get("info") or {})

    def set_reverse_dns(self, backend_id: str, ip: str, hostname: str) -> None:
        # dns/set acts on any address of the LunaNode account, so check that the address
        # belongs to this VM before changing it.
        owned = {address.ip for address in self.list_addresses(backend_id) if not address.private}
        if ip not in owned:
            raise InvalidRequest(f"{ip} is not a public address of this VM", field="ip")
        self._call("dns", "set", {"ip": ip, "hostname": hostname})

    def fetch_image(self, url: str, name: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise InvalidRequest("the image URL must start with http:// or https://", field="url")
        image_format = "iso" if url.lower().split("?", 1)[0].endswith(".iso") else "qcow2"
        params = {"region": self.region, "name": name, "location": url, "format": image_format}

        reply = self._call("image", "fetch", params)

        image_id = str(reply.get("image_id") or "")
        if not image_id:
            raise BackendError("LunaNode accepted image/fetch but returned no image_id")
        return image_id

    def get_image(self, image_backend_id: str) -> ImageInfo:
        reply = self._call("image", "details", {"image_id": image_backend_id}, read=True)
        return _image(reply.get("details") or {}, image_backend_id)

    def list_images(self) -> list[ImageInfo]:
        reply = self._call("image", "list", {"region": self.region}, read=True)
        return [_image(item, str(item.get("image_id", ""))) for item in reply.get("images") or []]

    def delete_image(self, image_backend_id: str) -> None:
        try:
            self._call("image", "delete", {"image_id": image_backend_id})
        except NotFound:
            logger.info(
                "backend_image_already_deleted", extra={"region_id": self.region_id, "image_id": image_backend_id}
            )

    def list_plans(self) -> list[PlanOffer]:
        reply = self._call("plan", "list", {}, read=True)
        return [_plan(item) for item in reply.get("plans") or []]

    # Signed calls.

    def _vm_info(self, backend_id: str) -> dict[str, Any]:
        return self._call("vm", "info", {"vm_id": backend_id}, read=True)

    def _call(self, category: str, action: str, params: Mapping[str, str], *, read: bool = False) -> dict[str, Any]:
        """Sign and POST one API call; return the reply or raise its error.

        Reads are marked idempotent, so HttpClient retries them on 5xx with the same
        nonce, which LunaNode accepts because the nonce is a time in seconds.
        """
        handler = f"{category}/{action}/"
        form = self.sign(handler, params)

        try:
            response = self.http.request("POST", handler, data=form, idempotent=read)
        except NotFound as exc:
            # LunaNode reports unknown ids in the reply body, so an HTTP 404 means a
            # wrong api_url. Passing it on as NotFound would let delete_vm count a
            # running VM as deleted.
            raise BackendError(f"LunaNode returned HTTP 404 for {handler}; check the region's api_url") from exc
        assert response is not None  # not_found_ok is not set, so a 404 raises

        try:
            reply = response.json()
        except ValueError as exc:
            raise BackendError(f"LunaNode returned a reply to {handler} that is not JSON") from exc
        if not isinstance(reply, dict):
            raise BackendError(f"LunaNode returned a reply to {handler} that is not a JSON object")
        if reply.get("success") == "yes":
            return reply
        raise _error_for(handler, str(reply.get("error") or "no error message"))

    def sign(self, handler: str, params: Mapping[str, str]) -> dict[str, str]:
        """Return the form fields of a signed request for `handler` ("vm/info/")."""
        api_id = self.secrets.get("api_id", "")
        api_key = self.secrets.get("api_key", "")
        if len(api_id) != API_ID_LENGTH or len(api_key) != API_KEY_LENGTH:
            raise BackendError(
                f"region {self.region_id}: the LunaNode api_id must have {API_ID_LENGTH} characters "
                f"and the api_key {API_KEY_LENGTH}; check the region's secret"
            )

        request_map = {**{key: str(value) for key, value in params.items()}, "api_id": api_id}
        request_map["api_partialkey"] = api_key[:PARTIAL_KEY_LENGTH]
        raw_request = json.dumps(request_map)
        nonce = str(int(self.clock()))
        message = f"{handler}|{raw_request}|{nonce}".encode()
        signature = hmac.new(api_key.encode(), message, hashlib.sha512).hexdigest()
        return {"handler": handler, "req": raw_request, "nonce": nonce, "signature": signature}

    # SSH keys: LunaNode takes key ids at vm/create, so the customer's key is stored
    # for the create call and removed afterwards. The VM keeps its copy.

    def _add_ssh_key(self, spec: VmSpec) -> str:
        label = f"lobster-{spec.name}-{secrets.token_hex(SSH_KEY_LABEL_BYTES)}"
        self._call("sshkey", "add", {"label": label, "sshkey": str(spec.ssh_public_key)})

        # NOTE: sshkey/add's reply is not documented, so the new key is found by its label
        # in sshkey/list. Its field names are guessed: "id" or "key_id", "name" or "label".
        reply = self._call("sshkey", "list", {}, read=True)
        for key in reply.get("sshkeys") or []:
            key_id = str(key.get("id") or key.get("key_id") or "")
            if key_id and str(key.get("name") or key.get("label") or "") == label:
                return key_id
        raise BackendError("LunaNode accepted sshkey/add but sshkey/list has no key with its label and an id")

    def _remove_ssh_key(self, key_id: str) -> None:
        try:
            self._call("sshkey", "remove", {"key_id": key_id})
        except BackendError as exc:
            logger.warning(
                "backend_ssh_key_not_removed",
                extra={"region_id": self.region_id, "key_id": key_id, "error": exc.message},
            )


def _describe_error(response: requests.Response) -> str:
    reply = response.json()
    return str(reply.get("error") or "") if isinstance(reply, dict) else ""


def _error_for(handler: str, message: str) -> LobsterError:
    if NOT_FOUND_ERROR.search(message):
        return NotFound(f"LunaNode {handler}: {message}")
    return BackendError(f"LunaNode rejected {handler}: {message}")


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    read = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    return (min(CONNECT_TIMEOUT_SECONDS, read), read)


def _addresses(info: Mapping[str, Any]) -> list[Address]:
    """Read vm/info's `addresses` list, falling back to its `ip` and `privateip` fields."""
    entries = [
        (str(item.get("addr") or ""), str(item.get("external")) in ("1", "True", "true", "yes"), item.get("reverse"))
        for item in info.get("addresses") or []
        if isinstance(item, Mapping)
    ]
    if not entries:
        entries = [(str(info.get("ip") or ""), True, None), (str(info.get("privateip") or ""), False, None)]

    addresses: list[Address] = []
    seen: set[str] = set()
    for ip, external, reverse in entries:
        if not ip or ip in seen:
            continue
        try:
            version = ipaddress.ip_address(ip).version
        except ValueError:
            continue
        seen.add(ip)
        addresses.append(Address(ip=ip, version=version, private=not external, reverse_dns=reverse or None))
    return addresses


def _image(item: Mapping[str, Any], image_id: str) -> ImageInfo:
    status = str(item.get("status") or "").lower()
    size = str(item.get("size") or "0")
    # NOTE: LunaNode does not document the unit of `size`; it is read as bytes.
    return ImageInfo(
        backend_id=image_id,
        name=str(item.get("name") or ""),
        state=IMAGE_STATE_MAP.get(status, ImageState.PENDING),
        size_bytes=int(size) if size.isdigit() else 0,
    )


def _plan(item: Mapping[str, Any]) -> PlanOffer:
    """Map a plan/list entry: `ram` in MB, `storage` in GB, `bandwidth` in GB a month."""

    def number(key: str) -> int:
        try:
            return int(Decimal(str(item.get(key) or "0")))
        except InvalidOperation:
            return 0

    return PlanOffer(
        backend_id=str(item.get("plan_id") or ""),
        name=str(item.get("name") or ""),
        ram_mb=number("ram"),
        vcpus=number("vcpu"),
        disk_gb=number("storage"),
        bandwidth_gib=number("bandwidth"),
    )
