"""A fake CloudStack management server: the /client/api endpoint with signed requests.

It verifies signatures the way CloudStack's ApiServer.verifyRequest does (sorted parameter
names, values encoded like java.net.URLEncoder, lower-cased, HMAC-SHA1, base64, plus the expiry
of signature version 3) and rejects a bad one with CloudStack's 401 error JSON. Asynchronous
commands return a job id; a job finishes after `polls_per_job` queryAsyncJobResult calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeProvider, Request, Response

API_KEY = "pZ4qkq1xR2mTz8_Lobster-Test-Api-Key-7b2f"
SECRET_KEY = "Xq9-Lobster-Test-Secret-Key_3c8e1a5d0f"

ZONE_ID = "1f0c2e5a-5b7d-4c4e-9a3b-6d8e0f1a2b3c"
NETWORK_ID = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
SMALL_OFFERING_ID = "b1e0f7a2-0000-4000-8000-000000000001"
MEDIUM_OFFERING_ID = "b1e0f7a2-0000-4000-8000-000000000002"
CUSTOM_OFFERING_ID = "b1e0f7a2-0000-4000-8000-000000000099"
UBUNTU_TEMPLATE_ID = "c2d3e4f5-0000-4000-8000-000000000001"
DEBIAN_TEMPLATE_ID = "c2d3e4f5-0000-4000-8000-000000000002"
LINUX_OS_TYPE_ID = "d4e5f6a7-0000-4000-8000-000000000001"
PASSWORD_BYTES = 9

# java.net.URLEncoder leaves these bytes unencoded.
JAVA_UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")
UNVERIFIED = "unable to verify user credentials and/or request signature"
TEMPLATE_FORMATS = {"QCOW2", "RAW", "VHD", "VHDX", "OVA", "VMDK", "ISO", "TAR", "BAREMETAL"}
TEMPLATE_FILTERS = {"featured", "self", "selfexecutable", "sharedexecutable", "executable", "community"}
HOSTNAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]$")

# CloudStack's class names appear in the `cmd` field of job responses.
COMMAND_CLASSES = {
    "deployVirtualMachine": "org.apache.cloudstack.api.command.user.vm.DeployVMCmd",
    "destroyVirtualMachine": "org.apache.cloudstack.api.command.user.vm.DestroyVMCmd",
    "startVirtualMachine": "org.apache.cloudstack.api.command.user.vm.StartVMCmd",
    "stopVirtualMachine": "org.apache.cloudstack.api.command.user.vm.StopVMCmd",
    "rebootVirtualMachine": "org.apache.cloudstack.api.command.user.vm.RebootVMCmd",
    "restoreVirtualMachine": "org.apache.cloudstack.api.command.user.vm.RestoreVMCmd",
    "scaleVirtualMachine": "org.apache.cloudstack.api.command.user.vm.ScaleVMCmd",
    "createSnapshot": "org.apache.cloudstack.api.command.user.snapshot.CreateSnapshotCmd",
    "deleteSnapshot": "org.apache.cloudstack.api.command.user.snapshot.DeleteSnapshotCmd",
    "createTemplate": "org.apache.cloudstack.api.command.user.template.CreateTemplateCmd",
    "deleteTemplate": "org.apache.cloudstack.api.command.user.template.DeleteTemplateCmd",
}


class ApiFailure(Exception):
    """Raised inside a command handler; becomes CloudStack's error JSON."""

    def __init__(self, status: int, text: str, cs_code: int = 4350) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.cs_code = cs_code


@dataclass
class Vm:
    id: str
    name: str
    displayname: str
    state: str
    serviceofferingid: str
    templateid: str
    created: str
    ipaddress: str
    ip6address: str
    userdata: str | None
    kib_read: int | None = None
    kib_write: int | None = None


@dataclass
class Template:
    id: str
    name: str
    ostypeid: str
    isready: bool
    status: str
    own: bool
    size: int = 0
    format: str = "QCOW2"
    url: str | None = None
    reads_until_ready: int = 0
    # A password-enabled template gets a new password at deploy and restore, returned
    # in the job result.
    passwordenabled: bool = False


@dataclass
class Job:
    id: str
    command: str
    vm_id: str | None
    finish: Callable[[], dict[str, Any]]
    polls_left: int
    failure: str | None = None
    on_failure: Callable[[], None] | None = None
    status: int = 0
    result: dict[str, Any] = field(default_factory=dict)


class FakeCloudStack(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""
        self.polls_per_job = 2
        self.hold_jobs = False

        self.vms: dict[str, Vm] = {}
        self.expunged: set[str] = set()
        self.volumes: dict[str, str] = {}  # volume id -> VM id
        self.snapshots: dict[str, str] = {}  # snapshot id -> state
        self.jobs: dict[str, Job] = {}
        self.offerings = {
            SMALL_OFFERING_ID: {
                "id": SMALL_OFFERING_ID,
                "name": "Small",
                "cpunumber": 1,
                "cpuspeed": 2000,
                "memory": 2048,
                "rootdisksize": 20,
            },
            MEDIUM_OFFERING_ID: {
                "id": MEDIUM_OFFERING_ID,
                "name": "Medium",
                "cpunumber": 2,
                "cpuspeed": 2000,
                "memory": 4096,
            },
            CUSTOM_OFFERING_ID: {"id": CUSTOM_OFFERING_ID, "name": "Custom", "iscustomized": True},
        }
        self.templates = {
            UBUNTU_TEMPLATE_ID: Template(
                UBUNTU_TEMPLATE_ID, "Ubuntu 24.04", LINUX_OS_TYPE_ID, True, "Download Complete", False, 2_361_393_152
            ),
            DEBIAN_TEMPLATE_ID: Template(
                DEBIAN_TEMPLATE_ID,
                "Debian 12",
                LINUX_OS_TYPE_ID,
                True,
                "Download Complete",
                False,
                2_147_483_648,
                passwordenabled=True,
            ),
        }

        self._hosts = itertools.count(10)
        self._next_job_failure: str | None = None
        self._state_lock = threading.RLock()

        self._commands: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "listVirtualMachines": self._list_vms,
            "deployVirtualMachine": self._deploy_vm,
            "destroyVirtualMachine": self._destroy_vm,
            "startVirtualMachine": self._start_vm,
            "stopVirtualMachine": self._stop_vm,
            "rebootVirtualMachine": self._reboot_vm,
            "restoreVirtualMachine": self._restore_vm,
            "scaleVirtualMachine": self._scale_vm,
            "changeServiceForVirtualMachine": self._change_service,
            "updateVirtualMachine": self._update_vm,
            "listVolumes": self._list_volumes,
            "createSnapshot": self._create_snapshot,
            "deleteSnapshot": self._delete_snapshot,
            "createTemplate": self._create_template,
            "registerTemplate": self._register_template,
            "listTemplates": self._list_templates,
            "deleteTemplate": self._delete_template,
            "listServiceOfferings": self._list_offerings,
            "queryAsyncJobResult": self._query_job,
        }

        self.route("GET", "/client/api", self._api)
        self.route("POST", "/client/api", self._api)

    def start(self) -> str:
        self.base_url = super().start()
        return self.base_url

    # Test controls.

    def complete_vm(self, vm_id: str) -> None:
        """Finish every pending job of the VM now, as if the hypervisor were instant."""
        with self._state_lock:
            for job in self.jobs.values():
                if job.vm_id == vm_id and job.status == 0:
                    self._finish_job(job)

    def set_traffic(self, vm_id: str, total_bytes: int) -> None:
        """Set the VM's accumulated network statistics, split between read and write, in KiB."""
        with self._state_lock:
            total_kib = total_bytes // 1024
            vm = self.vms[vm_id]
            vm.kib_read = total_kib // 3
            vm.kib_write = total_kib - vm.kib_read

    def fail_next_job(self, errortext: str) -> None:
        """Make the next job created end with jobstatus 2 and this error text."""
        with self._state_lock:
            self._next_job_failure = errortext

    def commands(self) -> list[str]:
        return [command_of(r) for r in self.requests]

    # Request handling.

    def _api(self, request: Request) -> Response:
        params = _params(request)
        command = params.get("command", "")

        if not self._verify_request(params):
            return _error(command, 401, UNVERIFIED, 9999)
        if params.get("response") != "json":
            return Response.text(f'<?xml version="1.0" encoding="UTF-8"?><{command.lower()}response/>', 200, "text/xml")

        with self._state_lock:
            try:
                body = self._commands[command](params)
            except ApiFailure as failure:
                return _error(command, failure.status, failure.text, failure.cs_code)
        return Response.json({f"{command.lower()}response": body})

    def _verify_request(self, params: dict[str, str]) -> bool:
        """Check the request as CloudStack's ApiServer.verifyRequest does."""
        if params.get("command") not in self._commands:
            return False

        signature = api_key = version = expires = None
        pairs = []
        for name in sorted(params):
            value = params[name]
            lowered = name.lower()
            if lowered == "signature":
                signature = value
                continue
            if lowered == "apikey":
                api_key = value
            elif lowered == "signatureversion":
                version = value
            elif lowered == "expires":
                expires = value
            pairs.append(f"{name}={_java_encode(value)}")
        if signature is None or api_key is None:
            return False

        if version == "3":
            expires_at = _parse_expires(expires)
            if expires_at is None or expires_at < datetime.now(UTC):
                return False
        if api_key != API_KEY:
            return False

        digest = hmac.new(SECRET_KEY.encode(), "&".join(pairs).lower().encode(), hashlib.sha1).digest()
        return hmac.compare_digest(signature, base64.b64encode(digest).decode())

    # Virtual machines.

    def _list_vms(self, params: dict[str, str]) -> dict[str, Any]:
        vm_id = params.get("id")
        if vm_id is None:
            vms = list(self.vms.values())
        elif vm_id in self.vms:
            vms = [self.vms[vm_id]]
        elif vm_id in self.expunged:
            return {}
        else:
            raise _entity_missing("listvirtualmachines", "id", vm_id)
        if not vms:
            return {}
        details = params.get("details", "all")
        with_stats = "all" in details or "stats" in details
        return {"count": len(vms), "virtualmachine": [self._vm_view(vm, with_stats) for vm in vms]}

    def _deploy_vm(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "deployvirtualmachine", "serviceofferingid", "templateid", "zoneid")
        offering_id = params["serviceofferingid"]
        if offering_id not in self.offerings:
            raise _entity_missing("deployvirtualmachine", "serviceofferingid", offering_id)
        template = self.templates.get(params["templateid"])
        if template is None:
            raise _entity_missing("deployvirtualmachine", "templateid", params["templateid"])
        if not template.isready:
            raise ApiFailure(431, f"Template {template.id} has not been completely downloaded to zone {ZONE_ID}")
        if params["zoneid"] != ZONE_ID:
            raise _entity_missing("deployvirtualmachine", "zoneid", params["zoneid"])
        if params.get("networkids") not in (None, NETWORK_ID):
            raise _entity_missing("deployvirtualmachine", "networkids", params["networkids"])
        if "name" in params and not HOSTNAME.match(params["name"]):
            raise ApiFailure(
                431,
                "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't start with digit",
            )
        userdata = params.get("userdata")
        if userdata is not None:
            try:
                base64.b64decode(userdata, validate=True)
            except (binascii.Error, ValueError):
                raise ApiFailure(431, "User data is not base64 encoded") from None

        host = next(self._hosts)
        vm_id = str(uuid.uuid4())
        vm = Vm(
            id=vm_id,
            name=params.get("name") or f"VM-{vm_id}",
            displayname=params.get("displayname") or params.get("name") or f"VM-{vm_id}",
            state="Starting",
            serviceofferingid=offering_id,
            templateid=template.id,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            ipaddress=f"203.0.113.{host}",
            ip6address=f"2001:db8:20::{host:x}",
            userdata=userdata,
        )
        self.vms[vm.id] = vm
        self.volumes[str(uuid.uuid4())] = vm.id

        def finish() -> dict[str, Any]:
            vm.state = "Running"
            return {"virtualmachine": self._vm_view(vm, False, with_password=template.passwordenabled)}

        def fail() -> None:
            vm.state = "Error"

        job = self._new_job("deployVirtualMachine", vm.id, finish, on_failure=fail)
        return {"id": vm.id, "jobid": job.id}

    def _destroy_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "destroyvirtualmachine")
        if vm.state in ("Destroyed", "Expunging"):
            raise ApiFailure(431, "Unable to find a virtual machine with specified vmId")
        expunge = params.get("expunge") == "true"

        def finish() -> dict[str, Any]:
            if expunge:
                self.vms.pop(vm.id, None)
                self.expunged.add(vm.id)
            else:
                vm.state = "Destroyed"
            return {"virtualmachine": self._vm_view(vm, False)}

        return {"jobid": self._new_job("destroyVirtualMachine", vm.id, finish).id}

    def _start_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "startvirtualmachine")
        if vm.state == "Running":
            return {
                "jobid": self._failed_job(
                    "startVirtualMachine", vm.id, f"The virtual machine {vm.id} ({vm.displayname}) is already running"
                ).id
            }
        vm.state = "Starting"
        return {"jobid": self._new_job("startVirtualMachine", vm.id, self._set_state(vm, "Running")).id}

    def _stop_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "stopvirtualmachine")
        if vm.state == "Running":
            vm.state = "Stopping"
        return {"jobid": self._new_job("stopVirtualMachine", vm.id, self._set_state(vm, "Stopped")).id}

    def _reboot_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "rebootvirtualmachine")
        if vm.state != "Running":
            return {
                "jobid": self._failed_job(
                    "rebootVirtualMachine", vm.id, f"Unable to reboot VM {vm.id} since it is not in Running state"
                ).id
            }
        return {"jobid": self._new_job("rebootVirtualMachine", vm.id, self._set_state(vm, "Running")).id}

    def _restore_vm(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "restorevirtualmachine", "virtualmachineid")
        vm = self._existing_vm({"id": params["virtualmachineid"]}, "restorevirtualmachine")
        template_id = params.get("templateid", vm.templateid)
        if template_id not in self.templates:
            raise _entity_missing("restorevirtualmachine", "templateid", template_id)
        previous = vm.state
        vm.state = "Restoring"

        def finish() -> dict[str, Any]:
            vm.templateid = template_id
            vm.state = previous
            with_password = self.templates[template_id].passwordenabled
            return {"virtualmachine": self._vm_view(vm, False, with_password=with_password)}

        return {"jobid": self._new_job("restoreVirtualMachine", vm.id, finish).id}

    def _scale_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "scalevirtualmachine")
        offering_id = self._offering_for_change(params, vm, "scalevirtualmachine")

        def finish() -> dict[str, Any]:
            vm.serviceofferingid = offering_id
            return {"virtualmachine": self._vm_view(vm, False)}

        return {"jobid": self._new_job("scaleVirtualMachine", vm.id, finish).id}

    def _change_service(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "changeserviceforvirtualmachine")
        offering_id = self._offering_for_change(params, vm, "changeserviceforvirtualmachine")
        if vm.state != "Stopped":
            raise ApiFailure(431, f"Unable to upgrade virtual machine {vm.id}, please stop it first")
        vm.serviceofferingid = offering_id
        return {"virtualmachine": self._vm_view(vm, False)}

    def _offering_for_change(self, params: dict[str, str], vm: Vm, command: str) -> str:
        _require(params, command, "serviceofferingid")
        offering_id = params["serviceofferingid"]
        if offering_id not in self.offerings:
            raise _entity_missing(command, "serviceofferingid", offering_id)
        if offering_id == vm.serviceofferingid:
            raise ApiFailure(431, "Not upgrading vm because it already has the requested service offering")
        return offering_id

    def _update_vm(self, params: dict[str, str]) -> dict[str, Any]:
        vm = self._existing_vm(params, "updatevirtualmachine")
        if "displayname" in params:
            vm.displayname = params["displayname"]
        return {"virtualmachine": self._vm_view(vm, False)}

    def _existing_vm(self, params: dict[str, str], command: str) -> Vm:
        _require(params, command, "id")
        vm = self.vms.get(params["id"])
        if vm is not None:
            return vm
        if params["id"] in self.expunged:
            raise ApiFailure(431, "Unable to find a virtual machine with specified vmId")
        raise _entity_missing(command, "id", params["id"])

    def _vm_view(self, vm: Vm, with_stats: bool, *, with_password: bool = False) -> dict[str, Any]:
        offering = self.offerings[vm.serviceofferingid]
        view: dict[str, Any] = {
            "id": vm.id,
            "name": vm.name,
            "displayname": vm.displayname,
            "state": vm.state,
            "zoneid": ZONE_ID,
            "templateid": vm.templateid,
            "guestosid": self.templates[vm.templateid].ostypeid
            if vm.templateid in self.templates
            else LINUX_OS_TYPE_ID,
            "serviceofferingid": vm.serviceofferingid,
            "serviceofferingname": offering["name"],
            "cpunumber": offering.get("cpunumber"),
            "memory": offering.get("memory"),
            "created": vm.created,
            "nic": [
                {
                    "id": f"nic-{vm.id}",
                    "networkid": NETWORK_ID,
                    "isdefault": True,
                    "type": "Shared",
                    "ipaddress": vm.ipaddress,
                    "ip6address": vm.ip6address,
                    "gateway": "203.0.113.1",
                    "netmask": "255.255.255.0",
                }
            ],
        }
        if with_stats and vm.kib_read is not None:
            view["networkkbsread"] = vm.kib_read
            view["networkkbswrite"] = vm.kib_write
        if with_password:
            view["password"] = secrets.token_urlsafe(PASSWORD_BYTES)
        return view

    # Volumes, snapshots, templates.

    def _list_volumes(self, params: dict[str, str]) -> dict[str, Any]:
        vm_id = params.get("virtualmachineid")
        volumes = [
            {"id": volume_id, "type": "ROOT", "virtualmachineid": owner, "zoneid": ZONE_ID, "state": "Ready"}
            for volume_id, owner in self.volumes.items()
            if (vm_id is None or owner == vm_id) and params.get("type", "ROOT") == "ROOT"
        ]
        return {"count": len(volumes), "volume": volumes} if volumes else {}

    def _create_snapshot(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "createsnapshot", "volumeid")
        volume_id = params["volumeid"]
        if volume_id not in self.volumes:
            raise _entity_missing("createsnapshot", "volumeid", volume_id)
        snapshot_id = str(uuid.uuid4())
        self.snapshots[snapshot_id] = "Allocated"

        def finish() -> dict[str, Any]:
            self.snapshots[snapshot_id] = "BackedUp"
            return {"snapshot": {"id": snapshot_id, "volumeid": volume_id, "state": "BackedUp"}}

        job = self._new_job("createSnapshot", None, finish)
        return {"id": snapshot_id, "jobid": job.id}

    def _delete_snapshot(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "deletesnapshot", "id")
        if params["id"] not in self.snapshots:
            raise _entity_missing("deletesnapshot", "id", params["id"])

        def finish() -> dict[str, Any]:
            self.snapshots.pop(params["id"], None)
            return {"success": True}

        return {"jobid": self._new_job("deleteSnapshot", None, finish).id}

    def _create_template(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "createtemplate", "name", "displaytext", "ostypeid")
        snapshot_id = params.get("snapshotid")
        if snapshot_id is None and params.get("volumeid") is None:
            raise ApiFailure(431, "Failed to create template because neither volume id nor snapshot id was specified")
        if snapshot_id is not None:
            if snapshot_id not in self.snapshots:
                raise _entity_missing("createtemplate", "snapshotid", snapshot_id)
            if self.snapshots[snapshot_id] != "BackedUp":
                raise ApiFailure(
                    431, f"Snapshot {snapshot_id} is not in BackedUp state yet and can't be used for template creation"
                )
        template = Template(str(uuid.uuid4()), params["name"], params["ostypeid"], False, "Creating", True)
        self.templates[template.id] = template

        def finish() -> dict[str, Any]:
            template.isready, template.status, template.size = True, "Download Complete", 21_474_836_480
            return {"template": self._template_view(template)}

        job = self._new_job("createTemplate", None, finish)
        return {"id": template.id, "jobid": job.id}

    def _register_template(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "registertemplate", "name", "url", "format", "hypervisor", "zoneid")
        if params["format"].upper() not in TEMPLATE_FORMATS:
            raise ApiFailure(
                431,
                f"Image format: {params['format']} is incorrect. Supported formats are {', '.join(sorted(TEMPLATE_FORMATS))}",
            )
        if params["zoneid"] != ZONE_ID:
            raise _entity_missing("registertemplate", "zoneid", params["zoneid"])
        if not params.get("ostypeid"):
            raise ApiFailure(431, "Please provide either a valid OS type id or a template type")
        if not re.match(r"^https?://", params["url"]):
            raise ApiFailure(431, "Unsupported scheme for url: " + params["url"])
        template = Template(
            str(uuid.uuid4()),
            params["name"],
            params["ostypeid"],
            False,
            "Downloading",
            True,
            format=params["format"].upper(),
            url=params["url"],
            reads_until_ready=2,
        )
        self.templates[template.id] = template
        return {"count": 1, "template": [self._template_view(template)]}

    def _list_templates(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "listtemplates", "templatefilter")
        template_filter = params["templatefilter"]
        if template_filter not in TEMPLATE_FILTERS:
            raise ApiFailure(
                431,
                f"Unable to execute API command listtemplates due to invalid value. Invalid parameter templatefilter value={template_filter}",
            )
        templates = list(self.templates.values())
        if "id" in params:
            if params["id"] not in self.templates:
                raise _entity_missing("listtemplates", "id", params["id"])
            templates = [self.templates[params["id"]]]
        if template_filter in ("self", "selfexecutable"):
            templates = [t for t in templates if t.own]
        if template_filter == "featured":
            templates = [t for t in templates if t.isready and not t.own]
        if template_filter.endswith("executable"):
            templates = [t for t in templates if t.isready or t.own]

        for template in templates:
            self._advance_download(template)
        page, page_size = int(params.get("page", "1")), int(params.get("pagesize", "500"))
        selected = templates[(page - 1) * page_size : page * page_size]
        if not selected:
            return {}
        return {"count": len(templates), "template": [self._template_view(t) for t in selected]}

    def _advance_download(self, template: Template) -> None:
        if template.isready or template.url is None:
            return
        if template.reads_until_ready > 0:
            template.reads_until_ready -= 1
            template.status = "45% Downloaded"
            return
        template.isready, template.status, template.size = True, "Download Complete", 2_147_483_648

    def _delete_template(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "deletetemplate", "id")
        template_id = params["id"]
        if template_id not in self.templates:
            raise _entity_missing("deletetemplate", "id", template_id)

        def finish() -> dict[str, Any]:
            self.templates.pop(template_id, None)
            return {"success": True}

        return {"jobid": self._new_job("deleteTemplate", None, finish).id}

    def _template_view(self, template: Template) -> dict[str, Any]:
        return {
            "id": template.id,
            "name": template.name,
            "displaytext": template.name,
            "ostypeid": template.ostypeid,
            "isready": template.isready,
            "status": template.status,
            "format": template.format,
            "zoneid": ZONE_ID,
            "size": template.size,
            "physicalsize": template.size,
            "templatetype": "USER" if template.own else "BUILTIN",
        }

    def _list_offerings(self, params: dict[str, str]) -> dict[str, Any]:
        offerings = list(self.offerings.values())
        page, page_size = int(params.get("page", "1")), int(params.get("pagesize", "500"))
        selected = offerings[(page - 1) * page_size : page * page_size]
        return {"count": len(offerings), "serviceoffering": selected} if selected else {}

    # Jobs.

    def _new_job(
        self,
        command: str,
        vm_id: str | None,
        finish: Callable[[], dict[str, Any]],
        on_failure: Callable[[], None] | None = None,
    ) -> Job:
        failure, self._next_job_failure = self._next_job_failure, None
        job = Job(str(uuid.uuid4()), command, vm_id, finish, self.polls_per_job, failure, on_failure)
        self.jobs[job.id] = job
        return job

    def _failed_job(self, command: str, vm_id: str, text: str) -> Job:
        job = Job(str(uuid.uuid4()), command, vm_id, lambda: {}, self.polls_per_job, text)
        self.jobs[job.id] = job
        return job

    def _set_state(self, vm: Vm, state: str) -> Callable[[], dict[str, Any]]:
        def finish() -> dict[str, Any]:
            vm.state = state
            return {"virtualmachine": self._vm_view(vm, False)}

        return finish

    def _query_job(self, params: dict[str, str]) -> dict[str, Any]:
        _require(params, "queryasyncjobresult", "jobid")
        job = self.jobs.get(params["jobid"])
        if job is None:
            raise _entity_missing("queryasyncjobresult", "jobid", params["jobid"])
        if job.status == 0 and not self.hold_jobs:
            job.polls_left -= 1
            if job.polls_left <= 0:
                self._finish_job(job)

        body: dict[str, Any] = {
            "accountid": "acct-1",
            "userid": "user-1",
            "cmd": COMMAND_CLASSES.get(job.command, job.command),
            "jobstatus": job.status,
            "jobprocstatus": 0,
            "jobresultcode": 530 if job.status == 2 else 0,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "jobid": job.id,
        }
        if job.status != 0:
            body["jobresulttype"] = "object"
            body["jobresult"] = job.result
        return body

    def _finish_job(self, job: Job) -> None:
        if job.failure is None:
            job.status, job.result = 1, job.finish()
            return
        if job.on_failure is not None:
            job.on_failure()
        job.status, job.result = 2, {"errorcode": 530, "errortext": job.failure}


def command_of(request: Request) -> str:
    """Return the CloudStack command a logged request carried."""
    return _params(request).get("command", "")


def _params(request: Request) -> dict[str, str]:
    """Merge query and form parameters, as a servlet's getParameterMap does."""
    params = {name: values[0] for name, values in request.query.items()}
    if request.method == "POST" and "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        for name, value in request.form().items():
            params.setdefault(name, value)
    return params


def _java_encode(value: str) -> str:
    """Encode like java.net.URLEncoder.encode(value, "UTF-8") with "+" then replaced by %20."""
    out = []
    for byte in value.encode():
        if byte in JAVA_UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("%20")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _parse_expires(text: str | None) -> datetime | None:
    if not text:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _require(params: dict[str, str], command: str, *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise ApiFailure(431, f"Unable to execute API command {command} due to missing parameter {name}")


def _entity_missing(command: str, name: str, value: str) -> ApiFailure:
    return ApiFailure(
        431,
        f"Unable to execute API command {command} due to invalid value. Invalid parameter {name} value={value} "
        "due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for "
        "the field in api cmd class.",
    )


def _error(command: str, status: int, text: str, cs_code: int) -> Response:
    name = f"{command.lower()}response" if command else "errorresponse"
    return Response.json(
        {name: {"uuidList": [], "errorcode": status, "cserrorcode": cs_code, "errortext": text}}, status
    )
