"""A fake Vultr API v2, the target of the Libcloud backend's tests.

Libcloud's Vultr driver takes `host`, `port` and `secure=False`, so it can be pointed
here. The fake covers the calls that driver makes for instances, plans, OS images and
regions. Like Vultr it requires `Authorization: Bearer <key>` (401 otherwise), returns
errors as {"error": "...", "status": N}, rejects unknown or mistyped fields in request
bodies with 400, and caps `per_page` at 500.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeProvider, Request, Response

API_KEY = "VULTRTESTKEY0123456789ABCDEFGHIJ"
MAX_PER_PAGE = 500

PLANS = [
    {
        "id": "vc2-1c-1gb",
        "vcpu_count": 1,
        "ram": 1024,
        "disk": 25,
        "disk_count": 1,
        "bandwidth": 1024,
        "monthly_cost": 5,
        "type": "vc2",
        "locations": ["ewr", "ams"],
    },
    {
        "id": "vc2-1c-2gb",
        "vcpu_count": 1,
        "ram": 2048,
        "disk": 55,
        "disk_count": 1,
        "bandwidth": 2048,
        "monthly_cost": 10,
        "type": "vc2",
        "locations": ["ewr", "ams"],
    },
]
OPERATING_SYSTEMS = [{"id": 1743, "name": "Ubuntu 22.04 LTS x64", "arch": "x64", "family": "ubuntu"}]
REGIONS = [
    {"id": "ewr", "city": "New Jersey", "country": "US", "continent": "North America", "options": ["ddos_protection"]}
]

# Fields of POST /v2/instances and their JSON types. Vultr documents os_id and app_id as
# integers, but Libcloud's driver sends them as strings (NodeImage keeps ids as str) and
# works against the real API, so numeric strings are accepted too.
CREATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "region": str,
    "plan": str,
    "os_id": (int, str),
    "iso_id": str,
    "snapshot_id": str,
    "app_id": (int, str),
    "image_id": str,
    "label": str,
    "hostname": str,
    "tag": str,
    "user_data": str,
    "enable_ipv6": bool,
    "activation_email": bool,
    "ddos_protection": bool,
    "backups": str,
    "sshkey_id": list,
    "script_id": str,
    "firewall_group_id": str,
    "reserved_ipv4": str,
    "enable_private_network": bool,
    "attach_private_network": list,
    "ipxe_chain_url": str,
}
IMAGE_SOURCES = ("os_id", "iso_id", "snapshot_id", "app_id", "image_id")


def error(message: str, status: int) -> Response:
    return Response.json({"error": message, "status": status}, status)


def page(key: str, items: list[Any]) -> Response:
    return Response.json({key: items, "meta": {"total": len(items), "links": {"next": "", "prev": ""}}})


class FakeVultr(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.instances: dict[str, dict[str, Any]] = {}
        self.user_data: dict[str, str] = {}
        self._suffix = itertools.count(10)

        self.route("GET", "/v2/instances", self._list_instances)
        self.route("POST", "/v2/instances", self._create_instance)
        self.route("POST", "/v2/instances/halt", self._halt_instances)
        self.route("GET", "/v2/instances/{instance_id}", self._get_instance)
        self.route("PATCH", "/v2/instances/{instance_id}", self._update_instance)
        self.route("DELETE", "/v2/instances/{instance_id}", self._delete_instance)
        self.route("POST", "/v2/instances/{instance_id}/start", lambda r: self._power(r, "running"))
        self.route("POST", "/v2/instances/{instance_id}/reboot", lambda r: self._power(r, "running"))
        self.route("GET", "/v2/bare-metals", lambda r: page("bare_metals", []))
        self.route("GET", "/v2/plans", lambda r: page("plans", PLANS))
        self.route("GET", "/v2/plans-metal", lambda r: page("plans_metal", []))
        self.route("GET", "/v2/os", lambda r: page("os", OPERATING_SYSTEMS))
        self.route("GET", "/v2/regions", lambda r: page("regions", REGIONS))

    # Test helpers.

    def make_active(self, instance_id: str) -> None:
        instance = self.instances[instance_id]
        instance.update(status="active", power_status="running", server_status="ok")

    def set_traffic(self, instance_id: str, used_bytes: int) -> None:
        raise AssertionError("the Libcloud backend reads no traffic counters")

    # Checks every request passes before routing.

    def dispatch(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            with self._lock:
                self.requests.append(request)
            return error("Invalid API token.", 401)
        per_page = request.arg("per_page")
        if per_page is not None and (not per_page.isdigit() or not 1 <= int(per_page) <= MAX_PER_PAGE):
            with self._lock:
                self.requests.append(request)
            return error(f"per_page must be between 1 and {MAX_PER_PAGE}", 400)
        return super().dispatch(request)

    def not_found(self, request: Request) -> Response:
        return error("Not found.", 404)

    # Instances.

    def _instance(self, request: Request) -> dict[str, Any] | None:
        return self.instances.get(request.params["instance_id"])

    def _list_instances(self, request: Request) -> Response:
        return page("instances", list(self.instances.values()))

    def _get_instance(self, request: Request) -> Response:
        instance = self._instance(request)
        if instance is None:
            return error("Invalid instance-id.", 404)
        return Response.json({"instance": instance})

    def _create_instance(self, request: Request) -> Response:
        body, problem = _json_object(request)
        if problem:
            return error(problem, 400)
        problem = _check_fields(body, CREATE_FIELDS)
        if problem:
            return error(problem, 400)
        for name in ("region", "plan"):
            if not body.get(name):
                return error(f"Missing required field: {name}", 400)
        if sum(1 for name in IMAGE_SOURCES if name in body) != 1:
            return error("Exactly one of os_id, iso_id, snapshot_id, app_id or image_id is required", 400)
        if body["region"] not in {region["id"] for region in REGIONS}:
            return error("Invalid region.", 400)
        if body["plan"] not in {plan["id"] for plan in PLANS}:
            return error("Invalid plan.", 400)
        if "os_id" in body and str(body["os_id"]) not in {str(item["id"]) for item in OPERATING_SYSTEMS}:
            return error("Invalid os_id.", 400)
        try:
            user_data = base64.b64decode(body.get("user_data", ""), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return error("user_data must be base64 encoded.", 400)

        instance_id = str(uuid.uuid4())
        self.user_data[instance_id] = user_data
        self.instances[instance_id] = self._new_instance(instance_id, body)
        return Response.json({"instance": {**self.instances[instance_id], "default_password": "v#3xample"}}, 202)

    def _update_instance(self, request: Request) -> Response:
        instance = self._instance(request)
        if instance is None:
            return error("Invalid instance-id.", 404)
        body, problem = _json_object(request)
        if problem:
            return error(problem, 400)
        problem = _check_fields(body, {"plan": str, "label": str, "tag": str, "os_id": int})
        if problem:
            return error(problem, 400)
        if "plan" in body:
            plan = next((plan for plan in PLANS if plan["id"] == body["plan"]), None)
            if plan is None:
                return error("Invalid plan.", 400)
            instance.update(plan=plan["id"], ram=plan["ram"], disk=plan["disk"], vcpu_count=plan["vcpu_count"])
        if "label" in body:
            instance["label"] = body["label"]
        return Response.json({"instance": instance}, 202)

    def _delete_instance(self, request: Request) -> Response:
        if self.instances.pop(request.params["instance_id"], None) is None:
            return error("Invalid instance-id.", 404)
        return Response(204)

    def _power(self, request: Request, power_status: str) -> Response:
        instance = self._instance(request)
        if instance is None:
            return error("Invalid instance-id.", 404)
        instance["power_status"] = power_status
        return Response(204)

    def _halt_instances(self, request: Request) -> Response:
        body, problem = _json_object(request)
        if problem:
            return error(problem, 400)
        problem = _check_fields(body, {"instance_ids": list})
        ids = body.get("instance_ids")
        if problem or not ids or not all(isinstance(item, str) for item in ids):
            return error("instance_ids must be a list of instance ids", 400)
        unknown = [item for item in ids if item not in self.instances]
        if unknown:
            return error(f"Invalid instance-id: {unknown[0]}", 404)
        for item in ids:
            self.instances[item]["power_status"] = "stopped"
        return Response(204)

    def _new_instance(self, instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
        plan = next(plan for plan in PLANS if plan["id"] == body["plan"])
        operating_system = next((item for item in OPERATING_SYSTEMS if str(item["id"]) == str(body.get("os_id"))), None)
        suffix = next(self._suffix)
        return {
            "id": instance_id,
            "os": operating_system["name"] if operating_system else "Custom",
            "ram": plan["ram"],
            "disk": plan["disk"],
            "main_ip": f"192.0.2.{suffix}",
            "vcpu_count": plan["vcpu_count"],
            "region": body["region"],
            "plan": plan["id"],
            "date_created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "status": "pending",
            "allowed_bandwidth": plan["bandwidth"],
            "netmask_v4": "255.255.254.0",
            "gateway_v4": "192.0.2.1",
            "power_status": "stopped",
            "server_status": "none",
            "v6_network": "2001:db8:1::" if body.get("enable_ipv6") else "",
            "v6_main_ip": f"2001:db8:1::{suffix}" if body.get("enable_ipv6") else "",
            "v6_network_size": 64 if body.get("enable_ipv6") else 0,
            "label": body.get("label", ""),
            "internal_ip": "",
            "kvm": "",
            "hostname": body.get("hostname", ""),
            "tag": body.get("tag", ""),
            "os_id": int(body.get("os_id", 0)),
            "app_id": int(body.get("app_id", 0)),
            "image_id": body.get("image_id", ""),
            "firewall_group_id": "",
            "features": [],
        }


def _json_object(request: Request) -> tuple[dict[str, Any], str | None]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}, "The request body is not valid JSON."
    if not isinstance(body, dict):
        return {}, "The request body must be a JSON object."
    return body, None


def _check_fields(body: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> str | None:
    for name, value in body.items():
        expected = fields.get(name)
        if expected is None:
            return f"Unknown field: {name}"
        # JSON true/false are bools, which Python also counts as ints.
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            return f"Invalid type for field: {name}"
        if expected == (int, str) and isinstance(value, str) and not value.isdigit():
            return f"Invalid type for field: {name}"
    return None
