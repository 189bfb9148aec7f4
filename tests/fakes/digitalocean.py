"""A local stand-in for the DigitalOcean API v2, for backend tests.

Every request needs `Authorization: Bearer <token>` and must match the DigitalOcean
OpenAPI document (path, method, parameters, JSON body). A mismatch gets a response in
the API's error format and is kept in `rejections`. Droplet actions run asynchronously: they
stay "in-progress" for `action_seconds`, then complete and take effect.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes.openapi_validation import OpenApiRequestValidator, load_validator, provider_spec_path
from tests.fakes.server import FakeProvider, Request, Response

SPEC_PATH = provider_spec_path("digitalocean", "specification", "DigitalOcean-public.v2.yaml")
TOKEN = "dop_v1_fake_token"
REGIONS = ("nyc1", "nyc3", "ams3", "fra1", "sfo3", "sgp1", "lon1", "tor1")
# The API's own limit on `per_page`.
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20
ACTION_SECONDS = 0.05


@dataclass
class _Action:
    id: int
    type: str
    droplet_id: int | None
    effect: Callable[[], None] | None
    due: float
    status: str = "in-progress"
    started_at: str = field(default_factory=lambda: _now())
    completed_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "resource_id": self.droplet_id,
            "resource_type": "droplet",
            "region": _region("nyc3"),
            "region_slug": "nyc3",
        }


class FakeDigitalOcean(FakeProvider):
    """DigitalOcean droplets, actions, images, snapshots, sizes and SSH keys in memory."""

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
            self.action_seconds = ACTION_SECONDS
            self.max_per_page = MAX_PER_PAGE
            self.rejections: list[tuple[Request, str]] = []
            self.droplets: dict[int, dict[str, Any]] = {}
            self.actions: dict[int, _Action] = {}
            self.images: dict[int, dict[str, Any]] = {}
            self.snapshots: dict[int, dict[str, Any]] = {}
            self.ssh_keys: list[dict[str, Any]] = []
            self.sizes = [_size("s-1vcpu-1gb", 1024, 1, 25, 1.0), _size("s-2vcpu-2gb", 2048, 2, 60, 3.0)]
            self.public_images = {
                "ubuntu-24-04-x64": _public_image(10001, "ubuntu-24-04-x64", "Ubuntu 24.04 (LTS) x64")
            }
            self._ids = itertools.count(1000)

    # Authentication and validation come before routing, as on the real API.

    def dispatch(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._reject(request, 401, "unauthorized", "Unable to authenticate you")

        try:
            json.loads(request.body or b"null")
        except ValueError:
            return self._reject(request, 400, "bad_request", "request body is not valid JSON")

        check = self.validator.check(
            request.method,
            request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
            content_type=request.headers.get("content-type", "application/json"),
        )
        if check.unknown_path:
            return self._reject(request, 404, "not_found", "The resource you were accessing could not be found.")
        if check.method_not_allowed:
            return self._reject(request, 405, "method_not_allowed", f"{request.method} is not allowed here")
        if not check.ok:
            return self._reject(request, 422, "unprocessable_entity", "; ".join(check.errors))

        with self._state_lock:
            self._complete_due_actions()
        return super().dispatch(request)

    def not_found(self, request: Request) -> Response:
        return _error(404, "not_found", "The resource you were accessing could not be found.")

    def _reject(self, request: Request, status: int, error_id: str, message: str) -> Response:
        with self._lock:
            self.requests.append(request)
            self.rejections.append((request, message))
        return _error(status, error_id, message)

    def _register_routes(self) -> None:
        self.route("POST", "/v2/droplets", self._create_droplet)
        self.route("GET", "/v2/droplets/{droplet_id}", self._get_droplet)
        self.route("DELETE", "/v2/droplets/{droplet_id}", self._delete_droplet)
        self.route("POST", "/v2/droplets/{droplet_id}/actions", self._post_action)
        self.route("GET", "/v2/droplets/{droplet_id}/actions/{action_id}", self._get_action)
        self.route("GET", "/v2/actions/{action_id}", self._get_action)
        self.route("GET", "/v2/images", self._list_images)
        self.route("POST", "/v2/images", self._create_custom_image)
        self.route("GET", "/v2/images/{image_id}", self._get_image)
        self.route("DELETE", "/v2/images/{image_id}", self._delete_image)
        self.route("GET", "/v2/snapshots", self._list_snapshots)
        self.route("GET", "/v2/sizes", self._list_sizes)
        self.route("GET", "/v2/account/keys", self._list_ssh_keys)
        self.route("POST", "/v2/account/keys", self._create_ssh_key)

    # Droplets.

    def _create_droplet(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            problem = self._droplet_create_problem(body)
            if problem:
                return _error(422, "unprocessable_entity", problem)

            droplet_id = next(self._ids)
            size = self._size(body["size"])
            self.droplets[droplet_id] = {
                "id": droplet_id,
                "name": body["name"],
                "memory": size["memory"],
                "vcpus": size["vcpus"],
                "disk": size["disk"],
                "locked": False,
                "status": "new",
                "created_at": _now(),
                "features": [],
                "backup_ids": [],
                "next_backup_window": None,
                "snapshot_ids": [],
                "image": self._image(body["image"]),
                "volume_ids": [],
                "size": size,
                "size_slug": size["slug"],
                "networks": {"v4": [], "v6": []},
                "region": _region(body["region"]),
                "tags": body.get("tags") or [],
                "vpc_uuid": "",
                "user_data": body.get("user_data"),
                "ssh_keys": body.get("ssh_keys", []),
            }
            action = self._start_action("create", droplet_id, lambda: self._activate(droplet_id))
            # Provisioning takes longer than an action, so only make_active() finishes it.
            action.due = float("inf")
            droplet = self._droplet_json(droplet_id)

        links = {"actions": [{"id": action.id, "rel": "create", "href": f"/v2/actions/{action.id}"}]}
        return Response.json({"droplet": droplet, "links": links}, 202)

    def _droplet_create_problem(self, body: dict[str, Any]) -> str | None:
        if body.get("region") not in REGIONS:
            return "You specified an invalid region for Droplet creation."
        if self._size(body.get("size")) is None:
            return "You specified an invalid size for Droplet creation."
        if self._image(body.get("image")) is None:
            return "You specified an invalid image for Droplet creation."
        known_keys = {key["fingerprint"] for key in self.ssh_keys} | {key["id"] for key in self.ssh_keys}
        if any(key not in known_keys for key in body.get("ssh_keys", [])):
            return "You specified an invalid ssh key for Droplet creation."
        return None

    def _get_droplet(self, request: Request) -> Response:
        with self._state_lock:
            droplet_id = _int(request.params["droplet_id"])
            if droplet_id not in self.droplets:
                return self.not_found(request)
            return Response.json({"droplet": self._droplet_json(droplet_id)})

    def _delete_droplet(self, request: Request) -> Response:
        with self._state_lock:
            if self.droplets.pop(_int(request.params["droplet_id"]), None) is None:
                return self.not_found(request)
        return Response(204)

    def _droplet_json(self, droplet_id: int) -> dict[str, Any]:
        droplet = self.droplets[droplet_id]
        return {key: value for key, value in droplet.items() if key not in ("user_data", "ssh_keys")}

    # Droplet actions.

    def _post_action(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            droplet_id = _int(request.params["droplet_id"])
            droplet = self.droplets.get(droplet_id)
            if droplet is None:
                return self.not_found(request)
            if any(
                a.status == "in-progress" and a.droplet_id == droplet_id and a.type != "create"
                for a in self.actions.values()
            ):
                return _error(422, "unprocessable_entity", "Droplet already has a pending event.")

            effect_or_problem = self._action_effect(droplet, body)
            if isinstance(effect_or_problem, str):
                return _error(422, "unprocessable_entity", effect_or_problem)
            action = self._start_action(body["type"], droplet_id, effect_or_problem)
            return Response.json({"action": action.to_json()}, 201)

    def _action_effect(self, droplet: dict[str, Any], body: dict[str, Any]) -> Callable[[], None] | str:
        """Return what the action does when it completes, or why it is refused."""
        kind = body["type"]

        def set_status(status: str) -> Callable[[], None]:
            return lambda: droplet.update(status=status)

        if kind == "power_on":
            return set_status("active")
        if kind in ("power_off", "shutdown"):
            return set_status("off")
        if kind in ("reboot", "power_cycle"):
            return set_status("active")
        if kind == "rename":
            if not body.get("name"):
                return "name is required to rename a Droplet."
            return lambda: droplet.update(name=body["name"])
        if kind == "rebuild":
            image = self._image(body.get("image"))
            if image is None:
                return "You specified an invalid image to rebuild the Droplet."
            return lambda: droplet.update(image=image, status="active")
        if kind == "resize":
            return self._resize_effect(droplet, body)
        if kind == "snapshot":
            name = body.get("name") or f"{droplet['name']}-{int(time.time())}"
            return lambda: self._add_snapshot(droplet, name)
        return f"The action type {kind} is not supported by this fake."

    def _resize_effect(self, droplet: dict[str, Any], body: dict[str, Any]) -> Callable[[], None] | str:
        size = self._size(body.get("size"))
        if size is None:
            return "You specified an invalid size to resize the Droplet."
        if droplet["status"] != "off":
            return "Droplet must be powered off before resizing."
        if body.get("disk") and size["disk"] < droplet["disk"]:
            return "Droplets with a resized disk cannot be resized to a smaller disk."
        disk = size["disk"] if body.get("disk") else droplet["disk"]
        return lambda: droplet.update(
            size=size, size_slug=size["slug"], memory=size["memory"], vcpus=size["vcpus"], disk=disk
        )

    def _get_action(self, request: Request) -> Response:
        with self._state_lock:
            action = self.actions.get(_int(request.params["action_id"]))
            if action is None:
                return self.not_found(request)
            return Response.json({"action": action.to_json()})

    def _start_action(self, kind: str, droplet_id: int, effect: Callable[[], None] | None) -> _Action:
        action = _Action(next(self._ids), kind, droplet_id, effect, due=time.monotonic() + self.action_seconds)
        self.actions[action.id] = action
        return action

    def _complete_due_actions(self) -> None:
        now = time.monotonic()
        for action in self.actions.values():
            if action.status == "in-progress" and action.due <= now:
                self._complete(action)

    def _complete(self, action: _Action) -> None:
        action.status = "completed"
        action.completed_at = _now()
        if action.effect is not None and action.droplet_id in self.droplets:
            action.effect()

    # Images and snapshots.

    def _image(self, reference: Any) -> dict[str, Any] | None:
        if isinstance(reference, str) and reference in self.public_images:
            return self.public_images[reference]
        if isinstance(reference, int):
            return self.images.get(reference) or next(
                (image for image in self.public_images.values() if image["id"] == reference), None
            )
        return None

    def _add_snapshot(self, droplet: dict[str, Any], name: str) -> None:
        image_id = next(self._ids)
        image = _private_image(image_id, name, "snapshot", "available", size_gigabytes=2.36)
        self.images[image_id] = image
        self.snapshots[image_id] = {
            "id": str(image_id),
            "name": name,
            "created_at": _now(),
            "regions": [droplet["region"]["slug"]],
            "resource_id": str(droplet["id"]),
            "resource_type": "droplet",
            "min_disk_size": droplet["disk"],
            "size_gigabytes": 2.36,
            "tags": [],
        }
        droplet["snapshot_ids"].append(image_id)

    def _list_images(self, request: Request) -> Response:
        with self._state_lock:
            if request.arg("private") == "true":
                images = list(self.images.values())
            elif request.arg("type") == "distribution":
                images = list(self.public_images.values())
            elif request.arg("type") == "application":
                images = []
            else:
                images = list(self.public_images.values()) + list(self.images.values())
            return self._page(request, "images", images)

    def _create_custom_image(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            image_id = next(self._ids)
            self.images[image_id] = _private_image(image_id, body["name"], "custom", "NEW", size_gigabytes=None)
            self.images[image_id]["regions"] = [body["region"]]
            return Response.json({"image": self.images[image_id]}, 202)

    def _get_image(self, request: Request) -> Response:
        with self._state_lock:
            reference = request.params["image_id"]
            image = self._image(int(reference) if reference.isdigit() else reference)
            if image is None:
                return self.not_found(request)
            return Response.json({"image": image})

    def _delete_image(self, request: Request) -> Response:
        with self._state_lock:
            image_id = _int(request.params["image_id"])
            if self.images.pop(image_id, None) is None:
                return self.not_found(request)
            self.snapshots.pop(image_id, None)
        return Response(204)

    def _list_snapshots(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "snapshots", list(self.snapshots.values()))

    # Sizes and SSH keys.

    def _size(self, slug: Any) -> dict[str, Any] | None:
        return next((size for size in self.sizes if size["slug"] == slug), None)

    def _list_sizes(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "sizes", list(self.sizes))

    def _list_ssh_keys(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "ssh_keys", list(self.ssh_keys))

    def _create_ssh_key(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            fingerprint = _md5_fingerprint(body["public_key"])
            if any(key["fingerprint"] == fingerprint for key in self.ssh_keys):
                return _error(422, "unprocessable_entity", "SSH Key is already in use on your account")
            key = {
                "id": next(self._ids),
                "fingerprint": fingerprint,
                "public_key": body["public_key"],
                "name": body["name"],
            }
            self.ssh_keys.append(key)
        return Response.json({"ssh_key": key}, 201)

    # Pagination as the API does it: page/per_page in, links.pages and meta.total out.

    def _page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        per_page = min(int(request.arg("per_page") or DEFAULT_PER_PAGE), self.max_per_page)
        page = int(request.arg("page") or 1)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        pages: dict[str, str] = {}
        if page < last:
            pages["next"] = f"https://api.digitalocean.com{request.path}?page={page + 1}&per_page={per_page}"
            pages["last"] = f"https://api.digitalocean.com{request.path}?page={last}&per_page={per_page}"
        if page > 1:
            pages["first"] = f"https://api.digitalocean.com{request.path}?page=1&per_page={per_page}"
            pages["prev"] = f"https://api.digitalocean.com{request.path}?page={page - 1}&per_page={per_page}"
        return Response.json({key: chunk, "links": {"pages": pages}, "meta": {"total": len(items)}})

    # Test controls.

    def make_active(self, droplet_id: str) -> None:
        """Finish provisioning and every pending action of a droplet."""
        with self._state_lock:
            for action in list(self.actions.values()):
                if action.status == "in-progress" and action.droplet_id == int(droplet_id):
                    self._complete(action)

    def finish_image(self, image_id: str) -> None:
        with self._state_lock:
            image = self.images[int(image_id)]
            image.update(status="available", size_gigabytes=1.5)

    def _activate(self, droplet_id: int) -> None:
        droplet = self.droplets[droplet_id]
        octet = droplet_id % 250 + 1
        droplet["status"] = "active"
        droplet["networks"] = {
            "v4": [
                {
                    "ip_address": f"203.0.113.{octet}",
                    "netmask": "255.255.255.0",
                    "gateway": "203.0.113.1",
                    "type": "public",
                },
                {"ip_address": f"10.10.0.{octet}", "netmask": "255.255.0.0", "gateway": "10.10.0.1", "type": "private"},
            ],
            "v6": [
                {"ip_address": f"2001:db8::{octet:x}", "netmask": 64, "gateway": "2001:db8::1", "type": "public"},
            ],
        }


def _md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _error(status: int, error_id: str, message: str) -> Response:
    return Response.json({"id": error_id, "message": message, "request_id": "fake-request"}, status)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _region(slug: str) -> dict[str, Any]:
    return {
        "name": slug.upper(),
        "slug": slug,
        "features": ["metadata"],
        "available": True,
        "sizes": [],
        "description": slug,
    }


def _size(slug: str, memory: int, vcpus: int, disk: int, transfer_tb: float) -> dict[str, Any]:
    return {
        "slug": slug,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "transfer": transfer_tb,
        "price_monthly": 6.0,
        "price_hourly": 0.00893,
        "regions": list(REGIONS),
        "available": True,
        "description": "Basic",
    }


def _public_image(image_id: int, slug: str, name: str) -> dict[str, Any]:
    image = _private_image(image_id, name, "base", "available", size_gigabytes=2.34)
    image.update(slug=slug, public=True, distribution="Ubuntu")
    return image


def _private_image(image_id: int, name: str, kind: str, status: str, size_gigabytes: float | None) -> dict[str, Any]:
    return {
        "id": image_id,
        "name": name,
        "type": kind,
        "distribution": "Unknown",
        "slug": None,
        "public": False,
        "regions": list(REGIONS),
        "created_at": _now(),
        "min_disk_size": 25,
        "size_gigabytes": size_gigabytes,
        "description": "",
        "tags": [],
        "status": status,
        "error_message": "",
    }
