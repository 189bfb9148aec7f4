"""A fake OpenStack cloud: Keystone v3, Nova, Glance v2 and Neutron on one port.

Services sit under path prefixes as in DevStack (/identity, /compute/v2.1, /image, /network) and
the token catalog points at them. Every service call needs a valid, unexpired X-Auth-Token and
gets 401 otherwise. Transitional states (BUILD, powering-off, RESIZE, importing, ...) end after a
few reads of the resource, or at once through `complete`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.server import FakeProvider, Request, Response

USERNAME = "lobster-api"
PASSWORD = "correct horse battery staple"
PROJECT = "lobster"
DOMAIN = "Default"

PUBLIC_NETWORK_ID = "5b3c1f9e-0d2a-4c1e-9b71-6f7d2a0c9e11"
PRIVATE_NETWORK_ID = "9e0d4b2a-7c61-4f3e-8a15-2d9c0b7e4f22"
UBUNTU_IMAGE_ID = "2f1a7d0e-8c3b-4e59-9a61-0b4d3c2e1f00"
DEBIAN_IMAGE_ID = "7c4e2b1a-3d5f-4a60-8b92-1e0f9d8c7b33"
SMALL_FLAVOR_ID = "1"
MEDIUM_FLAVOR_ID = "2"

MIN_MICROVERSION = (2, 1)
MAX_MICROVERSION = (2, 96)
FLAVOR_PAGE_SIZE = 2
IMAGE_MAX_PAGE_SIZE = 2

UNAUTHORIZED = {
    "error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}
}
DISK_FORMATS = {"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
CONTAINER_FORMATS = {"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
SERVER_CREATE_KEYS = {
    "name",
    "imageRef",
    "flavorRef",
    "networks",
    "user_data",
    "key_name",
    "metadata",
    "security_groups",
    "availability_zone",
    "adminPass",
    "config_drive",
    "description",
}


@dataclass
class Network:
    id: str
    name: str
    ipv4_prefix: str
    ipv6_prefix: str | None
    hosts: itertools.count[int] = field(default_factory=lambda: itertools.count(10))


@dataclass
class Port:
    id: str
    network_id: str
    device_id: str
    fixed_ips: list[str]
    mac: str


@dataclass
class Server:
    id: str
    name: str
    status: str
    flavor_id: str
    image_id: str
    created: str
    user_data: str | None
    task_state: str | None = None
    # (status after the transition, task_state after it, reads left before it happens)
    pending: tuple[str, str | None, int] | None = None
    old_flavor_id: str | None = None


@dataclass
class Image:
    id: str
    name: str
    status: str
    disk_format: str | None
    container_format: str | None
    visibility: str
    size: int | None
    pending: tuple[str, int] | None = None
    import_uri: str | None = None


class FakeOpenStack(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""
        self.token_lifetime = timedelta(hours=1)
        self.reject_all_tokens = False
        self.tokens: dict[str, datetime] = {}

        self.flavors: dict[str, dict[str, Any]] = {
            SMALL_FLAVOR_ID: {"id": SMALL_FLAVOR_ID, "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
            MEDIUM_FLAVOR_ID: {"id": MEDIUM_FLAVOR_ID, "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40},
            "3": {"id": "3", "name": "m1.large", "ram": 8192, "vcpus": 4, "disk": 80},
        }
        self.networks = {
            PUBLIC_NETWORK_ID: Network(PUBLIC_NETWORK_ID, "public", "203.0.113.", "2001:db8:10::"),
            PRIVATE_NETWORK_ID: Network(PRIVATE_NETWORK_ID, "private", "10.0.0.", None),
        }

        self.servers: dict[str, Server] = {}
        self.ports: dict[str, Port] = {}
        self.floating_ips: dict[str, str] = {}  # port id -> floating address
        self.images: dict[str, Image] = {
            UBUNTU_IMAGE_ID: Image(UBUNTU_IMAGE_ID, "Ubuntu 24.04", "active", "qcow2", "bare", "public", 600_000_000),
            DEBIAN_IMAGE_ID: Image(DEBIAN_IMAGE_ID, "Debian 12", "active", "qcow2", "bare", "public", 400_000_000),
            "a0b1c2d3-0000-4000-8000-000000000003": Image(
                "a0b1c2d3-0000-4000-8000-000000000003", "Rocky 9", "active", "qcow2", "bare", "public", 900_000_000
            ),
        }
        self._floating_hosts = itertools.count(20)
        self._state_lock = threading.RLock()
        self._register_routes()

    def start(self) -> str:
        self.base_url = super().start()
        return self.base_url

    # Test controls.

    def expire_tokens(self) -> None:
        """Make every issued token expired, as if its lifetime had passed."""
        with self._state_lock:
            past = _now() - timedelta(seconds=1)
            self.tokens = {token: past for token in self.tokens}

    def complete(self, server_id: str) -> None:
        """Finish the server's pending transition now."""
        with self._state_lock:
            server = self.servers[server_id]
            if server.pending is not None:
                self._finish_transition(server)

    def associate_floating_ip(self, server_id: str) -> str:
        """Give the server's first port a floating IP and return the address."""
        with self._state_lock:
            port = next(port for port in self.ports.values() if port.device_id == server_id)
            address = f"198.51.100.{next(self._floating_hosts)}"
            self.floating_ips[port.id] = address
            return address

    def auth_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/identity/v3/auth/tokens" and r.method == "POST"]

    # Routing.

    def _register_routes(self) -> None:
        self.route("POST", "/identity/v3/auth/tokens", self._issue_token)

        compute = "/compute/v2.1"
        self.route("POST", f"{compute}/servers", self._authorized(self._create_server))
        self.route("GET", f"{compute}/servers/{{server_id}}", self._authorized(self._show_server))
        self.route("PUT", f"{compute}/servers/{{server_id}}", self._authorized(self._update_server))
        self.route("DELETE", f"{compute}/servers/{{server_id}}", self._authorized(self._delete_server))
        self.route("POST", f"{compute}/servers/{{server_id}}/action", self._authorized(self._server_action))
        self.route("POST", f"{compute}/servers/{{server_id}}/remote-consoles", self._authorized(self._remote_console))
        self.route("GET", f"{compute}/flavors/detail", self._authorized(self._list_flavors))

        self.route("GET", "/image/v2/info/import", self._authorized(self._import_info))
        self.route("GET", "/image/v2/images", self._authorized(self._list_images))
        self.route("POST", "/image/v2/images", self._authorized(self._create_image))
        self.route("GET", "/image/v2/images/{image_id}", self._authorized(self._show_image))
        self.route("DELETE", "/image/v2/images/{image_id}", self._authorized(self._delete_image))
        self.route("POST", "/image/v2/images/{image_id}/import", self._authorized(self._import_image))

        self.route("GET", "/network/v2.0/ports", self._authorized(self._list_ports))
        self.route("GET", "/network/v2.0/floatingips", self._authorized(self._list_floating_ips))

    def _authorized(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def check(request: Request) -> Response:
            token = request.headers.get("x-auth-token")
            with self._state_lock:
                expires_at = self.tokens.get(token or "")
                valid = expires_at is not None and expires_at > _now() and not self.reject_all_tokens
                if not valid:
                    return Response.json(UNAUTHORIZED, 401, {"WWW-Authenticate": 'Keystone uri="/identity"'})
                return handler(request)

        return check

    # Keystone.

    def _issue_token(self, request: Request) -> Response:
        try:
            auth = request.json()["auth"]
            methods = auth["identity"]["methods"]
            user = auth["identity"]["password"]["user"]
        except (ValueError, KeyError, TypeError):
            return _keystone_error(
                400,
                "Bad Request",
                "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect.",
            )
        if methods != ["password"]:
            return _keystone_error(400, "Bad Request", "Unsupported authentication method.")

        if (
            user.get("name") != USERNAME
            or user.get("password") != PASSWORD
            or user.get("domain", {}).get("name") != DOMAIN
        ):
            return Response.json(UNAUTHORIZED, 401)

        project = (auth.get("scope") or {}).get("project") or {}
        if project.get("name") != PROJECT or project.get("domain", {}).get("name") != DOMAIN:
            return Response.json(UNAUTHORIZED, 401)

        token = "gAAAAA" + secrets.token_urlsafe(32)
        expires_at = _now() + self.token_lifetime
        with self._state_lock:
            self.tokens[token] = expires_at
        body = {
            "token": {
                "methods": ["password"],
                "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "issued_at": _now().strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "user": {"id": "u-1", "name": USERNAME, "domain": {"id": "default", "name": DOMAIN}},
                "project": {"id": "p-1", "name": PROJECT, "domain": {"id": "default", "name": DOMAIN}},
                "roles": [{"id": "r-1", "name": "member"}],
                "catalog": self._catalog(),
            }
        }
        return Response.json(body, 201, {"X-Subject-Token": token})

    def _catalog(self) -> list[dict[str, Any]]:
        def service(service_type: str, name: str, path: str) -> dict[str, Any]:
            endpoints = [
                {
                    "id": f"{name}-{interface}",
                    "interface": interface,
                    "region": "RegionOne",
                    "region_id": "RegionOne",
                    "url": self.base_url + path,
                }
                for interface in ("public", "internal")
            ]
            return {"id": name, "type": service_type, "name": name, "endpoints": endpoints}

        return [
            service("identity", "keystone", "/identity"),
            service("compute", "nova", "/compute/v2.1"),
            service("image", "glance", "/image"),
            service("network", "neutron", "/network"),
        ]

    # Nova.

    def _create_server(self, request: Request) -> Response:
        version = _microversion(request)
        if isinstance(version, Response):
            return version
        try:
            body = request.json()["server"]
        except (ValueError, KeyError, TypeError):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute server.")
        unknown = set(body) - SERVER_CREATE_KEYS
        if unknown:
            return _nova_error(
                400,
                "badRequest",
                f"Invalid input for field/attribute server. Additional properties are not allowed ({', '.join(sorted(unknown))} were unexpected)",
            )
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return _nova_error(400, "badRequest", "Invalid input for field/attribute name.")
        if body.get("flavorRef") not in self.flavors:
            return _nova_error(400, "badRequest", f"Flavor {body.get('flavorRef')} could not be found.")
        image = self.images.get(str(body.get("imageRef")))
        if image is None or image.status != "active":
            return _nova_error(400, "badRequest", f"Image {body.get('imageRef')} could not be found.")

        networks = body.get("networks")
        if version >= (2, 37) and networks is None:
            return _nova_error(
                400, "badRequest", "Invalid input for field/attribute server. 'networks' is a required property"
            )
        network_ids = self._requested_networks(networks)
        if isinstance(network_ids, Response):
            return network_ids

        user_data = body.get("user_data")
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError, TypeError):
                return _nova_error(
                    400, "badRequest", "Invalid input for field/attribute user_data. Value: not valid base64"
                )

        server = Server(
            id=str(uuid.uuid4()),
            name=body["name"],
            status="BUILD",
            task_state="spawning",
            flavor_id=body["flavorRef"],
            image_id=image.id,
            created=_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            user_data=user_data,
            pending=("ACTIVE", None, 2),
        )
        with self._state_lock:
            self.servers[server.id] = server
            for network_id in network_ids:
                self._attach_port(server.id, self.networks[network_id])
        return Response.json(
            {
                "server": {
                    "id": server.id,
                    "links": [],
                    "OS-DCF:diskConfig": "MANUAL",
                    "security_groups": [{"name": "default"}],
                }
            },
            202,
        )

    def _requested_networks(self, networks: Any) -> list[str] | Response:
        if networks is None or networks == "auto":
            return [PRIVATE_NETWORK_ID]
        if networks == "none":
            return []
        if not isinstance(networks, list):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute networks.")
        ids = []
        for entry in networks:
            network_id = entry.get("uuid") if isinstance(entry, dict) else None
            if network_id not in self.networks:
                return _nova_error(400, "badRequest", f"Network {network_id} could not be found.")
            ids.append(network_id)
        return ids

    def _attach_port(self, server_id: str, network: Network) -> None:
        host = next(network.hosts)
        fixed = [f"{network.ipv4_prefix}{host}"]
        if network.ipv6_prefix:
            fixed.append(f"{network.ipv6_prefix}{host:x}")
        port = Port(str(uuid.uuid4()), network.id, server_id, fixed, f"fa:16:3e:00:00:{host:02x}")
        self.ports[port.id] = port

    def _show_server(self, request: Request) -> Response:
        version = _microversion(request)
        if isinstance(version, Response):
            return version
        server = self.servers.get(request.params["server_id"])
        if server is None:
            return _server_not_found(request.params["server_id"])
        self._advance(server)
        return Response.json({"server": self._server_view(server)})

    def _advance(self, server: Server) -> None:
        if server.pending is None:
            return
        status, task_state, reads_left = server.pending
        if reads_left > 0:
            server.pending = (status, task_state, reads_left - 1)
            return
        self._finish_transition(server)

    def _finish_transition(self, server: Server) -> None:
        assert server.pending is not None
        server.status, server.task_state, _ = server.pending
        server.pending = None

    def _server_view(self, server: Server) -> dict[str, Any]:
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.ports.values():
            if port.device_id != server.id:
                continue
            network = self.networks[port.network_id]
            entries = addresses.setdefault(network.name, [])
            for ip in port.fixed_ips:
                entries.append(
                    {
                        "version": 6 if ":" in ip else 4,
                        "addr": ip,
                        "OS-EXT-IPS:type": "fixed",
                        "OS-EXT-IPS-MAC:mac_addr": port.mac,
                    }
                )
            if port.id in self.floating_ips:
                entries.append(
                    {
                        "version": 4,
                        "addr": self.floating_ips[port.id],
                        "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": port.mac,
                    }
                )
        return {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "OS-EXT-STS:task_state": server.task_state,
            "OS-EXT-STS:vm_state": server.status.lower(),
            "flavor": {"id": server.flavor_id, "links": []},
            "image": {"id": server.image_id, "links": []},
            "addresses": addresses,
            "created": server.created,
            "updated": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tenant_id": "p-1",
            "user_id": "u-1",
        }

    def _update_server(self, request: Request) -> Response:
        server = self.servers.get(request.params["server_id"])
        if server is None:
            return _server_not_found(request.params["server_id"])
        try:
            name = request.json()["server"]["name"]
        except (ValueError, KeyError, TypeError):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute server.")
        if not isinstance(name, str) or not name.strip():
            return _nova_error(400, "badRequest", "Invalid input for field/attribute name.")
        server.name = name
        return Response.json({"server": self._server_view(server)})

    def _delete_server(self, request: Request) -> Response:
        server_id = request.params["server_id"]
        if self.servers.pop(server_id, None) is None:
            return _server_not_found(server_id)
        for port_id in [port.id for port in self.ports.values() if port.device_id == server_id]:
            del self.ports[port_id]
            self.floating_ips.pop(port_id, None)
        return Response(204)

    def _server_action(self, request: Request) -> Response:
        version = _microversion(request)
        if isinstance(version, Response):
            return version
        server = self.servers.get(request.params["server_id"])
        if server is None:
            return _server_not_found(request.params["server_id"])
        try:
            body = request.json()
            ((action, argument),) = body.items()
        except (ValueError, AttributeError, TypeError):
            return _nova_error(400, "badRequest", "Malformed request body")
        handler = {
            "os-start": self._start,
            "os-stop": self._stop,
            "reboot": self._reboot,
            "rebuild": self._rebuild,
            "resize": self._resize,
            "confirmResize": self._confirm_resize,
            "createImage": self._create_snapshot,
        }.get(action)
        if handler is None:
            return _nova_error(400, "badRequest", f"There is no such action: {action}")
        return handler(server, argument, version)

    def _start(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        if server.status != "SHUTOFF" or server.pending is not None:
            return _state_conflict(server, "start")
        server.task_state = "powering-on"
        server.pending = ("ACTIVE", None, 1)
        return Response(202)

    def _stop(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        if server.status not in ("ACTIVE", "ERROR") or server.pending is not None:
            return _state_conflict(server, "stop")
        server.task_state = "powering-off"
        server.pending = ("SHUTOFF", None, 1)
        return Response(202)

    def _reboot(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        reboot_type = argument.get("type") if isinstance(argument, dict) else None
        if reboot_type not in ("SOFT", "HARD"):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute type.")
        if server.status != "ACTIVE" or server.pending is not None:
            return _state_conflict(server, "reboot")
        server.status = "REBOOT" if reboot_type == "SOFT" else "HARD_REBOOT"
        server.task_state = "rebooting"
        server.pending = ("ACTIVE", None, 1)
        return Response(202)

    def _rebuild(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        image_id = argument.get("imageRef") if isinstance(argument, dict) else None
        image = self.images.get(str(image_id))
        if image is None or image.status != "active":
            return _nova_error(400, "badRequest", f"Image {image_id} could not be found.")
        if server.status not in ("ACTIVE", "SHUTOFF", "ERROR") or server.pending is not None:
            return _state_conflict(server, "rebuild")
        server.image_id = image.id
        server.status = "REBUILD"
        server.task_state = "rebuilding"
        server.pending = ("ACTIVE", None, 1)
        return Response.json({"server": self._server_view(server)}, 202)

    def _resize(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        flavor_id = argument.get("flavorRef") if isinstance(argument, dict) else None
        if flavor_id not in self.flavors:
            return _nova_error(400, "badRequest", f"Flavor {flavor_id} could not be found.")
        if flavor_id == server.flavor_id:
            return _nova_error(400, "badRequest", "When resizing, instances must change flavor!")
        if server.status not in ("ACTIVE", "SHUTOFF") or server.pending is not None:
            return _state_conflict(server, "resize")
        server.old_flavor_id = server.flavor_id
        server.flavor_id = flavor_id
        server.status = "RESIZE"
        server.task_state = "resize_migrating"
        server.pending = ("VERIFY_RESIZE", None, 1)
        return Response(202)

    def _confirm_resize(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        if argument is not None:
            return _nova_error(400, "badRequest", "Invalid input for field/attribute confirmResize.")
        if server.status != "VERIFY_RESIZE":
            return _state_conflict(server, "confirmResize")
        server.status = "ACTIVE"
        server.old_flavor_id = None
        return Response(204)

    def _create_snapshot(self, server: Server, argument: Any, version: tuple[int, int]) -> Response:
        name = argument.get("name") if isinstance(argument, dict) else None
        if not isinstance(name, str) or not name.strip():
            return _nova_error(400, "badRequest", "Invalid input for field/attribute name.")
        if server.status not in ("ACTIVE", "SHUTOFF") or server.pending is not None:
            return _state_conflict(server, "createImage")
        image = Image(str(uuid.uuid4()), name, "queued", "qcow2", "bare", "private", None, pending=("active", 2))
        self.images[image.id] = image
        if version >= (2, 45):
            return Response.json({"image_id": image.id}, 202)
        return Response(202, b"", {"Location": f"{self.base_url}/image/v2/images/{image.id}"})

    def _remote_console(self, request: Request) -> Response:
        version = _microversion(request)
        if isinstance(version, Response):
            return version
        if version < (2, 6):
            return _nova_error(404, "itemNotFound", "The resource could not be found.")
        server = self.servers.get(request.params["server_id"])
        if server is None:
            return _server_not_found(request.params["server_id"])
        try:
            console = request.json()["remote_console"]
        except (ValueError, KeyError, TypeError):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute remote_console.")
        if console.get("protocol") != "vnc" or console.get("type") not in ("novnc", "xvpvnc"):
            return _nova_error(400, "badRequest", "Invalid input for field/attribute type.")
        if server.status != "ACTIVE":
            return _nova_error(409, "conflictingRequest", f"Instance {server.id} is not ready")
        url = f"{self.base_url}/vnc_lite.html?path=%3Ftoken%3D{uuid.uuid4()}"
        return Response.json({"remote_console": {"protocol": "vnc", "type": console["type"], "url": url}})

    def _list_flavors(self, request: Request) -> Response:
        flavors = sorted(self.flavors.values(), key=lambda flavor: str(flavor["id"]))
        marker = request.arg("marker")
        if marker is not None:
            ids = [flavor["id"] for flavor in flavors]
            if marker not in ids:
                return _nova_error(400, "badRequest", f"marker [{marker}] not found")
            flavors = flavors[ids.index(marker) + 1 :]

        page = flavors[:FLAVOR_PAGE_SIZE]
        body: dict[str, Any] = {"flavors": [dict(flavor, links=[]) for flavor in page]}
        if len(flavors) > FLAVOR_PAGE_SIZE:
            href = f"{self.base_url}/compute/v2.1/flavors/detail?marker={page[-1]['id']}"
            body["flavors_links"] = [{"rel": "next", "href": href}]
        return Response.json(body)

    # Glance.

    def _import_info(self, request: Request) -> Response:
        return Response.json(
            {
                "import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": ["glance-direct", "web-download"],
                }
            }
        )

    def _list_images(self, request: Request) -> Response:
        try:
            limit = min(int(request.arg("limit") or IMAGE_MAX_PAGE_SIZE), IMAGE_MAX_PAGE_SIZE)
        except ValueError:
            return _glance_error(400, "limit param must be an integer")
        images = sorted(self.images.values(), key=lambda image: image.id)
        # Glance's list filters; the next link carries them, as Glance's own does.
        filters = {name: request.arg(name) for name in ("visibility", "status") if request.arg(name) is not None}
        if filters.get("visibility") not in (None, "public", "private", "shared", "community", "all"):
            return _glance_error(400, f"Invalid visibility value: {filters['visibility']}")
        if filters.get("visibility") not in (None, "all"):
            images = [image for image in images if image.visibility == filters["visibility"]]
        if "status" in filters:
            images = [image for image in images if image.status == filters["status"]]
        marker = request.arg("marker")
        if marker is not None:
            ids = [image.id for image in images]
            if marker not in ids:
                return _glance_error(400, f"marker {marker} could not be found.")
            images = images[ids.index(marker) + 1 :]

        page = images[:limit]
        body: dict[str, Any] = {
            "images": [self._image_view(image) for image in page],
            "first": "/v2/images",
            "schema": "/v2/schemas/images",
        }
        if len(images) > limit:
            query = "".join(f"&{name}={value}" for name, value in filters.items())
            body["next"] = f"/v2/images?marker={page[-1].id}&limit={limit}{query}"
        return Response.json(body)

    def _create_image(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _glance_error(400, "Malformed JSON in request body.")
        if not isinstance(body, dict):
            return _glance_error(400, "Malformed JSON in request body.")
        if body.get("disk_format") is not None and body["disk_format"] not in DISK_FORMATS:
            return _glance_error(400, f"Invalid value '{body['disk_format']}' for disk_format")
        if body.get("container_format") is not None and body["container_format"] not in CONTAINER_FORMATS:
            return _glance_error(400, f"Invalid value '{body['container_format']}' for container_format")
        visibility = body.get("visibility", "shared")
        if visibility not in ("public", "private", "shared", "community"):
            return _glance_error(400, f"Invalid value '{visibility}' for visibility")
        for key, value in body.items():
            if key not in ("name", "disk_format", "container_format", "visibility") and not isinstance(value, str):
                return _glance_error(
                    400, f"Provided object does not match schema 'image': {value!r} is not of type 'string'"
                )

        image = Image(
            str(uuid.uuid4()),
            str(body.get("name") or ""),
            "queued",
            body.get("disk_format"),
            body.get("container_format"),
            visibility,
            None,
        )
        self.images[image.id] = image
        return Response.json(self._image_view(image), 201, {"Location": f"{self.base_url}/image/v2/images/{image.id}"})

    def _show_image(self, request: Request) -> Response:
        image = self.images.get(request.params["image_id"])
        if image is None:
            return _glance_error(404, f"No image found with ID {request.params['image_id']}")
        if image.pending is not None:
            status, reads_left = image.pending
            if reads_left > 0:
                image.pending = (status, reads_left - 1)
            else:
                image.status, image.size, image.pending = status, 1_500_000_000, None
        return Response.json(self._image_view(image))

    def _delete_image(self, request: Request) -> Response:
        if self.images.pop(request.params["image_id"], None) is None:
            return _glance_error(404, f"No image found with ID {request.params['image_id']}")
        return Response(204)

    def _import_image(self, request: Request) -> Response:
        image = self.images.get(request.params["image_id"])
        if image is None:
            return _glance_error(404, f"No image found with ID {request.params['image_id']}")
        try:
            method = request.json()["method"]
        except (ValueError, KeyError, TypeError):
            return _glance_error(400, "Import request requires a 'method' field.")
        if method.get("name") not in ("glance-direct", "web-download"):
            return _glance_error(400, f"Import method {method.get('name')} is not valid.")
        if method["name"] == "web-download" and not re.match(r"^https?://", str(method.get("uri") or "")):
            return _glance_error(400, "URI for web-download does not pass filtering: invalid scheme")
        if image.status != "queued":
            return _glance_error(409, f"Image status transition from {image.status} to importing is not allowed")
        if image.disk_format is None or image.container_format is None:
            return _glance_error(400, "'disk_format' needs to be set before import")
        image.status, image.import_uri, image.pending = "importing", method.get("uri"), ("active", 2)
        return Response(202)

    def _image_view(self, image: Image) -> dict[str, Any]:
        return {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "visibility": image.visibility,
            "size": image.size,
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }

    # Neutron.

    def _list_ports(self, request: Request) -> Response:
        device_ids = request.query.get("device_id")
        ports = [port for port in self.ports.values() if device_ids is None or port.device_id in device_ids]
        return Response.json(
            {
                "ports": [
                    {
                        "id": port.id,
                        "network_id": port.network_id,
                        "device_id": port.device_id,
                        "device_owner": "compute:nova",
                        "mac_address": port.mac,
                        "status": "ACTIVE",
                        "fixed_ips": [
                            {"subnet_id": f"{port.network_id}-v{6 if ':' in ip else 4}", "ip_address": ip}
                            for ip in port.fixed_ips
                        ],
                    }
                    for port in ports
                ]
            }
        )

    def _list_floating_ips(self, request: Request) -> Response:
        port_ids = request.query.get("port_id")
        floating = [
            {
                "id": f"fip-{port_id}",
                "floating_ip_address": address,
                "port_id": port_id,
                "fixed_ip_address": self.ports[port_id].fixed_ips[0],
                "status": "ACTIVE",
            }
            for port_id, address in self.floating_ips.items()
            if port_ids is None or port_id in port_ids
        ]
        return Response.json({"floatingips": floating})


def _now() -> datetime:
    return datetime.now(UTC)


def _microversion(request: Request) -> tuple[int, int] | Response:
    """Return the requested Nova microversion, or the error Nova sends for a bad one."""
    header = request.headers.get("openstack-api-version")
    text = None
    if header:
        service, _, text = header.strip().partition(" ")
        if service != "compute":
            text = None
    text = text or request.headers.get("x-openstack-nova-api-version")
    if not text:
        return MIN_MICROVERSION

    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if match is None:
        return _nova_error(
            400, "badRequest", f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
        )
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_MICROVERSION <= version <= MAX_MICROVERSION:
        return _nova_error(
            406, "computeFault", f"Version {text} is not supported by the API. Minimum is 2.1 and maximum is 2.96."
        )
    return version


def _nova_error(status: int, kind: str, message: str) -> Response:
    return Response.json({kind: {"code": status, "message": message}}, status)


def _server_not_found(server_id: str) -> Response:
    return _nova_error(404, "itemNotFound", f"Instance {server_id} could not be found.")


def _state_conflict(server: Server, action: str) -> Response:
    return _nova_error(
        409,
        "conflictingRequest",
        f"Cannot '{action}' instance {server.id} while it is in vm_state {server.status.lower()}",
    )


def _keystone_error(status: int, title: str, message: str) -> Response:
    return Response.json({"error": {"code": status, "message": message, "title": title}}, status)


def _glance_error(status: int, message: str) -> Response:
    reason = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
    return Response.text(f"{status} {reason}\n\n{message}\n\n   ", status)
