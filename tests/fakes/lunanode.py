"""A fake LunaNode API: POST /api/{category}/{action}/ with signed form fields.

Every call is checked as LunaNode documents it. `req` is a JSON object with the `api_id`
and `api_partialkey` (the first 64 characters of the key), `nonce` is Unix time in
seconds, and `signature` is the hex HMAC-SHA512 of "handler|req|nonce" under the whole
key. A nonce further than NONCE_WINDOW_SECONDS from the fake's clock is rejected, so a
captured request replayed later fails. Errors are HTTP 200 with
{"success": "no", "error": "..."}, because LunaNode does not document another status.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeProvider, Request, Response

API_ID = "LNAPIID012345678"
API_KEY = "k" * 32 + "0123456789abcdef" * 6
NONCE_WINDOW_SECONDS = 60
GIB = 1 << 30

# Required and optional parameters per handler, from LunaNode's API reference.
PARAMETERS: dict[str, tuple[set[str], set[str]]] = {
    "vm/create/": (
        {"hostname", "plan_id"},
        {
            "image_id",
            "volume_id",
            "volume_virtio",
            "region",
            "ip",
            "net_id",
            "securitygroups",
            "scripts",
            "key_id",
            "set_password",
            "affinity_group",
        },
    ),
    "vm/info/": ({"vm_id"}, set()),
    "vm/start/": ({"vm_id"}, set()),
    "vm/stop/": ({"vm_id"}, set()),
    "vm/reboot/": ({"vm_id"}, set()),
    "vm/delete/": ({"vm_id"}, set()),
    "vm/reimage/": ({"vm_id", "image_id"}, set()),
    "vm/resize/": ({"vm_id", "plan_id"}, set()),
    "vm/rename/": ({"vm_id", "hostname"}, set()),
    "vm/vnc/": ({"vm_id"}, set()),
    "vm/snapshot/": ({"vm_id", "name"}, set()),
    "vm/iplist/": ({"vm_id"}, set()),
    "image/list/": (set(), {"region"}),
    "image/details/": ({"image_id"}, set()),
    "image/delete/": ({"image_id"}, set()),
    "image/fetch/": ({"region", "name", "location", "format"}, {"virtio"}),
    "plan/list/": (set(), set()),
    "dns/set/": ({"ip", "hostname"}, set()),
    "sshkey/add/": ({"label", "sshkey"}, set()),
    "sshkey/list/": (set(), set()),
    "sshkey/remove/": ({"key_id"}, set()),
}

PLANS = [
    {
        "plan_id": "m.1s",
        "name": "m.1s",
        "vcpu": "1",
        "price": "0.0050",
        "ram": "1024",
        "storage": "20",
        "bandwidth": "1000",
    },
    {
        "plan_id": "m.2",
        "name": "m.2",
        "vcpu": "1",
        "price": "0.0105",
        "ram": "2048",
        "storage": "40",
        "bandwidth": "2000",
    },
]
REGIONS = ("toronto", "montreal", "roubaix")


@dataclass
class FakeVm:
    vm_id: str
    hostname: str
    plan_id: str
    image_id: str
    region: str
    ip: str
    private_ip: str
    key_ids: str = ""
    status: str = "BUILD"
    bandwidth_bytes: int = 0
    reverse: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeImage:
    image_id: str
    name: str
    region: str
    status: str = "queued"
    size: int = 0
    source: str = ""


def reply(**fields: Any) -> Response:
    return Response.json({"success": "yes", **fields})


def failure(message: str) -> Response:
    return Response.json({"success": "no", "error": message})


class FakeLunaNode(FakeProvider):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        # Seconds added to the fake's clock, to age captured requests.
        self.clock_offset = 0
        self.vms: dict[str, FakeVm] = {}
        self.images: dict[str, FakeImage] = {
            "101": FakeImage("101", "Ubuntu 22.04 64-bit (template)", "toronto", "active", 2 * GIB),
        }
        self.ssh_keys: dict[str, dict[str, str]] = {}
        self.rejections: list[str] = []
        self._ids = itertools.count(5001)
        self._state_lock = threading.Lock()
        self.route("POST", "/api/{category}/{action}/", self._call)

    # Test helpers.

    def make_active(self, vm_id: str) -> None:
        self.vms[vm_id].status = "Online"

    def set_traffic(self, vm_id: str, used_bytes: int) -> None:
        self.vms[vm_id].bandwidth_bytes = used_bytes

    def now(self) -> int:
        return int(self.clock()) + self.clock_offset

    # Authentication.

    def _call(self, request: Request) -> Response:
        handler = f"{request.params['category']}/{request.params['action']}/"
        form = request.form()

        problem, params = self._authenticate(handler, form)
        if problem:
            self.rejections.append(problem)
            return failure(problem)

        problem = self._check_parameters(handler, params)
        if problem:
            return failure(problem)

        action = getattr(self, "_" + handler.strip("/").replace("/", "_").replace("-", "_"), None)
        if action is None:
            return failure(f"unknown API action {handler}")
        with self._state_lock:
            return action(params)

    def _authenticate(self, handler: str, form: dict[str, str]) -> tuple[str | None, dict[str, str]]:
        if form.get("handler", handler) != handler:
            return "handler does not match the request path", {}
        raw_request, nonce, signature = form.get("req"), form.get("nonce", ""), form.get("signature", "")
        if not raw_request or not nonce or not signature:
            return "missing req, nonce or signature", {}
        try:
            params = json.loads(raw_request)
        except ValueError:
            return "req is not valid JSON", {}
        if not isinstance(params, dict) or not all(isinstance(value, str) for value in params.values()):
            return "req must be a JSON object of strings", {}

        if params.pop("api_id", None) != API_ID:
            return "invalid API ID", {}
        if params.pop("api_partialkey", None) != API_KEY[:64]:
            return "invalid API partial key", {}
        expected = hmac.new(API_KEY.encode(), f"{handler}|{raw_request}|{nonce}".encode(), hashlib.sha512).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return "invalid signature", {}
        if not nonce.isdigit() or abs(self.now() - int(nonce)) > NONCE_WINDOW_SECONDS:
            return "invalid nonce: it must be the current Unix time in seconds", {}
        return None, params

    def _check_parameters(self, handler: str, params: dict[str, str]) -> str | None:
        required, optional = PARAMETERS.get(handler, (set(), set()))
        missing = sorted(name for name in required if not params.get(name))
        if missing:
            return f"missing required parameter {missing[0]}"
        unknown = sorted(set(params) - required - optional)
        if unknown:
            return f"unknown parameter {unknown[0]}"
        return None

    def _vm(self, params: dict[str, str]) -> FakeVm | None:
        return self.vms.get(params["vm_id"])

    # vm/*

    def _vm_create(self, params: dict[str, str]) -> Response:
        if params["plan_id"] not in {plan["plan_id"] for plan in PLANS}:
            return failure("invalid plan")
        if params.get("image_id") not in self.images:
            return failure("invalid image")
        region = params.get("region", "toronto")
        if region not in REGIONS:
            return failure("invalid region")
        for key_id in filter(None, params.get("key_id", "").split(",")):
            if key_id not in self.ssh_keys:
                return failure(f"invalid key ID {key_id}")

        vm_id = str(next(self._ids))
        suffix = int(vm_id) % 250
        self.vms[vm_id] = FakeVm(
            vm_id=vm_id,
            hostname=params["hostname"],
            plan_id=params["plan_id"],
            image_id=params["image_id"],
            region=region,
            ip=f"198.51.100.{suffix}",
            private_ip=f"10.1.0.{suffix}",
            key_ids=params.get("key_id", ""),
        )
        return reply(vm_id=vm_id)

    def _vm_info(self, params: dict[str, str]) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        addresses = [
            {"addr": vm.ip, "version": "4", "external": "1", "reverse": vm.reverse.get(vm.ip, "")},
            {"addr": vm.private_ip, "version": "4", "external": "0", "reverse": ""},
        ]
        info = {
            "ip": vm.ip,
            "privateip": vm.private_ip,
            "status": f'<font color="green"><b>{vm.status}</b></font>',
            "status_nohtml": vm.status,
            "hostname": vm.hostname,
            "bandwidthUsedGB": f"{vm.bandwidth_bytes / GIB:.2f}",
            "login_details": "username: ubuntu; password: not-a-secret",
            "addresses": addresses,
            "diskswap": "no",
        }
        plan = next(plan for plan in PLANS if plan["plan_id"] == vm.plan_id)
        extra = {
            "vm_id": vm.vm_id,
            "name": vm.hostname,
            "region": vm.region,
            "plan_id": vm.plan_id,
            "hostname": vm.hostname,
            "primaryip": vm.ip,
            "privateip": vm.private_ip,
            "ram": plan["ram"],
            "vcpu": plan["vcpu"],
            "storage": plan["storage"],
            "bandwidth": plan["bandwidth"],
        }
        return reply(info=info, extra=extra)

    def _set_status(self, params: dict[str, str], status: str) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        vm.status = status
        return reply()

    def _vm_start(self, params: dict[str, str]) -> Response:
        return self._set_status(params, "Online")

    def _vm_stop(self, params: dict[str, str]) -> Response:
        return self._set_status(params, "Offline")

    def _vm_reboot(self, params: dict[str, str]) -> Response:
        return self._set_status(params, "Online")

    def _vm_delete(self, params: dict[str, str]) -> Response:
        if self.vms.pop(params["vm_id"], None) is None:
            return failure("VM not found")
        return reply()

    def _vm_reimage(self, params: dict[str, str]) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        if params["image_id"] not in self.images:
            return failure("invalid image")
        vm.image_id = params["image_id"]
        vm.status = "BUILD"
        return reply()

    def _vm_resize(self, params: dict[str, str]) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        if params["plan_id"] not in {plan["plan_id"] for plan in PLANS}:
            return failure("invalid plan")
        vm.plan_id = params["plan_id"]
        return reply()

    def _vm_rename(self, params: dict[str, str]) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        vm.hostname = params["hostname"]
        return reply()

    def _vm_vnc(self, params: dict[str, str]) -> Response:
        if self._vm(params) is None:
            return failure("VM not found")
        return reply(vnc_url=f"https://dynamic.lunanode.com/vnc/?token={params['vm_id']}x")

    def _vm_snapshot(self, params: dict[str, str]) -> Response:
        vm = self._vm(params)
        if vm is None:
            return failure("VM not found")
        image_id = str(next(self._ids))
        self.images[image_id] = FakeImage(image_id, params["name"], vm.region, "saving", source=vm.vm_id)
        return reply(image_id=image_id)

    # image/*, plan/*, dns/*, sshkey/*

    def _image_list(self, params: dict[str, str]) -> Response:
        region = params.get("region")
        images = [image for image in self.images.values() if region in (None, image.region)]
        return reply(images=[self._image_fields(image) for image in images])

    def _image_details(self, params: dict[str, str]) -> Response:
        image = self.images.get(params["image_id"])
        if image is None:
            return failure("image not found")
        return reply(details=self._image_fields(image))

    def _image_delete(self, params: dict[str, str]) -> Response:
        if self.images.pop(params["image_id"], None) is None:
            return failure("image not found")
        return reply()

    def _image_fetch(self, params: dict[str, str]) -> Response:
        if params["format"] not in ("iso", "qcow2"):
            return failure("invalid format")
        if params["region"] not in REGIONS:
            return failure("invalid region")
        image_id = str(next(self._ids))
        self.images[image_id] = FakeImage(
            image_id, params["name"], params["region"], "queued", source=params["location"]
        )
        return reply(image_id=image_id)

    def _plan_list(self, params: dict[str, str]) -> Response:
        return reply(plans=PLANS)

    def _dns_set(self, params: dict[str, str]) -> Response:
        for vm in self.vms.values():
            if vm.ip == params["ip"]:
                vm.reverse[vm.ip] = params["hostname"]
                return reply()
        return failure("IP address not found on your account")

    def _sshkey_add(self, params: dict[str, str]) -> Response:
        key_id = str(next(self._ids))
        self.ssh_keys[key_id] = {"id": key_id, "name": params["label"], "value": params["sshkey"]}
        return reply()

    def _sshkey_list(self, params: dict[str, str]) -> Response:
        return reply(sshkeys=list(self.ssh_keys.values()))

    def _sshkey_remove(self, params: dict[str, str]) -> Response:
        if self.ssh_keys.pop(params["key_id"], None) is None:
            return failure("SSH key not found")
        return reply()

    @staticmethod
    def _image_fields(image: FakeImage) -> dict[str, str]:
        return {
            "image_id": image.image_id,
            "name": image.name,
            "status": image.status,
            "size": str(image.size),
            "region": image.region,
        }
