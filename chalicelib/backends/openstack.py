"""OpenStack backend: Keystone v3 password auth, Nova servers, Glance v2 images, Neutron addresses.

Endpoints come from the token's service catalog, never from settings. Every call carries a
project-scoped token. A token close to its expiry is replaced before use, and a call rejected
with 401 gets one new token and is sent once more.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from chalicelib import clock
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
from chalicelib.errors import BackendError, InvalidRequest
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

# Nova microversion sent on every compute call. 2.6 added remote-consoles, 2.37 made `networks`
# required on create (so "auto" is explicit), 2.45 returns createImage's image_id in the body.
NOVA_MICROVERSION = "2.45"

# Replace a token this long before Keystone's expires_at, so a call never starts with a token
# that lapses in flight.
TOKEN_REFRESH_MARGIN = timedelta(seconds=60)

# Page size for Glance image lists; Glance caps it with its own api_limit_max.
IMAGE_PAGE_SIZE = 100

# Upper bound on pages followed in one list call, so a provider that keeps returning a `next`
# link cannot loop forever.
MAX_PAGES = 100

DEFAULT_DOMAIN = "Default"
DEFAULT_INTERFACE = "public"

# Nova server status -> Lobster state. A server that is rebooting, resizing or migrating keeps
# running, so it counts as RUNNING.
SERVER_STATES: dict[str, VmState] = {
    "ACTIVE": VmState.RUNNING,
    "BUILD": VmState.PROVISIONING,
    "REBUILD": VmState.PROVISIONING,
    "REBOOT": VmState.RUNNING,
    "HARD_REBOOT": VmState.RUNNING,
    "PASSWORD": VmState.RUNNING,
    "RESCUE": VmState.RUNNING,
    "RESIZE": VmState.RUNNING,
    "VERIFY_RESIZE": VmState.RUNNING,
    "REVERT_RESIZE": VmState.RUNNING,
    "MIGRATING": VmState.RUNNING,
    "SHUTOFF": VmState.STOPPED,
    "SUSPENDED": VmState.STOPPED,
    "PAUSED": VmState.STOPPED,
    "SHELVED": VmState.STOPPED,
    "SHELVED_OFFLOADED": VmState.STOPPED,
    "ERROR": VmState.ERROR,
    "DELETED": VmState.DELETED,
    "SOFT_DELETED": VmState.DELETED,
    "UNKNOWN": VmState.UNKNOWN,
}

# Glance image status -> Lobster image state.
IMAGE_STATES: dict[str, ImageState] = {
    "active": ImageState.ACTIVE,
    "queued": ImageState.PENDING,
    "saving": ImageState.PENDING,
    "uploading": ImageState.PENDING,
    "importing": ImageState.PENDING,
    "killed": ImageState.ERROR,
    "deleted": ImageState.ERROR,
    "pending_delete": ImageState.ERROR,
    "deactivated": ImageState.ERROR,
}

# Glance disk_format guessed from the file extension of an imported URL; qcow2 otherwise.
DISK_FORMATS_BY_EXTENSION = {
    ".qcow2": "qcow2",
    ".img": "qcow2",
    ".raw": "raw",
    ".iso": "iso",
    ".vmdk": "vmdk",
    ".vdi": "vdi",
    ".vhd": "vhd",
    ".vhdx": "vhdx",
}

# Address ranges shown to customers as private: RFC 1918, RFC 6598 shared space, loopback,
# link-local and IPv6 unique local addresses.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


@dataclass(frozen=True)
class _Session:
    token: str
    expires_at: datetime
    endpoints: Mapping[str, str]


class OpenStackBackend(Backend):
    """A region on an OpenStack cloud, in one project.

    Settings: `auth_url` (Keystone, with or without /v3), `project`, `domain` (user and project
    domain name, default "Default"), `network_id` (optional; without it the server requests networks "auto", so Nova uses
    the project's only network or allocates one),
    `interface` and `region_name` (catalog endpoint selection), `timeout_seconds`.
    Secrets: `username`, `password`.

    NOTE: no "traffic" capability. Core Nova keeps no cumulative per-server traffic counter.
    Billing traffic would need the Telemetry service (Ceilometer with Gnocchi, meters
    network.incoming.bytes and network.outgoing.bytes per instance port) or Neutron metering
    labels on the router, and the operator would have to guarantee that one of them is deployed.
    """

    TYPE = "openstack"
    CAPABILITIES = frozenset(
        {
            "console",
            "rename",
            "reimage",
            "snapshot",
            "resize",
            "addresses",
            "image_fetch",
            "images",
            "public_images",
            "plans",
        }
    )

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets)
        self.auth_url = _identity_url(_required(self.settings, "auth_url"))
        self.project = _required(self.settings, "project")
        self.domain = str(self.settings.get("domain") or DEFAULT_DOMAIN)
        self.network_id = self.settings.get("network_id") or None
        self.interface = str(self.settings.get("interface") or DEFAULT_INTERFACE)
        self.region_name = self.settings.get("region_name") or None
        for name in ("username", "password"):
            if not self.secrets.get(name):
                raise InvalidRequest(f"region {region_id} is missing the OpenStack secret {name}", field=name)

        self.http = HttpClient(
            provider="openstack",
            base_url=self.auth_url,
            default_headers={"Accept": "application/json"},
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )
        self._session: _Session | None = None
        self._session_lock = threading.Lock()

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a server; customers log in with the SSH key that its user data installs."""
        server: dict[str, Any] = {
            "name": spec.name,
            "imageRef": spec.image_backend_id,
            "flavorRef": spec.plan_backend_id,
            "networks": [{"uuid": self.network_id}] if self.network_id else "auto",
        }
        if spec.ssh_public_key:
            server["user_data"] = _cloud_config_user_data(spec.ssh_public_key)

        body = self._json("compute", "POST", "/servers", json={"server": server})

        backend_id = str((body or {}).get("server", {}).get("id") or "")
        if not backend_id:
            raise BackendError("OpenStack accepted the server but returned no server id")
        logger.info("vm_created", extra={"region_id": self.region_id, "backend_id": backend_id})
        return CreatedVm(backend_id)

    def delete_vm(self, backend_id: str) -> None:
        response = self._send("compute", "DELETE", f"/servers/{backend_id}", idempotent=True, not_found_ok=True)
        if response is None:
            logger.info("vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})
            return
        logger.info("vm_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})

    def get_vm(self, backend_id: str) -> VmInfo:
        """Return the server's state and addresses.

        A server waiting in VERIFY_RESIZE gets its resize confirmed here, because `resize_vm`
        returns before Nova finishes the resize.
        """
        server = self._get_server(backend_id)
        status = str(server.get("status") or "UNKNOWN").upper()
        if status == "VERIFY_RESIZE":
            self._confirm_resize(backend_id)

        return VmInfo(
            backend_id=backend_id,
            state=SERVER_STATES.get(status, VmState.UNKNOWN),
            addresses=tuple(_server_addresses(server)),
            created_at=_parse_time(server.get("created")),
            hostname=server.get("name"),
            details=_server_details(server),
        )

    def start_vm(self, backend_id: str) -> None:
        self._server_action(backend_id, {"os-start": None})

    def stop_vm(self, backend_id: str) -> None:
        self._server_action(backend_id, {"os-stop": None})

    def reboot_vm(self, backend_id: str) -> None:
        self._server_action(backend_id, {"reboot": {"type": "SOFT"}})

    # Optional capabilities.

    def get_console_url(self, backend_id: str) -> str:
        body = self._json(
            "compute",
            "POST",
            f"/servers/{backend_id}/remote-consoles",
            json={"remote_console": {"protocol": "vnc", "type": "novnc"}},
        )

        url = (body or {}).get("remote_console", {}).get("url")
        if not url:
            raise BackendError("OpenStack returned no console URL")
        return str(url)

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._send("compute", "PUT", f"/servers/{backend_id}", idempotent=True, json={"server": {"name": name}})

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Rebuild the server from an image.

        At Nova microversion 2.45 a rebuild takes no user data or key pair, so
        `ssh_public_key` is not sent: the server keeps the user data from creation,
        which installs the key on the new disk.
        """
        self._server_action(backend_id, {"rebuild": {"imageRef": image_backend_id}})
        return None

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        body = self._json(
            "compute", "POST", f"/servers/{backend_id}/action", json={"createImage": {"name": name, "metadata": {}}}
        )

        image_id = str((body or {}).get("image_id") or "")
        if not image_id:
            raise BackendError("OpenStack started the snapshot but returned no image id")
        logger.info(
            "vm_snapshot_started", extra={"region_id": self.region_id, "backend_id": backend_id, "image_id": image_id}
        )
        return image_id

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        """Start a resize to another flavor.

        Nova then waits in VERIFY_RESIZE until the next `get_vm` confirms the resize.
        """
        self._server_action(backend_id, {"resize": {"flavorRef": plan_backend_id}})

    def list_addresses(self, backend_id: str) -> list[Address]:
        """List the server's addresses from Neutron: fixed IPs of its ports plus floating IPs."""
        ports = (self._json("network", "GET", "/v2.0/ports", params={"device_id": backend_id}) or {}).get("ports", [])
        port_ids = [port["id"] for port in ports if port.get("id")]

        addresses = [
            _address(fixed["ip_address"], floating=False)
            for port in ports
            for fixed in port.get("fixed_ips", [])
            if fixed.get("ip_address")
        ]
        if port_ids:
            floating = self._json("network", "GET", "/v2.0/floatingips", params={"port_id": port_ids}) or {}
            addresses.extend(
                _address(item["floating_ip_address"], floating=True)
                for item in floating.get("floatingips", [])
                if item.get("floating_ip_address")
            )
        return addresses

    def fetch_image(self, url: str, name: str) -> str:
        """Create a Glance image and start a web-download import of `url` into it."""
        self._require_web_download()
        image = self._json(
            "image",
            "POST",
            "/v2/images",
            json={
                "name": name,
                "disk_format": _disk_format(url),
                "container_format": "bare",
                "visibility": "private",
            },
        )
        image_id = str((image or {}).get("id") or "")
        if not image_id:
            raise BackendError("OpenStack created the image but returned no image id")

        try:
            self._send(
                "image", "POST", f"/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": url}}
            )
        except BackendError:
            self._delete_image_quietly(image_id)
            raise

        logger.info("image_fetch_started", extra={"region_id": self.region_id, "image_id": image_id})
        return image_id

    def get_image(self, image_backend_id: str) -> ImageInfo:
        return _image_info(self._json("image", "GET", f"/v2/images/{image_backend_id}") or {})

    def list_images(self) -> list[ImageInfo]:
        return self._list_glance_images(f"/v2/images?limit={IMAGE_PAGE_SIZE}")

    def delete_image(self, image_backend_id: str) -> None:
        self._send("image", "DELETE", f"/v2/images/{image_backend_id}", idempotent=True, not_found_ok=True)

    def list_public_images(self) -> list[ImageInfo]:
        return self._list_glance_images(f"/v2/images?visibility=public&status=active&limit={IMAGE_PAGE_SIZE}")

    def list_plans(self) -> list[PlanOffer]:
        plans: list[PlanOffer] = []
        path: str | None = "/flavors/detail"

        for _ in range(MAX_PAGES):
            if path is None:
                return plans
            body = self._json("compute", "GET", path) or {}
            plans.extend(_plan_offer(flavor) for flavor in body.get("flavors", []))
            path = _next_link(body.get("flavors_links"))

        raise BackendError(f"OpenStack returned more than {MAX_PAGES} pages of flavors")

    # Nova helpers.

    def _get_server(self, backend_id: str) -> dict[str, Any]:
        body = self._json("compute", "GET", f"/servers/{backend_id}") or {}
        server = body.get("server")
        if not isinstance(server, dict):
            raise BackendError(f"OpenStack returned no server for {backend_id}")
        return server

    def _server_action(self, backend_id: str, action: Mapping[str, Any]) -> None:
        self._send("compute", "POST", f"/servers/{backend_id}/action", json=dict(action))

    def _confirm_resize(self, backend_id: str) -> None:
        """Confirm a finished resize. A failure is logged, and the next read tries again."""
        try:
            self._server_action(backend_id, {"confirmResize": None})
        except BackendError as exc:
            logger.warning(
                "vm_resize_confirm_failed",
                extra={"region_id": self.region_id, "backend_id": backend_id, "error": str(exc)},
            )
            return
        logger.info("vm_resize_confirmed", extra={"region_id": self.region_id, "backend_id": backend_id})

    # Glance helpers.

    def _list_glance_images(self, first_page: str) -> list[ImageInfo]:
        """Follow Glance's `next` links from `first_page`, which carry its filters."""
        images: list[ImageInfo] = []
        path: str | None = first_page

        for _ in range(MAX_PAGES):
            if path is None:
                return images
            body = self._json("image", "GET", path) or {}
            images.extend(_image_info(image) for image in body.get("images", []))
            path = body.get("next")

        raise BackendError(f"OpenStack returned more than {MAX_PAGES} pages of images")

    def _require_web_download(self) -> None:
        info = self._json("image", "GET", "/v2/info/import") or {}
        methods = info.get("import-methods", {}).get("value", [])
        if "web-download" not in methods:
            raise BackendError("this OpenStack cloud does not offer the web-download image import method")

    def _delete_image_quietly(self, image_id: str) -> None:
        try:
            self.delete_image(image_id)
        except BackendError as exc:
            logger.warning(
                "image_cleanup_failed", extra={"region_id": self.region_id, "image_id": image_id, "error": str(exc)}
            )

    # Authentication and transport.

    def _json(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(service, method, path, **kwargs)
        if response is None or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError("OpenStack returned a response that is not JSON") from exc

    def _send(self, service: str, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """Send one request to a catalog service, with one new token if the first is rejected."""
        for attempt in (1, 2):
            session = self._current_session(renew=attempt == 2)
            headers = {"X-Auth-Token": session.token}
            if service == "compute":
                headers["OpenStack-API-Version"] = f"compute {NOVA_MICROVERSION}"
                headers["X-OpenStack-Nova-API-Version"] = NOVA_MICROVERSION
            url = path if path.startswith(("http://", "https://")) else session.endpoints[service] + path

            try:
                return self.http.request(method, url, headers=headers, **kwargs)
            except BackendError as error:
                if error.status_code != 401:
                    raise
                logger.info("openstack_token_rejected", extra={"region_id": self.region_id, "attempt": attempt})

        raise BackendError("OpenStack rejected a new token; check the region's credentials and role assignments")

    def _current_session(self, *, renew: bool) -> _Session:
        with self._session_lock:
            session = self._session
            if renew or session is None or session.expires_at - clock.now() <= TOKEN_REFRESH_MARGIN:
                session = self._authenticate()
                self._session = session
            return session

    def _authenticate(self) -> _Session:
        """Get a project-scoped token and the service endpoints from Keystone."""
        domain = {"name": self.domain}
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.secrets["username"],
                            "domain": domain,
                            "password": self.secrets["password"],
                        }
                    },
                },
                "scope": {"project": {"name": self.project, "domain": domain}},
            }
        }
        response = self.http.request("POST", f"{self.auth_url}/auth/tokens", idempotent=True, json=body)
        if response is None:
            raise BackendError("Keystone returned no token response")

        token = response.headers.get("X-Subject-Token")
        try:
            details = response.json()["token"]
            expires_at = clock.parse_iso(details["expires_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError("Keystone returned a token response without an expiry time") from exc
        if not token:
            raise BackendError("Keystone returned no X-Subject-Token header")

        catalog = details.get("catalog") or []
        endpoints = {service: self._endpoint(catalog, service) for service in ("compute", "image", "network")}
        logger.debug("openstack_token_issued", extra={"region_id": self.region_id, "expires_at": clock.iso(expires_at)})
        return _Session(token=token, expires_at=expires_at, endpoints=endpoints)

    def _endpoint(self, catalog: list[dict[str, Any]], service_type: str) -> str:
        for service in catalog:
            if service.get("type") != service_type:
                continue
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") != self.interface:
                    continue
                if self.region_name and self.region_name not in (endpoint.get("region_id"), endpoint.get("region")):
                    continue
                url = str(endpoint["url"]).rstrip("/")
                # Glance and Neutron paths below carry their own version prefix.
                return url if service_type == "compute" else re.sub(r"/v\d+(\.\d+)?$", "", url)

        where = f" in region {self.region_name}" if self.region_name else ""
        raise BackendError(f"the OpenStack catalog has no {self.interface} {service_type} endpoint{where}")


def _required(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    if not value:
        raise InvalidRequest(f"the OpenStack region setting {name} is missing", field=name)
    return str(value)


def _identity_url(auth_url: str) -> str:
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else f"{url}/v3"


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    seconds = settings.get("timeout_seconds")
    if seconds is None:
        return (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    read = float(seconds)
    return (min(float(CONNECT_TIMEOUT_SECONDS), read), read)


def _describe_error(response: requests.Response) -> str:
    """Extract the message from Nova, Neutron, Keystone or Glance error bodies."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())

    if not isinstance(body, dict):
        return ""
    # Nova sends {"itemNotFound": {"message"}}, Neutron {"NeutronError": {"message"}} and
    # Keystone {"error": {"message"}}. Glance sends plain text or HTML, handled above.
    for value in body.values():
        if isinstance(value, dict) and value.get("message"):
            return str(value["message"])
    return str(body.get("message") or "")


def _cloud_config_user_data(ssh_public_key: str) -> str:
    # JSON is valid YAML, so json.dumps quotes the key safely for cloud-init.
    document = "#cloud-config\n" + json.dumps({"ssh_authorized_keys": [ssh_public_key]}) + "\n"
    return base64.b64encode(document.encode()).decode()


def _address(text: str, *, floating: bool) -> Address:
    ip = ipaddress.ip_address(text)
    private = not floating and any(ip in network for network in PRIVATE_NETWORKS)
    return Address(ip=str(ip), version=ip.version, private=private)


def _server_addresses(server: Mapping[str, Any]) -> list[Address]:
    addresses = []
    for entries in (server.get("addresses") or {}).values():
        for entry in entries:
            if entry.get("addr"):
                floating = entry.get("OS-EXT-IPS:type") == "floating"
                addresses.append(_address(entry["addr"], floating=floating))
    return addresses


def _server_details(server: Mapping[str, Any]) -> dict[str, str]:
    details = {"status": str(server.get("status") or "")}
    task_state = server.get("OS-EXT-STS:task_state")
    if task_state:
        details["task_state"] = str(task_state)
    flavor = server.get("flavor") or {}
    if flavor.get("id"):
        details["flavor_id"] = str(flavor["id"])
    return details


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return clock.parse_iso(str(text))
    except ValueError:
        return None


def _image_info(image: Mapping[str, Any]) -> ImageInfo:
    if not image.get("id"):
        raise BackendError("OpenStack returned an image without an id")
    return ImageInfo(
        backend_id=str(image["id"]),
        name=str(image.get("name") or ""),
        state=IMAGE_STATES.get(str(image.get("status")), ImageState.PENDING),
        size_bytes=int(image.get("size") or 0),
    )


def _plan_offer(flavor: Mapping[str, Any]) -> PlanOffer:
    return PlanOffer(
        backend_id=str(flavor["id"]),
        name=str(flavor.get("name") or flavor["id"]),
        ram_mb=int(flavor.get("ram") or 0),
        vcpus=int(flavor.get("vcpus") or 0),
        disk_gb=int(flavor.get("disk") or 0),
        # Flavors carry no traffic allowance; the operator sets it on the Lobster plan.
        bandwidth_gib=0,
    )


def _next_link(links: Any) -> str | None:
    for link in links or []:
        if link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


def _disk_format(url: str) -> str:
    path = urlsplit(url).path.lower()
    for extension, disk_format in DISK_FORMATS_BY_EXTENSION.items():
        if path.endswith(extension):
            return disk_format
    return "qcow2"
