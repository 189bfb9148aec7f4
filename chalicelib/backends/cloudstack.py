"""CloudStack backend: signed API requests and asynchronous job polling.

Every request is signed with the account's secret key (HMAC-SHA1, signature version 3 with an
expiry time). State-changing commands are sent as POST and return a job id. The backend polls
queryAsyncJobResult for a bounded time and raises the job's own error text when the job fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

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
from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.net.http import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, HttpClient

# A signed request stays valid this long (the `expires` parameter of signature version 3), which
# also covers HttpClient's retries of the same request.
SIGNATURE_LIFETIME = timedelta(minutes=10)

# Job polling defaults; the region settings job_poll_seconds and job_timeout_seconds override
# them. The timeout stays under API Gateway's 29-second integration limit, because power
# actions run inside customer API requests.
JOB_POLL_SECONDS = 2.0
JOB_TIMEOUT_SECONDS = 20.0

# queryAsyncJobResult jobstatus values.
JOB_PENDING = 0
JOB_SUCCEEDED = 1
JOB_FAILED = 2

# CloudStack returns HTTP 431 (invalid parameter) for a request that names an id it never had.
INVALID_PARAMETER_ERROR = 431

# Page size requested by list commands.
PAGE_SIZE = 500
MAX_PAGES = 100

DEFAULT_HYPERVISOR = "KVM"

# A VM name becomes its hostname, which CloudStack accepts only in this form.
HOSTNAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]$")

# CloudStack VM state -> Lobster state. A stopping VM still runs; a starting or restoring VM
# is not usable yet.
VM_STATES: dict[str, VmState] = {
    "Running": VmState.RUNNING,
    "Stopping": VmState.RUNNING,
    "Migrating": VmState.RUNNING,
    "Starting": VmState.PROVISIONING,
    "Restoring": VmState.PROVISIONING,
    "Stopped": VmState.STOPPED,
    "Shutdown": VmState.STOPPED,
    "Error": VmState.ERROR,
    "Destroyed": VmState.DELETED,
    "Expunging": VmState.DELETED,
    "Expunged": VmState.DELETED,
    "Unknown": VmState.UNKNOWN,
}

# registerTemplate `format` guessed from the file extension of a fetched URL; QCOW2 otherwise.
TEMPLATE_FORMATS_BY_EXTENSION = {
    ".qcow2": "QCOW2",
    ".img": "QCOW2",
    ".raw": "RAW",
    ".vhd": "VHD",
    ".vhdx": "VHDX",
    ".ova": "OVA",
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


class _ApiError(Exception):
    """A CloudStack 4xx error response other than 429, with CloudStack's own code and text."""

    def __init__(self, status: int, errortext: str) -> None:
        super().__init__(errortext)
        self.status = status
        self.errortext = errortext


class _JobFailed(BackendError):
    """An asynchronous job ended with jobstatus 2; the message carries CloudStack's errortext."""


def sign_request(params: Mapping[str, str], secret_key: str) -> str:
    """Return the CloudStack signature of `params` (all parameters except `signature`).

    As CloudStack's ApiServer.verifyRequest computes it: parameters sorted by name, each value
    encoded like Java's URLEncoder with spaces as %20, the whole string lower-cased, then
    base64(HMAC-SHA1(secret key, string)).
    """
    pairs = [f"{name}={_java_url_encode(params[name])}" for name in sorted(params)]
    message = "&".join(pairs).lower().encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class CloudStackBackend(Backend):
    """A region in one CloudStack zone.

    Settings: `api_url` (the /client/api endpoint), `zone_id`, `network_id` (optional),
    `hypervisor` (for registered templates, default KVM), `os_type_id` (guest OS type of fetched
    templates), `expunge` (default true; a non-admin account also needs CloudStack's global
    setting allow.user.expunge.recover.vm), `job_poll_seconds`, `job_timeout_seconds`,
    `vm_stats_traffic` (see `read_traffic`), `timeout_seconds`.
    Secrets: `api_key`, `secret_key`.
    """

    TYPE = "cloudstack"
    CAPABILITIES = frozenset(
        {"rename", "reimage", "snapshot", "resize", "addresses", "image_fetch", "images", "public_images", "plans"}
    )

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets)
        self.api_url = _required(self.settings, "api_url")
        self.zone_id = _required(self.settings, "zone_id")
        self.network_id = self.settings.get("network_id") or None
        self.hypervisor = str(self.settings.get("hypervisor") or DEFAULT_HYPERVISOR)
        self.expunge = _flag(self.settings.get("expunge"), default=True)
        self.traffic_enabled = _flag(self.settings.get("vm_stats_traffic"), default=False)
        self.job_poll_seconds = float(self.settings.get("job_poll_seconds") or JOB_POLL_SECONDS)
        self.job_timeout_seconds = float(self.settings.get("job_timeout_seconds") or JOB_TIMEOUT_SECONDS)
        for name in ("api_key", "secret_key"):
            if not self.secrets.get(name):
                raise InvalidRequest(f"region {region_id} is missing the CloudStack secret {name}", field=name)

        self.http = HttpClient(
            provider="cloudstack",
            base_url=self.api_url,
            timeout=_timeout(self.settings),
            describe_error=_describe_error,
        )
        self.http.session.hooks["response"].append(_raise_on_client_error)
        self.sleep: Callable[[float], None] = time.sleep

    def supports(self, capability: str) -> bool:
        if capability == "traffic":
            return self.traffic_enabled
        return super().supports(capability)

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Deploy a VM and wait a bounded time for the deploy job.

        A job still running at the deadline does not fail the call: the VM exists, so its id is
        returned and `get_vm` reports it as provisioning. A failed job raises its error text
        after the VM it left behind is destroyed. The job result carries the VM's password when
        its template is password-enabled. NOTE: a job that outlasts the wait loses that password.
        """
        params = {
            "serviceofferingid": spec.plan_backend_id,
            "templateid": spec.image_backend_id,
            "zoneid": self.zone_id,
            "displayname": spec.name,
        }
        if HOSTNAME_PATTERN.match(spec.name):
            params["name"] = spec.name
        if self.network_id:
            params["networkids"] = str(self.network_id)
        if spec.ssh_public_key:
            params["userdata"] = _cloud_config_user_data(spec.ssh_public_key)

        response = self._request("deployVirtualMachine", params, mutating=True)
        backend_id = str(response.get("id") or "")
        if not backend_id:
            raise BackendError("CloudStack accepted the deployment but returned no VM id")

        try:
            finished = self._wait_for_job(str(response.get("jobid")), "deployVirtualMachine", self._deadline())
        except _JobFailed:
            self._destroy_quietly(backend_id)
            raise
        except BackendError as exc:
            # The VM exists even though its job could not be read; get_vm shows how it ends.
            logger.warning(
                "vm_deploy_job_unreadable",
                extra={"region_id": self.region_id, "backend_id": backend_id, "error": str(exc)},
            )
            return CreatedVm(backend_id)
        if finished is None:
            logger.warning("vm_deploy_still_running", extra={"region_id": self.region_id, "backend_id": backend_id})
        logger.info("vm_created", extra={"region_id": self.region_id, "backend_id": backend_id})
        return CreatedVm(backend_id, _login_details(finished))

    def delete_vm(self, backend_id: str) -> None:
        vm = self._find_vm(backend_id)
        if vm is None or VM_STATES.get(str(vm.get("state"))) == VmState.DELETED:
            logger.info("vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})
            return

        params = {"id": backend_id, "expunge": "true" if self.expunge else "false"}
        try:
            self._run_job("destroyVirtualMachine", params)
        except NotFound:
            logger.info("vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})
            return
        logger.info("vm_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})

    def get_vm(self, backend_id: str) -> VmInfo:
        vm = self._find_vm(backend_id)
        if vm is None:
            raise NotFound(f"CloudStack has no VM {backend_id}")

        state = str(vm.get("state") or "Unknown")
        return VmInfo(
            backend_id=backend_id,
            state=VM_STATES.get(state, VmState.UNKNOWN),
            addresses=tuple(_vm_addresses(vm)),
            created_at=_parse_time(vm.get("created")),
            hostname=vm.get("displayname") or vm.get("name"),
            details={"state": state, "serviceofferingid": str(vm.get("serviceofferingid") or "")},
        )

    def start_vm(self, backend_id: str) -> None:
        self._run_job("startVirtualMachine", {"id": backend_id})

    def stop_vm(self, backend_id: str) -> None:
        self._run_job("stopVirtualMachine", {"id": backend_id})

    def reboot_vm(self, backend_id: str) -> None:
        self._run_job("rebootVirtualMachine", {"id": backend_id})

    # Optional capabilities.

    def read_traffic(self, backend_id: str) -> int:
        """Return networkkbsread + networkkbswrite of the VM, converted from KiB to bytes.

        NOTE: CloudStack documents these fields only as "the incoming/outgoing network traffic
        on the VM in KiB". With accumulate=true, CloudStack 4.17 and later sum the VM stats
        records kept in its database, and it deletes records older than
        vm.stats.max.retention.time (720 minutes by default). So the sum is a true counter only
        when that setting is 0 or less. Older releases sum in the management server's memory,
        and a restart resets the sum, which billing handles as a counter reset. The operator
        enables this with the region setting vm_stats_traffic.
        """
        if not self.traffic_enabled:
            raise self._unsupported("traffic")

        vm = self._find_vm(backend_id, details="stats", accumulate="true")
        if vm is None:
            raise NotFound(f"CloudStack has no VM {backend_id}")
        received, sent = vm.get("networkkbsread"), vm.get("networkkbswrite")
        if received is None or sent is None:
            raise BackendError(f"CloudStack reported no network statistics for VM {backend_id} yet")
        return (int(received) + int(sent)) * 1024

    def rename_vm(self, backend_id: str, name: str) -> None:
        self._request("updateVirtualMachine", {"id": backend_id, "displayname": name}, mutating=True)

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Restore the VM from a template and return its new password, if the template sets one.

        restoreVirtualMachine takes no user data, so `ssh_public_key` is not sent: the VM keeps
        the user data from creation, which installs the key again.
        """
        result = self._run_job(
            "restoreVirtualMachine", {"virtualmachineid": backend_id, "templateid": image_backend_id}
        )
        return _login_details(result)

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        """Change the VM's service offering.

        A stopped VM changes offering at once (changeServiceForVirtualMachine). A running VM is
        scaled live (scaleVirtualMachine), which needs a scalable template and offering.
        """
        vm = self._find_vm(backend_id)
        if vm is None:
            raise NotFound(f"CloudStack has no VM {backend_id}")

        params = {"id": backend_id, "serviceofferingid": plan_backend_id}
        if vm.get("state") == "Stopped":
            self._request("changeServiceForVirtualMachine", params, mutating=True)
        else:
            self._run_job("scaleVirtualMachine", params)
        logger.info(
            "vm_resized", extra={"region_id": self.region_id, "backend_id": backend_id, "plan": plan_backend_id}
        )

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        """Snapshot the root volume, then start a template from the snapshot; return its id.

        The template can deploy new VMs, which a volume snapshot cannot. The volume snapshot
        is deleted once the template is ready.
        """
        deadline = self._deadline()
        vm = self._find_vm(backend_id)
        if vm is None:
            raise NotFound(f"CloudStack has no VM {backend_id}")
        volume_id = self._root_volume_id(backend_id)

        snapshot_job = self._request("createSnapshot", {"volumeid": volume_id}, mutating=True)
        result = self._wait_for_job(str(snapshot_job.get("jobid")), "createSnapshot", deadline)
        if result is None:
            raise BackendUnavailable(
                f"CloudStack is still copying the volume snapshot of VM {backend_id}. Try again later."
            )
        snapshot_id = str(result.get("snapshot", {}).get("id") or snapshot_job.get("id") or "")

        template_job = self._request(
            "createTemplate",
            {
                "snapshotid": snapshot_id,
                "name": name,
                "displaytext": name,
                "ostypeid": str(vm.get("guestosid") or ""),
            },
            mutating=True,
        )
        template_id = str(template_job.get("id") or "")
        if not template_id:
            raise BackendError("CloudStack started the template but returned no template id")

        if self._wait_for_job(str(template_job.get("jobid")), "createTemplate", deadline) is None:
            # NOTE: the volume snapshot stays until someone deletes it; it still occupies
            # secondary storage.
            logger.warning("volume_snapshot_kept", extra={"region_id": self.region_id, "snapshot_id": snapshot_id})
        else:
            self._request("deleteSnapshot", {"id": snapshot_id}, mutating=True)

        logger.info(
            "vm_snapshot_started",
            extra={"region_id": self.region_id, "backend_id": backend_id, "image_id": template_id},
        )
        return template_id

    def list_addresses(self, backend_id: str) -> list[Address]:
        vm = self._find_vm(backend_id)
        if vm is None:
            raise NotFound(f"CloudStack has no VM {backend_id}")
        return _vm_addresses(vm)

    def fetch_image(self, url: str, name: str) -> str:
        """Register a template that CloudStack downloads from `url` to secondary storage."""
        os_type_id = self.settings.get("os_type_id")
        if not os_type_id:
            raise BackendError(f"region {self.region_id} needs the setting os_type_id to register templates")

        response = self._request(
            "registerTemplate",
            {
                "name": name,
                "displaytext": name,
                "url": url,
                "format": _template_format(url),
                "hypervisor": self.hypervisor,
                "ostypeid": str(os_type_id),
                "zoneid": self.zone_id,
            },
            mutating=True,
        )
        templates = response.get("template") or []
        if not templates or not templates[0].get("id"):
            raise BackendError("CloudStack registered the template but returned no template id")

        image_id = str(templates[0]["id"])
        logger.info("image_fetch_started", extra={"region_id": self.region_id, "image_id": image_id})
        return image_id

    def get_image(self, image_backend_id: str) -> ImageInfo:
        for template_filter in ("self", "executable"):
            templates = self._list_templates(template_filter, image_backend_id)
            if templates:
                return _image_info(templates[0])
        raise NotFound(f"CloudStack has no template {image_backend_id}")

    def list_images(self) -> list[ImageInfo]:
        return [_image_info(template) for template in self._list_templates("executable")]

    def list_public_images(self) -> list[ImageInfo]:
        """List the zone's featured templates, which the cloud's administrators offer to every account."""
        return [_image_info(template) for template in self._list_templates("featured")]

    def delete_image(self, image_backend_id: str) -> None:
        try:
            self._run_job("deleteTemplate", {"id": image_backend_id})
        except NotFound:
            logger.info("image_already_deleted", extra={"region_id": self.region_id, "image_id": image_backend_id})

    def list_plans(self) -> list[PlanOffer]:
        offerings = self._list_all("listServiceOfferings", "serviceoffering", {})
        # Custom offerings leave memory and CPU to the deploy call, so no plan can name them.
        return [_plan_offer(offering) for offering in offerings if offering.get("memory") and offering.get("cpunumber")]

    # CloudStack helpers.

    def _find_vm(self, backend_id: str, **extra: str) -> dict[str, Any] | None:
        """Return the VM, or None when CloudStack has no VM with that id (any more)."""
        try:
            response = self._request("listVirtualMachines", {"id": backend_id, "listall": "true", **extra})
        except NotFound:
            return None
        vms = response.get("virtualmachine") or []
        return vms[0] if vms else None

    def _root_volume_id(self, backend_id: str) -> str:
        response = self._request("listVolumes", {"virtualmachineid": backend_id, "type": "ROOT", "listall": "true"})
        volumes = response.get("volume") or []
        if not volumes:
            raise BackendError(f"CloudStack reported no root volume for VM {backend_id}")
        return str(volumes[0]["id"])

    def _list_templates(self, template_filter: str, template_id: str | None = None) -> list[dict[str, Any]]:
        params = {"templatefilter": template_filter, "zoneid": self.zone_id}
        if template_id is not None:
            params["id"] = template_id
            try:
                return self._request("listTemplates", params).get("template") or []
            except NotFound:
                return []
        return self._list_all("listTemplates", "template", params)

    def _list_all(self, command: str, key: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            response = self._request(command, {**params, "page": str(page), "pagesize": str(PAGE_SIZE)})
            batch = response.get(key) or []
            items.extend(batch)
            if len(batch) < PAGE_SIZE or len(items) >= int(response.get("count") or 0):
                return items
        raise BackendError(f"CloudStack returned more than {MAX_PAGES} pages for {command}")

    def _destroy_quietly(self, backend_id: str) -> None:
        try:
            params = {"id": backend_id, "expunge": "true" if self.expunge else "false"}
            self._request("destroyVirtualMachine", params, mutating=True)
        except BackendError as exc:
            logger.warning(
                "vm_cleanup_failed", extra={"region_id": self.region_id, "backend_id": backend_id, "error": str(exc)}
            )

    # Jobs.

    def _run_job(self, command: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Send an asynchronous command and wait for its job; raise if it is still running."""
        response = self._request(command, params, mutating=True)
        job_id = str(response.get("jobid") or "")
        if not job_id:
            raise BackendError(f"CloudStack returned no job id for {command}")

        result = self._wait_for_job(job_id, command, self._deadline())
        if result is None:
            raise BackendUnavailable(
                f"CloudStack job {job_id} ({command}) did not finish within {self.job_timeout_seconds:g} seconds; "
                "it may still complete, so check the VM before trying again"
            )
        return result

    def _wait_for_job(self, job_id: str, command: str, deadline: float) -> dict[str, Any] | None:
        """Poll a job until it ends or `deadline` (time.monotonic) passes.

        Returns the job result, None if the job is still pending at the deadline, and raises
        _JobFailed with CloudStack's error text if the job failed.
        """
        while True:
            job = self._request("queryAsyncJobResult", {"jobid": job_id})
            status = int(job.get("jobstatus", JOB_PENDING))
            if status == JOB_SUCCEEDED:
                return job.get("jobresult") or {}
            if status == JOB_FAILED:
                result = job.get("jobresult") or {}
                text = result.get("errortext") or f"error code {job.get('jobresultcode')}"
                logger.warning(
                    "provider_job_failed",
                    extra={"region_id": self.region_id, "command": command, "job_id": job_id, "error": text},
                )
                raise _JobFailed(f"CloudStack {command} failed: {text}")

            if time.monotonic() >= deadline:
                logger.warning(
                    "provider_job_pending", extra={"region_id": self.region_id, "command": command, "job_id": job_id}
                )
                return None
            self.sleep(self.job_poll_seconds)

    def _deadline(self) -> float:
        return time.monotonic() + self.job_timeout_seconds

    # Transport.

    def _request(self, command: str, params: Mapping[str, str], *, mutating: bool = False) -> dict[str, Any]:
        """Send a signed command and return the body under "<command>response".

        Mutating commands go as POST form bodies, which HttpClient never repeats; read-only
        commands go as GET and are retried on timeouts and server errors.
        """
        signed = self._signed_params(command, params)
        try:
            if mutating:
                response = self.http.request("POST", self.api_url, data=signed)
            else:
                response = self.http.request("GET", self.api_url, params=signed)
        except _ApiError as exc:
            raise self._translate_error(command, exc) from None
        if response is None:
            raise BackendError(f"CloudStack returned no response to {command}")

        try:
            body = response.json()
        except ValueError as exc:
            raise BackendError(f"CloudStack returned a response to {command} that is not JSON") from exc
        result = body.get(f"{command.lower()}response") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise BackendError(f"CloudStack returned an unexpected response to {command}")
        return result

    def _signed_params(self, command: str, params: Mapping[str, str]) -> dict[str, str]:
        signed = {
            **params,
            "command": command,
            "response": "json",
            "apiKey": self.secrets["api_key"],
            "signatureVersion": "3",
            "expires": (clock.now() + SIGNATURE_LIFETIME).strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        signed["signature"] = sign_request(signed, self.secrets["secret_key"])
        return signed

    def _translate_error(self, command: str, error: _ApiError) -> Exception:
        logger.warning(
            "provider_request_failed",
            extra={"provider": "cloudstack", "command": command, "status": error.status, "error": error.errortext},
        )
        if error.status in (401, 403):
            return BackendError(
                f"CloudStack rejected the region's credentials (HTTP {error.status}): {error.errortext}",
                status_code=error.status,
            )
        # 431 also covers malformed values, so only the entity-lookup texts mean "not found".
        if error.status == INVALID_PARAMETER_ERROR and (
            "does not exist" in error.errortext or "Unable to find" in error.errortext
        ):
            return NotFound(f"CloudStack: {error.errortext}", status_code=error.status)
        return BackendError(
            f"CloudStack rejected {command} (HTTP {error.status}): {error.errortext}", status_code=error.status
        )


def _raise_on_client_error(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: raise `_ApiError` for 4xx responses except 429.

    CloudStack's error codes (431 invalid parameter, 432 unsupported action, ...) need their own
    translation. 429 and 5xx stay with HttpClient, which retries them where that is safe.
    """
    if 400 <= response.status_code < 500 and response.status_code != 429:
        errortext = _describe_error(response) or f"HTTP {response.status_code}"
        response.close()
        raise _ApiError(response.status_code, errortext)


def _java_url_encode(value: str) -> str:
    # java.net.URLEncoder leaves only letters, digits and ".-*_" alone; Python's quote also
    # keeps "~", so it is encoded by hand. Spaces become %20, as CloudStack substitutes.
    return quote(value, safe="*").replace("~", "%7E")


def _required(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    if not value:
        raise InvalidRequest(f"the CloudStack region setting {name} is missing", field=name)
    return str(value)


def _flag(value: Any, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _timeout(settings: Mapping[str, Any]) -> tuple[float, float]:
    seconds = settings.get("timeout_seconds")
    if seconds is None:
        return (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    read = float(seconds)
    return (min(float(CONNECT_TIMEOUT_SECONDS), read), read)


def _describe_error(response: requests.Response) -> str:
    """Extract errortext from CloudStack's {"<command>response": {"errorcode", "errortext"}}."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for value in body.values():
        if isinstance(value, dict) and value.get("errortext"):
            return str(value["errortext"])
    return ""


def _cloud_config_user_data(ssh_public_key: str) -> str:
    # JSON is valid YAML, so json.dumps quotes the key safely for cloud-init.
    document = "#cloud-config\n" + json.dumps({"ssh_authorized_keys": [ssh_public_key]}) + "\n"
    return base64.b64encode(document.encode()).decode()


def _login_details(job_result: Mapping[str, Any] | None) -> str | None:
    """Read the password CloudStack returns for a VM whose template is password-enabled."""
    vm = (job_result or {}).get("virtualmachine") or {}
    password = vm.get("password")
    return f"password: {password}" if password else None


def _address(text: str, *, public: bool = False) -> Address:
    ip = ipaddress.ip_address(text)
    private = not public and any(ip in network for network in PRIVATE_NETWORKS)
    return Address(ip=str(ip), version=ip.version, private=private)


def _vm_addresses(vm: Mapping[str, Any]) -> list[Address]:
    addresses = []
    for nic in vm.get("nic") or []:
        if nic.get("ipaddress"):
            addresses.append(_address(nic["ipaddress"]))
        if nic.get("ip6address"):
            addresses.append(_address(nic["ip6address"]))
    # A static NAT address on an isolated network.
    if vm.get("publicip"):
        addresses.append(_address(vm["publicip"], public=True))
    return addresses


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return clock.as_utc(datetime.fromisoformat(str(text)))
    except ValueError:
        return None


def _image_info(template: Mapping[str, Any]) -> ImageInfo:
    status = str(template.get("status") or "")
    if template.get("isready"):
        state = ImageState.ACTIVE
    elif re.search(r"error|fail|abandon", status, re.IGNORECASE):
        state = ImageState.ERROR
    else:
        state = ImageState.PENDING
    return ImageInfo(
        backend_id=str(template["id"]),
        name=str(template.get("name") or ""),
        state=state,
        size_bytes=int(template.get("physicalsize") or template.get("size") or 0),
    )


def _plan_offer(offering: Mapping[str, Any]) -> PlanOffer:
    root_disk_gb = offering.get("rootdisksize") or 0
    return PlanOffer(
        backend_id=str(offering["id"]),
        name=str(offering.get("name") or offering["id"]),
        ram_mb=int(offering["memory"]),
        vcpus=int(offering["cpunumber"]),
        # Without rootdisksize the template's disk size applies.
        disk_gb=int(root_disk_gb),
        # Service offerings carry no traffic allowance; the operator sets it on the Lobster plan.
        bandwidth_gib=0,
    )


def _template_format(url: str) -> str:
    path = urlsplit(url).path.lower()
    for extension, template_format in TEMPLATE_FORMATS_BY_EXTENSION.items():
        if path.endswith(extension):
            return template_format
    return "QCOW2"
