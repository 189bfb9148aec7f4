"""The SolusVM backend: drives a SolusVM 1 master through its admin API.

Every call is a form POST of `id`, `key` and `action` to command.php. The reply is a
run of XML elements without a root element. A reply of `<status>error</status>` becomes
a BackendError with the `<statusmsg>` text, or NotFound when the server is unknown.
Backend ids are SolusVM `vserverid`s.
"""

from __future__ import annotations

import html
import ipaddress
import re
import secrets
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

import requests

from chalicelib.backends.base import (
    ActionDescriptor,
    Address,
    Backend,
    CreatedVm,
    ImageInfo,
    ImageState,
    VmInfo,
    VmSpec,
    VmState,
)
from chalicelib.errors import BackendError, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

DEFAULT_VIRTUALIZATION_TYPE = "kvm"
VIRTUALIZATION_TYPES = frozenset({"openvz", "xen", "xen hvm", "kvm"})
DEFAULT_USERNAME_PREFIX = "lobster"

# SolusVM rejects very short hostnames, so a name shorter than this gets a suffix.
MIN_HOSTNAME_LENGTH = 4
SHORT_HOSTNAME_SUFFIX = ".localdomain"
ROOT_PASSWORD_BYTES = 18

# The `statusmsg` SolusVM returns for a vserverid it does not know.
NOT_FOUND_MESSAGE = re.compile(r"virtual server not found|invalid vserverid|vserver not found", re.IGNORECASE)
CREDENTIALS_MESSAGE = re.compile(r"invalid id or key|invalid ipaddress", re.IGNORECASE)

# Element text in a reply that the XML parser rejects, read as `<name>value</name>`.
_ELEMENT = re.compile(r"<([A-Za-z_][\w.-]*)>(.*?)</\1>", re.DOTALL)
_XML_DECLARATION = re.compile(r"<\?xml[^>]*\?>")

# `vserver-infoall` states; "disabled" is a server an administrator suspended.
STATE_MAP = {
    "online": VmState.RUNNING,
    "offline": VmState.STOPPED,
    "disabled": VmState.STOPPED,
}

TUNTAP_ACTION = "tuntap"


def parse_fragment(text: str) -> dict[str, str]:
    """Parse a SolusVM reply into a dict of element name -> stripped text.

    The reply is a sequence of sibling elements with no root, so it is wrapped in one.
    When that is still not well-formed XML (an unescaped `&`, a PHP notice printed
    before the reply), the `<name>value</name>` pairs are read with a regular expression.
    """
    body = _XML_DECLARATION.sub("", text or "").strip()
    try:
        root = ElementTree.fromstring(f"<root>{body}</root>")
    except ElementTree.ParseError:
        return {name: html.unescape(value).strip() for name, value in _ELEMENT.findall(body)}
    return {child.tag: (child.text or "").strip() for child in root}


def _describe_error(response: requests.Response) -> str:
    return parse_fragment(response.text).get("statusmsg", "")


class SolusVmBackend(Backend):
    """A region on one SolusVM master.

    Settings: `api_url` (the master's admin command.php URL, required), `node_group`,
    `virtualization_type` (openvz, xen, "xen hvm" or kvm), `username_prefix`,
    `timeout_seconds`. Secrets: `api_id`, `api_key`.

    Servers belong to one SolusVM client per region, named `username_prefix` followed by
    the region id's letters and digits; an operator creates that client once. Plan ids
    are SolusVM plan names and image ids are template file names.
    """

    TYPE = "solusvm"
    CAPABILITIES = frozenset({"traffic", "rename", "reimage", "resize", "addresses", "actions", "public_images"})

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets_: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets_)
        api_url = self.settings.get("api_url")
        if not api_url:
            raise InvalidRequest(
                f"region {region_id}: SolusVM needs api_url, the master's admin URL "
                "such as https://master.example.com:5656/api/admin/command.php",
                field="api_url",
            )

        self.virtualization_type = str(self.settings.get("virtualization_type") or DEFAULT_VIRTUALIZATION_TYPE).lower()
        if self.virtualization_type not in VIRTUALIZATION_TYPES:
            known = ", ".join(sorted(VIRTUALIZATION_TYPES))
            raise InvalidRequest(
                f"region {region_id}: virtualization_type {self.virtualization_type!r} is not one of {known}",
                field="virtualization_type",
            )

        self.api_url = str(api_url)
        self.http = HttpClient(
            provider="SolusVM",
            base_url=self.api_url,
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a server with a generated root password, which SolusVM echoes only in this reply."""
        password = secrets.token_urlsafe(ROOT_PASSWORD_BYTES)
        params = {
            "type": self.virtualization_type,
            "hostname": _hostname(spec.name),
            "username": self.client_username,
            "password": password,
            "plan": spec.plan_backend_id,
            "template": spec.image_backend_id,
            "ips": "1",
        }
        node_group = self.settings.get("node_group")
        if node_group:
            params["nodegroup"] = str(node_group)

        reply = self._call("vserver-create", params)

        vserver_id = reply.get("vserverid", "")
        if not vserver_id:
            raise BackendError("SolusVM accepted vserver-create but returned no vserverid")
        logger.info("backend_vm_created", extra={"region_id": self.region_id, "backend_id": vserver_id})
        return CreatedVm(vserver_id, f"username: root; password: {reply.get('rootpassword') or password}")

    def delete_vm(self, backend_id: str) -> None:
        try:
            self._call("vserver-terminate", {"vserverid": backend_id, "deleteclient": "false"})
        except NotFound:
            logger.info("backend_vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})

    def get_vm(self, backend_id: str) -> VmInfo:
        reply = self._info(backend_id)
        state = STATE_MAP.get(reply.get("state", "").lower(), VmState.UNKNOWN)
        details = {key: reply[key] for key in ("node", "location", "type") if reply.get(key)}
        return VmInfo(
            backend_id=backend_id,
            state=state,
            addresses=tuple(_addresses(reply)),
            hostname=reply.get("hostname") or None,
            details=details,
        )

    def start_vm(self, backend_id: str) -> None:
        self._call("vserver-boot", {"vserverid": backend_id})

    def stop_vm(self, backend_id: str) -> None:
        self._call("vserver-shutdown", {"vserverid": backend_id})

    def reboot_vm(self, backend_id: str) -> None:
        self._call("vserver-reboot", {"vserverid": backend_id})

    # Optional capabilities.

    def read_traffic(self, backend_id: str) -> int:
        """Return the used figure of `bandwidth` ("total,used,free,percent", in bytes)."""
        reply = self._info(backend_id)
        fields = [part.strip() for part in reply.get("bandwidth", "").split(",")]
        if len(fields) < 2 or not fields[1].isdigit():
            raise BackendError(f"SolusVM returned no readable bandwidth counter for server {backend_id}")
        return int(fields[1])

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._call("vserver-hostname", {"vserverid": backend_id, "hostname": _hostname(name)})

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Rebuild the server from a template. vserver-rebuild takes no SSH key and reports no
        password, so the key is not sent and None is returned."""
        self._call("vserver-rebuild", {"vserverid": backend_id, "template": image_backend_id})
        return None

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        self._call("vserver-change", {"vserverid": backend_id, "plan": plan_backend_id})

    def list_addresses(self, backend_id: str) -> list[Address]:
        return _addresses(self._info(backend_id))

    def list_actions(self, backend_id: str) -> list[ActionDescriptor]:
        if self.virtualization_type != "openvz":
            return []
        return [
            ActionDescriptor(
                action=TUNTAP_ACTION,
                label="TUN/TAP",
                description="Turn the TUN/TAP device of the container on or off.",
                options={"enable": "On", "disable": "Off"},
            )
        ]

    def run_action(self, backend_id: str, action: str, value: str | None = None) -> None:
        if action != TUNTAP_ACTION or self.virtualization_type != "openvz":
            raise InvalidRequest(f"action {action!r} is not available on this server", field="action")
        if value not in ("enable", "disable"):
            raise InvalidRequest("the TUN/TAP action takes the value 'enable' or 'disable'", field="value")
        self._call(f"vserver-tun-{value}", {"vserverid": backend_id})

    def list_public_images(self) -> list[ImageInfo]:
        """List the master's templates for the region's virtualization type, by file name."""
        return [ImageInfo(backend_id=name, name=name, state=ImageState.ACTIVE) for name in self.list_template_names()]

    # Lists for operators; SolusVM returns names only, without sizes.

    def list_plan_names(self) -> list[str]:
        """Return the names of the plans SolusVM has for the region's virtualization type."""
        reply = self._call("listplans", {"type": self.virtualization_type}, idempotent=True)
        return _names(reply.get("plans", ""))

    def list_template_names(self) -> list[str]:
        """Return the template file names for the region's virtualization type."""
        reply = self._call("listtemplates", {"type": self.virtualization_type}, idempotent=True)
        key = {"kvm": "templateskvm", "xen hvm": "templateshvm"}.get(self.virtualization_type, "templates")
        return _names(reply.get(key) or reply.get("templates", ""))

    # Helpers.

    @property
    def client_username(self) -> str:
        prefix = str(self.settings.get("username_prefix") or DEFAULT_USERNAME_PREFIX)
        return prefix + re.sub(r"[^A-Za-z0-9]", "", self.region_id)

    def _info(self, backend_id: str) -> dict[str, str]:
        return self._call("vserver-infoall", {"vserverid": backend_id, "nographs": "true"}, idempotent=True)

    def _call(self, action: str, params: Mapping[str, str], *, idempotent: bool = False) -> dict[str, str]:
        """POST one admin API action and return the parsed reply, or raise its error."""
        form = {
            **params,
            "id": self.secrets.get("api_id", ""),
            "key": self.secrets.get("api_key", ""),
            "action": action,
        }
        try:
            response = self.http.request("POST", self.api_url, data=form, idempotent=idempotent)
        except NotFound as exc:
            # An HTTP 404 means a wrong api_url, never an unknown server: SolusVM reports
            # those in the reply body. Passing it on as NotFound would let delete_vm
            # count a running server as deleted.
            raise BackendError(f"SolusVM returned HTTP 404 for {action}; check the region's api_url") from exc
        assert response is not None  # not_found_ok is not set, so a 404 raises

        reply = parse_fragment(response.text)
        if reply.get("status") == "success":
            return reply
        raise self._error_for(action, params, reply)

    def _error_for(self, action: str, params: Mapping[str, str], reply: Mapping[str, str]) -> Exception:
        message = reply.get("statusmsg") or "no status message"
        if not reply.get("status"):
            return BackendError(f"SolusVM returned a reply to {action} without a status element")
        if CREDENTIALS_MESSAGE.search(message):
            return BackendError(f"SolusVM rejected the region's API credentials: {message}")
        if NOT_FOUND_MESSAGE.search(message):
            return NotFound(f"SolusVM has no server {params.get('vserverid', '')}: {message}")
        return BackendError(f"SolusVM rejected {action}: {message}")


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    read = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    return (min(CONNECT_TIMEOUT_SECONDS, read), read)


def _hostname(name: str) -> str:
    return name if len(name) >= MIN_HOSTNAME_LENGTH else name + SHORT_HOSTNAME_SUFFIX


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _addresses(reply: Mapping[str, str]) -> list[Address]:
    """Read `mainipaddress`, `ipaddresses` and `internalips`, main address first."""
    public = [reply.get("mainipaddress", "")] + reply.get("ipaddresses", "").split(",")
    private = reply.get("internalips", "").split(",")

    addresses: list[Address] = []
    seen: set[str] = set()
    for text, is_private in [(item, False) for item in public] + [(item, True) for item in private]:
        ip = text.strip()
        if not ip or ip in seen:
            continue
        try:
            version = ipaddress.ip_address(ip).version
        except ValueError:
            continue
        seen.add(ip)
        addresses.append(Address(ip=ip, version=version, private=is_private))
    return addresses
