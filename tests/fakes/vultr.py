"""A local stand-in for the Vultr API v2, for backend tests.

Vultr publishes no OpenAPI document that may be copied here, so each JSON body and
query is checked against a JSON Schema written from Vultr's API reference. The fake is
stricter than Vultr in one way: unknown body fields are rejected, so a misspelt field
cannot pass unnoticed. Every request needs `Authorization: Bearer <api key>`; errors
use Vultr's `{"error": ..., "status": ...}` body. Rejections are kept in `rejections`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jsonschema

from tests.fakes.server import FakeProvider, Request, Response

API_KEY = "VULTRFAKEAPIKEY0123456789ABCDEFGHIJ"
REGIONS = ("ewr", "ord", "ams", "fra", "nrt")
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500
TRANSITION_SECONDS = 0.05
IMAGE_SOURCES = ("os_id", "iso_id", "snapshot_id", "app_id", "image_id")

_STRINGS = {"type": "array", "items": {"type": "string"}}

# Request bodies, from the Vultr API v2 reference (instances and snapshots sections).
BODY_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v2/instances"): {
        "type": "object",
        "required": ["region", "plan"],
        "additionalProperties": False,
        "properties": {
            "region": {"type": "string"},
            "plan": {"type": "string"},
            "os_id": {"type": "integer"},
            "iso_id": {"type": "string"},
            "snapshot_id": {"type": "string"},
            "app_id": {"type": "integer"},
            "image_id": {"type": "string"},
            "ipxe_chain_url": {"type": "string"},
            "script_id": {"type": "string"},
            "enable_ipv6": {"type": "boolean"},
            "disable_public_ipv4": {"type": "boolean"},
            "attach_vpc": _STRINGS,
            "enable_vpc": {"type": "boolean"},
            "vpc_only": {"type": "boolean"},
            "sshkey_id": _STRINGS,
            "backups": {"enum": ["enabled", "disabled"]},
            "ddos_protection": {"type": "boolean"},
            "user_data": {"type": "string"},
            "reserved_ipv4": {"type": "string"},
            "activation_email": {"type": "boolean"},
            "hostname": {"type": "string"},
            "label": {"type": "string"},
            "tags": _STRINGS,
            "firewall_group_id": {"type": "string"},
            "user_scheme": {"enum": ["root", "limited"]},
            "app_variables": {"type": "object"},
        },
    },
    ("PATCH", "/v2/instances/{id}"): {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "app_id": {"type": "integer"},
            "image_id": {"type": "string"},
            "backups": {"enum": ["enabled", "disabled"]},
            "firewall_group_id": {"type": "string"},
            "enable_ipv6": {"type": "boolean"},
            "os_id": {"type": "integer"},
            "user_data": {"type": "string"},
            "plan": {"type": "string"},
            "ddos_protection": {"type": "boolean"},
            "attach_vpc": _STRINGS,
            "detach_vpc": _STRINGS,
            "enable_vpc": {"type": "boolean"},
            "label": {"type": "string"},
            "tags": _STRINGS,
            "user_scheme": {"enum": ["root", "limited"]},
        },
    },
    ("POST", "/v2/instances/{id}/restore"): {
        "type": "object",
        "additionalProperties": False,
        "properties": {"backup_id": {"type": "string"}, "snapshot_id": {"type": "string"}},
        "minProperties": 1,
        "maxProperties": 1,
    },
    ("POST", "/v2/instances/{id}/ipv4/reverse"): {
        "type": "object",
        "required": ["ip", "reverse"],
        "additionalProperties": False,
        "properties": {"ip": {"type": "string"}, "reverse": {"type": "string"}},
    },
    ("POST", "/v2/instances/{id}/ipv6/reverse"): {
        "type": "object",
        "required": ["ip", "reverse"],
        "additionalProperties": False,
        "properties": {"ip": {"type": "string"}, "reverse": {"type": "string"}},
    },
    ("POST", "/v2/snapshots"): {
        "type": "object",
        "required": ["instance_id"],
        "additionalProperties": False,
        "properties": {"instance_id": {"type": "string"}, "description": {"type": "string"}},
    },
    ("POST", "/v2/snapshots/create-from-url"): {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {"url": {"type": "string"}, "description": {"type": "string"}, "uefi": {"enum": ["yes", "no"]}},
    },
}
# Query parameters each list call accepts, with their JSON Schema after conversion to int.
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
    "cursor": {"type": "string"},
    "date_range": {"type": "integer", "minimum": 1, "maximum": 180},
    "type": {"type": "string"},
}


class FakeVultr(FakeProvider):
    """Vultr instances, addresses, bandwidth, snapshots and plans in memory."""

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
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
            self.max_per_page = MAX_PER_PAGE
            self.today = datetime.now(UTC).date()
            self.rejections: list[tuple[Request, str]] = []
            self.instances: dict[str, dict[str, Any]] = {}
            self.user_data: dict[str, str] = {}
            self.reverse: dict[str, str] = {}
            self.bandwidth: dict[str, dict[str, dict[str, int]]] = {}
            self.snapshots: dict[str, dict[str, Any]] = {}
            self.os_ids = {2136: "Debian 12 x64 (bookworm)", 2284: "Ubuntu 24.04 LTS x64"}
            # The /os list: the installable systems above, plus the entries Vultr lists
            # for custom ISOs and restores, which install no system of their own.
            self.operating_systems = [
                {"id": 2136, "name": self.os_ids[2136], "arch": "x64", "family": "debian"},
                {"id": 2284, "name": self.os_ids[2284], "arch": "x64", "family": "ubuntu"},
                {"id": 159, "name": "Custom", "arch": "x64", "family": "iso"},
                {"id": 164, "name": "Snapshot", "arch": "x64", "family": "snapshot"},
            ]
            self.plans = [_plan("vc2-1c-1gb", 1, 1024, 25, 1024), _plan("vc2-1c-2gb", 1, 2048, 55, 2048)]
            self._transitions: list[tuple[float, str, Callable[[dict[str, Any]], None]]] = []
            self._octets = itertools.count(10)

    # Authentication and validation come before routing.

    def dispatch(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._reject(request, 401, "Invalid API token.")

        problem = self._request_problem(request)
        if problem:
            return self._reject(request, 400, problem)

        with self._state_lock:
            self._finish_due_transitions()
        return super().dispatch(request)

    def not_found(self, request: Request) -> Response:
        return _error(404, "Not found.")

    def _request_problem(self, request: Request) -> str | None:
        for name, values in request.query.items():
            schema = QUERY_SCHEMAS.get(name)
            if schema is None:
                return f"unknown query parameter {name}"
            value: Any = values[-1]
            if schema["type"] == "integer":
                if not value.lstrip("-").isdigit():
                    return f"query parameter {name} must be an integer"
                value = int(value)
            try:
                jsonschema.validate(value, schema)
            except jsonschema.ValidationError as exc:
                return f"query parameter {name}: {exc.message}"

        schema = BODY_SCHEMAS.get((request.method, _template(request.path)))
        if schema is None:
            return "this request takes no body" if request.body else None
        try:
            jsonschema.validate(json.loads(request.body or b"null"), schema)
        except ValueError:
            return "the request body is not valid JSON"
        except jsonschema.ValidationError as exc:
            where = ".".join(str(part) for part in exc.absolute_path) or "body"
            return f"{where}: {exc.message}"
        return None

    def _reject(self, request: Request, status: int, message: str) -> Response:
        with self._lock:
            self.requests.append(request)
            self.rejections.append((request, message))
        return _error(status, message)

    def _register_routes(self) -> None:
        self.route("POST", "/v2/instances", self._create_instance)
        self.route("GET", "/v2/instances/{id}", self._get_instance)
        self.route("PATCH", "/v2/instances/{id}", self._update_instance)
        self.route("DELETE", "/v2/instances/{id}", self._delete_instance)
        self.route("POST", "/v2/instances/{id}/start", self._power("running"))
        self.route("POST", "/v2/instances/{id}/halt", self._power("stopped"))
        self.route("POST", "/v2/instances/{id}/reboot", self._power("running"))
        self.route("POST", "/v2/instances/{id}/restore", self._restore)
        self.route("GET", "/v2/instances/{id}/bandwidth", self._bandwidth)
        self.route("GET", "/v2/instances/{id}/ipv4", self._list_ipv4)
        self.route("GET", "/v2/instances/{id}/ipv6", self._list_ipv6)
        self.route("GET", "/v2/instances/{id}/ipv6/reverse", self._list_reverse_ipv6)
        self.route("POST", "/v2/instances/{id}/ipv4/reverse", self._set_reverse)
        self.route("POST", "/v2/instances/{id}/ipv6/reverse", self._set_reverse)
        self.route("GET", "/v2/snapshots", self._list_snapshots)
        self.route("POST", "/v2/snapshots", self._create_snapshot)
        self.route("POST", "/v2/snapshots/create-from-url", self._create_snapshot_from_url)
        self.route("GET", "/v2/snapshots/{id}", self._get_snapshot)
        self.route("DELETE", "/v2/snapshots/{id}", self._delete_snapshot)
        self.route("GET", "/v2/plans", self._list_plans)
        self.route("GET", "/v2/os", self._list_operating_systems)

    # Instances.

    def _create_instance(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            problem = self._create_problem(body)
            if problem:
                return _error(400, problem)

            instance_id = str(uuid.uuid4())
            plan = self._plan(body["plan"])
            self.instances[instance_id] = {
                "id": instance_id,
                "os": self.os_ids.get(body.get("os_id"), "Snapshot"),
                "ram": plan["ram"],
                "disk": plan["disk"],
                "main_ip": "0.0.0.0",
                "vcpu_count": plan["vcpu_count"],
                "region": body["region"],
                "plan": plan["id"],
                "date_created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "status": "pending",
                "allowed_bandwidth": plan["bandwidth"],
                "netmask_v4": "",
                "gateway_v4": "0.0.0.0",
                "power_status": "running",
                "server_status": "none",
                "v6_network": "",
                "v6_main_ip": "",
                "v6_network_size": 0,
                "label": body.get("label", ""),
                "internal_ip": "",
                "kvm": "",
                "hostname": body.get("hostname", ""),
                "os_id": body.get("os_id", 0),
                "app_id": 0,
                "image_id": "",
                "firewall_group_id": "",
                "features": [],
                "tags": body.get("tags", []),
                "user_scheme": "root",
            }
            self.user_data[instance_id] = base64.b64decode(body["user_data"]).decode() if "user_data" in body else ""
            self.bandwidth[instance_id] = {}
            created = {**self.instances[instance_id], "default_password": "v#8Fake9Password"}
        return Response.json({"instance": created}, 202)

    def _create_problem(self, body: dict[str, Any]) -> str | None:
        sources = [field for field in IMAGE_SOURCES if field in body]
        if len(sources) != 1:
            return "Exactly one of os_id, iso_id, snapshot_id, app_id or image_id is required."
        if body["region"] not in REGIONS:
            return "Invalid region."
        if self._plan(body["plan"]) is None:
            return "Invalid plan."
        if "os_id" in body and body["os_id"] not in self.os_ids:
            return "Invalid operating system."
        if "snapshot_id" in body and self.snapshots.get(body["snapshot_id"], {}).get("status") != "complete":
            return "Invalid snapshot."
        if "user_data" in body and not _is_base64(body["user_data"]):
            return "user_data must be base64 encoded."
        return None

    def _get_instance(self, request: Request) -> Response:
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            return Response.json({"instance": instance}) if instance else self.not_found(request)

    def _update_instance(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            if "plan" in body:
                plan = self._plan(body["plan"])
                if plan is None:
                    return _error(400, "Invalid plan.")
                if plan["disk"] < instance["disk"]:
                    return _error(400, "Unable to change plan: the new plan must be larger than the current one.")
                instance.update(
                    status="resizing",
                    plan=plan["id"],
                    ram=plan["ram"],
                    disk=plan["disk"],
                    vcpu_count=plan["vcpu_count"],
                )
                self._schedule(instance["id"], lambda item: item.update(status="active"), due=float("inf"))
            if "os_id" in body:
                if body["os_id"] not in self.os_ids:
                    return _error(400, "Invalid operating system.")
                instance.update(os_id=body["os_id"], os=self.os_ids[body["os_id"]], server_status="installingbooting")
                self._schedule(instance["id"], lambda item: item.update(server_status="ok"), due=float("inf"))
            if "user_data" in body:
                if not _is_base64(body["user_data"]):
                    return _error(400, "user_data must be base64 encoded.")
                self.user_data[instance["id"]] = base64.b64decode(body["user_data"]).decode()
            if "label" in body:
                instance["label"] = body["label"]
            if "tags" in body:
                instance["tags"] = body["tags"]
            return Response.json({"instance": instance}, 202)

    def _delete_instance(self, request: Request) -> Response:
        with self._state_lock:
            if self.instances.pop(request.params["id"], None) is None:
                return self.not_found(request)
        return Response(204)

    def _power(self, power_status: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            with self._state_lock:
                instance = self.instances.get(request.params["id"])
                if instance is None:
                    return self.not_found(request)
                self._schedule(instance["id"], lambda item: item.update(power_status=power_status))
            return Response(204)

        return handle

    def _restore(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            if self.snapshots.get(body.get("snapshot_id", ""), {}).get("status") != "complete":
                return _error(400, "Invalid snapshot.")
            instance["server_status"] = "installingbooting"
            self._schedule(instance["id"], lambda item: item.update(server_status="ok"), due=float("inf"))
            return Response.json(
                {"status": {"restore_type": "snapshot_id", "restore_id": body["snapshot_id"], "status": "restoring"}},
                202,
            )

    # Addresses and bandwidth.

    def _list_ipv4(self, request: Request) -> Response:
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            ips = []
            if instance["main_ip"] != "0.0.0.0":
                ip = instance["main_ip"]
                ips.append(
                    {
                        "ip": ip,
                        "netmask": "255.255.254.0",
                        "gateway": instance["gateway_v4"],
                        "type": "main_ip",
                        "reverse": self.reverse.get(ip, f"{ip}.vultrusercontent.com"),
                    }
                )
            return self._page(request, "ipv4s", ips)

    def _list_ipv6(self, request: Request) -> Response:
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            ips = []
            if instance["v6_main_ip"]:
                ips.append(
                    {
                        "ip": instance["v6_main_ip"],
                        "network": instance["v6_network"],
                        "network_size": 64,
                        "type": "main_ip",
                    }
                )
            return self._page(request, "ipv6s", ips)

    def _list_reverse_ipv6(self, request: Request) -> Response:
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            v6 = instance["v6_main_ip"]
            entries = [{"ip": v6, "reverse": self.reverse[v6]}] if v6 in self.reverse else []
            return Response.json({"reverse_ipv6s": entries})

    def _set_reverse(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(request.params["id"])
            if instance is None:
                return self.not_found(request)
            if body["ip"] not in (instance["main_ip"], instance["v6_main_ip"]):
                return _error(400, "Invalid IP address.")
            self.reverse[body["ip"]] = body["reverse"]
        return Response(204)

    def _bandwidth(self, request: Request) -> Response:
        with self._state_lock:
            instance_id = request.params["id"]
            if instance_id not in self.instances:
                return self.not_found(request)
            days = int(request.arg("date_range") or 30)
            first = (self.today - timedelta(days=days - 1)).isoformat()
            per_day = {
                day: usage
                for day, usage in sorted(self.bandwidth[instance_id].items())
                if first <= day <= self.today.isoformat()
            }
            return Response.json({"bandwidth": per_day})

    # Snapshots and plans.

    def _create_snapshot(self, request: Request) -> Response:
        body = request.json()
        with self._state_lock:
            instance = self.instances.get(body["instance_id"])
            if instance is None:
                return _error(400, "Invalid instance_id.")
            snapshot = self._add_snapshot(body.get("description", ""), instance["os_id"], size=instance["disk"] * 10**9)
        return Response.json({"snapshot": snapshot}, 201)

    def _create_snapshot_from_url(self, request: Request) -> Response:
        body = request.json()
        if not body["url"].startswith(("http://", "https://")):
            return _error(400, "Invalid URL.")
        with self._state_lock:
            snapshot = self._add_snapshot(body.get("description", ""), 0, size=0)
        return Response.json({"snapshot": snapshot}, 201)

    def _add_snapshot(self, description: str, os_id: int, size: int) -> dict[str, Any]:
        snapshot = {
            "id": str(uuid.uuid4()),
            "date_created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "description": description,
            "size": size,
            "compressed_size": size // 3,
            "status": "pending",
            "os_id": os_id,
            "app_id": 0,
        }
        self.snapshots[snapshot["id"]] = snapshot
        return snapshot

    def _list_snapshots(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "snapshots", list(self.snapshots.values()))

    def _get_snapshot(self, request: Request) -> Response:
        with self._state_lock:
            snapshot = self.snapshots.get(request.params["id"])
            return Response.json({"snapshot": snapshot}) if snapshot else self.not_found(request)

    def _delete_snapshot(self, request: Request) -> Response:
        with self._state_lock:
            if self.snapshots.pop(request.params["id"], None) is None:
                return self.not_found(request)
        return Response(204)

    def _plan(self, plan_id: Any) -> dict[str, Any] | None:
        return next((plan for plan in self.plans if plan["id"] == plan_id), None)

    def _list_plans(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "plans", list(self.plans))

    def _list_operating_systems(self, request: Request) -> Response:
        with self._state_lock:
            return self._page(request, "os", list(self.operating_systems))

    # Cursor pagination: the cursor is an opaque token, here the base64 of an offset.

    def _page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        per_page = min(int(request.arg("per_page") or DEFAULT_PER_PAGE), self.max_per_page)
        cursor = request.arg("cursor")
        try:
            offset = int(base64.b64decode(cursor).decode().removeprefix("next__")) if cursor else 0
        except (binascii.Error, ValueError):
            return _error(400, "Invalid cursor.")
        chunk = items[offset : offset + per_page]
        after = offset + per_page
        links = {
            "next": base64.b64encode(f"next__{after}".encode()).decode() if after < len(items) else "",
            "prev": base64.b64encode(f"next__{max(0, offset - per_page)}".encode()).decode() if offset else "",
        }
        return Response.json({key: chunk, "meta": {"total": len(items), "links": links}})

    # Asynchronous state changes.

    def _schedule(self, instance_id: str, effect: Callable[[dict[str, Any]], None], due: float | None = None) -> None:
        self._transitions.append(
            (due if due is not None else time.monotonic() + self.transition_seconds, instance_id, effect)
        )

    def _finish_due_transitions(self, instance_id: str | None = None) -> None:
        now = time.monotonic()
        remaining = []
        for due, target, effect in self._transitions:
            if (due <= now or target == instance_id) and target in self.instances:
                effect(self.instances[target])
            elif target in self.instances:
                remaining.append((due, target, effect))
        self._transitions = remaining

    # Test controls.

    def make_active(self, instance_id: str) -> None:
        """Finish installation and every pending state change of an instance."""
        with self._state_lock:
            instance = self.instances[instance_id]
            self._finish_due_transitions(instance_id)
            if instance["status"] == "pending":
                octet = next(self._octets)
                instance.update(
                    status="active",
                    server_status="ok",
                    power_status="running",
                    main_ip=f"192.0.2.{octet}",
                    gateway_v4="192.0.2.1",
                    netmask_v4="255.255.254.0",
                    v6_main_ip=f"2001:db8:1000::{octet:x}",
                    v6_network="2001:db8:1000::",
                    v6_network_size=64,
                    kvm=f"https://my.vultr.com/subs/vps/novnc/api.php?data={uuid.uuid4().hex}",
                )

    def set_traffic(self, instance_id: str, total_bytes: int) -> None:
        """Make this month's bandwidth total `total_bytes`, all of it on `today`."""
        with self._state_lock:
            month = self.today.strftime("%Y-%m")
            days = self.bandwidth[instance_id]
            for day in [day for day in days if day.startswith(month)]:
                del days[day]
            days[self.today.isoformat()] = {
                "incoming_bytes": total_bytes // 4,
                "outgoing_bytes": total_bytes - total_bytes // 4,
            }

    def set_day_traffic(self, instance_id: str, day: date, incoming: int, outgoing: int) -> None:
        with self._state_lock:
            self.bandwidth[instance_id][day.isoformat()] = {"incoming_bytes": incoming, "outgoing_bytes": outgoing}

    def finish_snapshots(self) -> None:
        with self._state_lock:
            for snapshot in self.snapshots.values():
                snapshot["status"] = "complete"


def _template(path: str) -> str:
    """Return the route template of a request path, for the body schema lookup."""
    parts = path.split("/")
    if len(parts) > 3 and parts[2] in ("instances", "snapshots") and parts[3] not in ("create-from-url",):
        parts[3] = "{id}"
    return "/".join(parts)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    return True


def _error(status: int, message: str) -> Response:
    return Response.json({"error": message, "status": status}, status)


def _plan(plan_id: str, vcpus: int, ram: int, disk: int, bandwidth: int) -> dict[str, Any]:
    return {
        "id": plan_id,
        "vcpu_count": vcpus,
        "ram": ram,
        "disk": disk,
        "disk_count": 1,
        "bandwidth": bandwidth,
        "monthly_cost": 5,
        "type": "vc2",
        "locations": list(REGIONS),
    }
