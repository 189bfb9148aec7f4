"""A local stand-in for the Linode API v4, for backend tests.

Every request needs `Authorization: Bearer <token>` and must match the Linode OpenAPI
document (path, method, parameters, JSON body). A mismatch gets a response in the API's
`{"errors": [...]}` format and is kept in `rejections`. Power changes pass through Linode's
transitional states (booting, shutting_down, ...) for `transition_seconds`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes.openapi_validation import OpenApiRequestValidator, load_validator, provider_spec_path
from tests.fakes.server import FakeProvider, Request, Response

SPEC_PATH = provider_spec_path("linode", "openapi.yaml")
TOKEN = "linode-fake-token"
REGIONS = ("us-east", "us-west", "eu-central", "ap-south")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
TRANSITION_SECONDS = 0.05
SWAP_MB = 512
PASSWORD_MIN = 11


class FakeLinode(FakeProvider):
    """Linode instances, disks, IPs, images and types in memory."""

    def __init__(self, token: str = TOKEN, spec_path: Path = SPEC_PATH) -> None:
        super().__init__()
        self.token = token
        self.validator: OpenApiRequestValidator = load_validator(str(spec_path))
        self._state_lock = threading.RLock()
        self.reset()
        self._register_routes()

    def reset(self) -> None:
        """Forget every resource, request and pending failure, keeping the server running."""
        with self._lock:
            self._failures.clear()
            self.requests.clear()
        with self._state_lock:
            self.transition_seconds = TRANSITION_SECONDS
            self.max_page_size = MAX_PAGE_SIZE
            self.rejections: list[tuple[Request, str]] = []
            self.instances: dict[int, dict[str, Any]] = {}
            self.disks: dict[int, list[dict[str, Any]]] = {}
            self.ips: dict[str, dict[str, Any]] = {}
            self.transfer_used: dict[int, int] = {}
            self.root_passwords: dict[int, str] = {}
            self.authorized_keys: dict[int, list[str]] = {}
            self.images: dict[str, dict[str, Any]] = {"linode/debian12": _image("linode/debian12", "Debian 12", True)}
            self.types = [
                _type("g6-nanode-1", "Nanode 1GB", 1024, 1, 25600, 1000),
                _type("g6-standard-1", "Linode 2GB", 2048, 1, 51200, 2000),
            ]
            self._transitions: list[tuple[float, int, Callable[[dict[str, Any]], None]]] = []
            self._ids = itertools.count(5000)

    # Authentication and validation come before routing, as on the real API.

    def dispatch(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._reject(request, 401, [{"reason": "Invalid Token"}])

        try:
            json.loads(request.body or b"null")
        except ValueError:
            return self._reject(request, 400, [{"reason": "Invalid JSON"}])

        filter_problem = _x_filter_problem(request.headers.get("x-filter"))
        if filter_problem:
            return self._reject(request, 400, [{"field": "X-Filter", "reason": filter_problem}])

        # The document declares X-Filter as a plain (style: simple) header although its
        # value is JSON text, so it is checked above and left out of the document check.
        check = self.validator.check(
            request.method,
            _document_path(request.path),
            query=request.query,
            headers={name: value for name, value in request.headers.items() if name != "x-filter"},
            body=request.body,
            content_type=request.headers.get("content-type", "application/json"),
        )
        if check.unknown_path:
            return self._reject(request, 404, [{"reason": "Not found"}])
        if check.method_not_allowed:
            return self._reject(request, 405, [{"reason": "Method Not Allowed"}])
        if not check.ok:
            return self._reject(request, 400, [{"reason": error} for error in check.errors])

        with self._state_lock:
            self._finish_due_transitions()
        return super().dispatch(request)

    def not_found(self, request: Request) -> Response:
        return _errors(404, [{"reason": "Not found"}])

    def _reject(self, request: Request, status: int, errors: list[dict[str, str]]) -> Response:
        with self._lock:
            self.requests.append(request)
            self.rejections.append((request, "; ".join(error["reason"] for error in errors)))
        return _errors(status, errors)

    def _register_routes(self) -> None:
        self.route("GET", "/v4/linode/instances", self._list_instances)
        self.route("POST", "/v4/linode/instances", self._create_instance)
        self.route("GET", "/v4/linode/instances/{linode_id}", self._get_instance)
        self.route("PUT", "/v4/linode/instances/{linode_id}", self._update_instance)
        self.route("DELETE", "/v4/linode/instances/{linode_id}", self._delete_instance)
        self.route("POST", "/v4/linode/instances/{linode_id}/boot", self._power("booting", "running"))
        self.route("POST", "/v4/linode/instances/{linode_id}/shutdown", self._power("shutting_down", "offline"))
        self.route("POST", "/v4/linode/instances/{linode_id}/reboot", self._power("rebooting", "running"))
        self.route("POST", "/v4/linode/instances/{linode_id}/rebuild", self._rebuild)
        self.route("POST", "/v4/linode/instances/{linode_id}/resize", self._resize)
        self.route("GET", "/v4/linode/instances/{linode_id}/disks", self._list_disks)
        self.route("GET", "/v4/linode/instances/{linode_id}/ips", self._list_ips)
        self.route("GET", "/v4/linode/instances/{linode_id}/transfer", self._transfer)
        self.route("PUT", "/v4/networking/ips/{address}", self._update_ip)
        self.route("GET", "/v4/images", self._list_images)
        self.route("POST", "/v4/images", self._create_image)
        for prefix in ("private", "linode"):
            self.route("GET", f"/v4/images/{prefix}/{{name}}", self._get_image)
            self.route("DELETE", f"/v4/images/{prefix}/{{name}}", self._delete_image)
        self.route("GET", "/v4/linode/types", self._list_types)

    # Instances.

    def _create_instance(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            problems = self._create_problems(body)
            if problems:
                return _errors(400, problems)

            linode_id = next(self._ids)
            linode_type = self._type(body["type"])
            octet = linode_id % 250 + 1
            public_ip, private_ip = f"198.51.100.{octet}", f"192.168.140.{octet}"
            self.instances[linode_id] = {
                "id": linode_id,
                "label": body.get("label") or f"linode{linode_id}",
                "region": body["region"],
                "type": body["type"],
                "image": body.get("image"),
                "status": "provisioning",
                "ipv4": [public_ip, private_ip],
                "ipv6": f"2001:db8:5000::{octet:x}/128",
                "created": _now(),
                "updated": _now(),
                "group": "",
                "tags": body.get("tags", []),
                "hypervisor": "kvm",
                "watchdog_enabled": True,
                "specs": {
                    "disk": linode_type["disk"],
                    "memory": linode_type["memory"],
                    "vcpus": linode_type["vcpus"],
                    "gpus": 0,
                    "transfer": linode_type["transfer"],
                },
                "alerts": {"cpu": 180, "io": 10000, "network_in": 10, "network_out": 10, "transfer_quota": 80},
                "backups": {
                    "enabled": False,
                    "available": False,
                    "schedule": {"day": None, "window": None},
                    "last_successful": None,
                },
            }
            self.disks[linode_id] = [
                _disk(next(self._ids), "Debian 12 Disk", "ext4", linode_type["disk"] - SWAP_MB),
                _disk(next(self._ids), "512 MB Swap Image", "swap", SWAP_MB),
            ]
            self.ips[public_ip] = _ip(
                public_ip, linode_id, public=True, rdns=f"{public_ip.replace('.', '-')}.ip.linodeusercontent.com"
            )
            self.ips[private_ip] = _ip(private_ip, linode_id, public=False, rdns=None)
            self.transfer_used[linode_id] = 0
            self.root_passwords[linode_id] = body.get("root_pass", "")
            self.authorized_keys[linode_id] = body.get("authorized_keys", [])
            return Response.json(self.instances[linode_id])

    def _create_problems(self, body: dict[str, Any]) -> list[dict[str, str]]:
        problems = []
        if body.get("region") not in REGIONS:
            problems.append({"field": "region", "reason": "region is not valid"})
        if self._type(body.get("type")) is None:
            problems.append({"field": "type", "reason": "A valid plan type by that ID was not found"})
        if "image" in body and body["image"] not in self.images:
            problems.append({"field": "image", "reason": "image is not valid"})
        if "image" in body and "root_pass" not in body:
            problems.append({"field": "root_pass", "reason": "root_pass is required when deploying an image"})
        if "root_pass" in body and not _strong(body["root_pass"]):
            problems.append({"field": "root_pass", "reason": "Password does not meet strength requirement."})
        problems += self._label_problems(body.get("label"), None)
        return problems

    def _label_problems(self, label: str | None, linode_id: int | None) -> list[dict[str, str]]:
        label_in_use = any(
            other["label"] == label for other_id, other in self.instances.items() if other_id != linode_id
        )
        if label is not None and label_in_use:
            return [{"field": "label", "reason": "Label must be unique among your Linodes"}]
        return []

    def _list_instances(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, list(self.instances.values()))

    def _get_instance(self, request: Request) -> Response:
        with self._state_lock:
            instance = self.instances.get(_int(request.params["linode_id"]))
            return Response.json(instance) if instance else self.not_found(request)

    def _update_instance(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            linode_id = _int(request.params["linode_id"])
            instance = self.instances.get(linode_id)
            if instance is None:
                return self.not_found(request)
            problems = self._label_problems(body.get("label"), linode_id)
            if problems:
                return _errors(400, problems)
            instance.update({key: value for key, value in body.items() if key in ("label", "tags")}, updated=_now())
            return Response.json(instance)

    def _delete_instance(self, request: Request) -> Response:
        with self._state_lock:
            linode_id = _int(request.params["linode_id"])
            if self.instances.pop(linode_id, None) is None:
                return self.not_found(request)
            self.ips = {address: ip for address, ip in self.ips.items() if ip["linode_id"] != linode_id}
        return Response.json({})

    def _power(self, transitional: str, final: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            with self._state_lock:
                instance = self.instances.get(_int(request.params["linode_id"]))
                if instance is None:
                    return self.not_found(request)
                if instance["status"] == "provisioning":
                    return _errors(400, [{"reason": "Linode busy."}])
                instance["status"] = transitional
                self._schedule(instance["id"], lambda item: item.update(status=final))
            return Response.json({})

        return handle

    def _rebuild(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(_int(request.params["linode_id"]))
            if instance is None:
                return self.not_found(request)
            if body["image"] not in self.images:
                return _errors(400, [{"field": "image", "reason": "image is not valid"}])
            if not _strong(body["root_pass"]):
                return _errors(400, [{"field": "root_pass", "reason": "Password does not meet strength requirement."}])
            instance.update(status="rebuilding", image=body["image"])
            self.root_passwords[instance["id"]] = body["root_pass"]
            self.authorized_keys[instance["id"]] = body.get("authorized_keys", [])
            self._schedule(instance["id"], lambda item: item.update(status="running"), due=float("inf"))
            return Response.json(instance)

    def _resize(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(_int(request.params["linode_id"]))
            if instance is None:
                return self.not_found(request)
            new_type = self._type(body["type"])
            if new_type is None:
                return _errors(400, [{"field": "type", "reason": "A valid plan type by that ID was not found"}])
            if new_type["disk"] < sum(disk["size"] for disk in self.disks[instance["id"]]):
                return _errors(
                    400,
                    [{"field": "type", "reason": "Linode has allocated more disk than the new service plan allows."}],
                )
            instance.update(status="resizing", type=new_type["id"])
            self._schedule(instance["id"], lambda item: item.update(status="running"), due=float("inf"))
            return Response.json({})

    def _list_disks(self, request: Request) -> Response:
        with self._state_lock:
            disks = self.disks.get(_int(request.params["linode_id"]))
            return self._page(request, disks) if disks is not None else self.not_found(request)

    # Networking and transfer.

    def _list_ips(self, request: Request) -> Response:
        with self._state_lock:
            linode_id = _int(request.params["linode_id"])
            instance = self.instances.get(linode_id)
            if instance is None:
                return self.not_found(request)
            mine = [ip for ip in self.ips.values() if ip["linode_id"] == linode_id]
            slaac_address = instance["ipv6"].split("/")[0]
            return Response.json(
                {
                    "ipv4": {
                        "public": [ip for ip in mine if ip["public"]],
                        "private": [ip for ip in mine if not ip["public"]],
                        "shared": [],
                        "reserved": [],
                    },
                    "ipv6": {
                        "slaac": {
                            **_ip(slaac_address, linode_id, public=True, rdns=None),
                            "type": "ipv6",
                            "prefix": 128,
                        },
                        "link_local": {
                            **_ip("fe80::1", linode_id, public=False, rdns=None),
                            "type": "ipv6",
                            "prefix": 64,
                        },
                        "global": [],
                    },
                }
            )

    def _update_ip(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            ip = self.ips.get(request.params["address"])
            if ip is None:
                return self.not_found(request)
            ip["rdns"] = body["rdns"]
            return Response.json(ip)

    def _transfer(self, request: Request) -> Response:
        with self._state_lock:
            linode_id = _int(request.params["linode_id"])
            if linode_id not in self.instances:
                return self.not_found(request)
            return Response.json({"used": self.transfer_used[linode_id], "quota": 1000, "billable": 0})

    # Images and types.

    def _list_images(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, list(self.images.values()))

    def _create_image(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            disk = next((d for disks in self.disks.values() for d in disks if d["id"] == body["disk_id"]), None)
            if disk is None:
                return _errors(400, [{"field": "disk_id", "reason": "Disk not found"}])
            image_id = f"private/{next(self._ids)}"
            self.images[image_id] = {
                **_image(image_id, body.get("label") or "snapshot", False),
                "status": "creating",
                "size": disk["size"],
            }
            return Response.json(self.images[image_id])

    def _get_image(self, request: Request) -> Response:
        with self._state_lock:
            image = self.images.get(_image_id(request.path))
            return Response.json(image) if image else self.not_found(request)

    def _delete_image(self, request: Request) -> Response:
        with self._state_lock:
            if self.images.pop(_image_id(request.path), None) is None:
                return self.not_found(request)
        return Response.json({})

    def _type(self, type_id: Any) -> dict[str, Any] | None:
        return next((item for item in self.types if item["id"] == type_id), None)

    def _list_types(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, list(self.types))

    # Pagination and X-Filter, as the API does them.

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        filters = json.loads(request.headers.get("x-filter") or "{}")
        items = [item for item in items if all(item.get(key) == value for key, value in filters.items())]
        page_size = min(int(request.arg("page_size") or DEFAULT_PAGE_SIZE), self.max_page_size)
        page = int(request.arg("page") or 1)
        pages = max(1, -(-len(items) // page_size))
        chunk = items[(page - 1) * page_size : page * page_size]
        return Response.json({"data": chunk, "page": page, "pages": pages, "results": len(items)})

    # Asynchronous state changes.

    def _schedule(self, linode_id: int, effect: Callable[[dict[str, Any]], None], due: float | None = None) -> None:
        self._transitions.append(
            (due if due is not None else time.monotonic() + self.transition_seconds, linode_id, effect)
        )

    def _finish_due_transitions(self, linode_id: int | None = None) -> None:
        now = time.monotonic()
        remaining = []
        for due, target, effect in self._transitions:
            if (due <= now or target == linode_id) and target in self.instances:
                effect(self.instances[target])
            elif target in self.instances:
                remaining.append((due, target, effect))
        self._transitions = remaining

    # Test controls.

    def make_active(self, linode_id: str) -> None:
        """Finish provisioning and every pending state change of an instance."""
        with self._state_lock:
            instance = self.instances[int(linode_id)]
            self._finish_due_transitions(instance["id"])
            if instance["status"] == "provisioning":
                instance["status"] = "running"

    def set_transfer(self, linode_id: str, used_bytes: int) -> None:
        with self._state_lock:
            self.transfer_used[int(linode_id)] = used_bytes

    def finish_images(self) -> None:
        with self._state_lock:
            for image in self.images.values():
                image["status"] = "available"


def _document_path(path: str) -> str:
    # Image ids contain a slash ("private/123") that clients send unescaped, but the
    # document's path template expects one segment, so it is escaped for validation.
    for prefix in ("/v4/images/private/", "/v4/images/linode/"):
        if path.startswith(prefix):
            return "/v4/images/" + prefix.split("/")[-2] + "%2F" + path[len(prefix) :]
    return path


def _x_filter_problem(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return "X-Filter is not valid JSON"
    return None if isinstance(parsed, dict) else "X-Filter must be a JSON object"


def _image_id(path: str) -> str:
    return path.removeprefix("/v4/images/")


def _strong(password: str) -> bool:
    # An approximation of Linode's strength check: long enough and three character classes.
    classes = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    return len(password) >= PASSWORD_MIN and sum(any(test(c) for c in password) for test in classes) >= 3


def _errors(status: int, errors: list[dict[str, str]]) -> Response:
    return Response.json({"errors": errors}, status)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _type(type_id: str, label: str, memory: int, vcpus: int, disk: int, transfer: int) -> dict[str, Any]:
    return {
        "id": type_id,
        "label": label,
        "class": "standard",
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "transfer": transfer,
        "network_out": 1000,
        "gpus": 0,
        "price": {"hourly": 0.0075, "monthly": 5.0},
        "region_prices": [],
        "addons": {"backups": {"price": {"hourly": 0.003, "monthly": 2.0}, "region_prices": []}},
        "successor": None,
    }


def _disk(disk_id: int, label: str, filesystem: str, size: int) -> dict[str, Any]:
    return {
        "id": disk_id,
        "label": label,
        "filesystem": filesystem,
        "size": size,
        "status": "ready",
        "created": _now(),
        "updated": _now(),
    }


def _ip(address: str, linode_id: int, *, public: bool, rdns: str | None) -> dict[str, Any]:
    return {
        "address": address,
        "gateway": None,
        "subnet_mask": "255.255.255.0",
        "prefix": 24,
        "type": "ipv4",
        "public": public,
        "rdns": rdns,
        "linode_id": linode_id,
        "region": "us-east",
    }


def _image(image_id: str, label: str, public: bool) -> dict[str, Any]:
    return {
        "id": image_id,
        "label": label,
        "description": "",
        "created": _now(),
        "updated": _now(),
        "type": "manual",
        "is_public": public,
        "deprecated": False,
        "size": 2500,
        "created_by": "linode" if public else "lobster",
        "vendor": "Debian" if public else None,
        "expiry": None,
        "eol": None,
        "status": "available",
        "capabilities": [],
        "tags": [],
        "total_size": 2500 * (1 << 20),
        "regions": [],
    }
