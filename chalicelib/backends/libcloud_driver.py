"""The Libcloud backend: runs a region on any Apache Libcloud 3.9 compute driver.

The driver is built with the backend, because its class decides what the region can
offer: each driver class gets its own LibcloudBackend subclass whose CAPABILITIES lists
only the features that driver has. Libcloud does its own HTTP, so its exceptions are
turned into LobsterErrors here, and reads are retried here.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import requests
from libcloud.common.exceptions import RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError, MalformedResponseError, ProviderError
from libcloud.compute.base import Node, NodeAuthSSHKey, NodeDriver, NodeImage, NodeLocation, NodeSize
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

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
from chalicelib.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    LobsterError,
    NotFound,
    NotSupported,
)
from chalicelib.log import logger
from chalicelib.net.http import BACKOFF_BASE_SECONDS, CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS

T = TypeVar("T")

MAX_READ_ATTEMPTS = 3
MAX_ERROR_TEXT = 300
HTTP_STATUS_MIN = 100
HTTP_STATUS_MAX = 599

# Libcloud's NodeState -> VmState. Stopping, reconfiguring and updating are missing, so
# they map to UNKNOWN: during them the VM may or may not be running.
STATE_MAP = {
    NodeState.RUNNING: VmState.RUNNING,
    NodeState.REBOOTING: VmState.RUNNING,
    NodeState.MIGRATING: VmState.RUNNING,
    NodeState.NORMAL: VmState.RUNNING,
    NodeState.PENDING: VmState.PROVISIONING,
    NodeState.STARTING: VmState.PROVISIONING,
    NodeState.STOPPED: VmState.STOPPED,
    NodeState.SUSPENDED: VmState.STOPPED,
    NodeState.PAUSED: VmState.STOPPED,
    NodeState.TERMINATED: VmState.DELETED,
    NodeState.ERROR: VmState.ERROR,
}

IMAGE_STATE_MAP = {
    "available": ImageState.ACTIVE,
    "active": ImageState.ACTIVE,
    "error": ImageState.ERROR,
    "failed": ImageState.ERROR,
    "killed": ImageState.ERROR,
}

# Driver methods tried in order for each power action. A driver's own start_node and
# stop_node count only when it overrides NodeDriver's, which raise NotImplementedError.
START_METHODS = ("start_node", "ex_start_node", "ex_power_on_node")
STOP_METHODS = ("stop_node", "ex_stop_node", "ex_shutdown_node", "ex_power_off_node")
RENAME_METHODS = ("ex_rename_node",)
RESIZE_METHODS = ("ex_resize_node", "ex_resize")
REBUILD_METHODS = ("ex_rebuild_node", "ex_rebuild")
# Single-node getters, used only when their first parameter is `node_id` (GCE's
# ex_get_node takes a name, which is not the backend id).
SINGLE_NODE_GETTERS = ("ex_get_node_details", "ex_get_node")
USER_DATA_PARAMETERS = ("ex_user_data", "ex_userdata")

# Bytes in one unit of NodeSize.bandwidth. Libcloud does not fix the unit: DigitalOcean
# reports its `transfer` in TB, and most other drivers report GB.
# NOTE: drivers not listed here are read as GB, which is a guess for each of them.
BANDWIDTH_UNIT_BYTES = {"DIGITAL_OCEAN": 10**12}
DEFAULT_BANDWIDTH_UNIT_BYTES = 10**9
GIB = 1 << 30

# Field names drivers use for a size's CPU count in NodeSize.extra.
VCPU_FIELDS = ("vcpus", "vcpu_count", "vcpu", "cpu", "cpus", "cores")


def driver_capabilities(driver_class: type[NodeDriver]) -> frozenset[str]:
    """Return the optional capabilities a Libcloud driver class offers."""
    capabilities = {"addresses"}
    if _overrides(driver_class, "list_sizes"):
        capabilities.add("plans")
    if all(_overrides(driver_class, name) for name in ("get_image", "list_images", "delete_image")):
        capabilities.add("images")
    if _overrides(driver_class, "create_image"):
        capabilities.add("snapshot")
    if _method_taking(driver_class, RENAME_METHODS, "name"):
        capabilities.add("rename")
    if _method_taking(driver_class, RESIZE_METHODS, "size"):
        capabilities.add("resize")
    if _method_taking(driver_class, REBUILD_METHODS, "image"):
        capabilities.add("reimage")
    return frozenset(capabilities)


class LibcloudBackend(Backend):
    """A region on a Libcloud compute driver.

    Settings: `provider` (a libcloud Provider name such as "DIGITAL_OCEAN"),
    `driver_kwargs` (non-secret driver arguments such as host, port, secure, region),
    `location` (the driver's location id for new VMs), `timeout_seconds`. Secrets: `key`,
    optional `secret`, and any other driver arguments that are secret. Plan ids are size
    ids and image ids are the driver's image ids.
    """

    TYPE = "libcloud"
    # Every capability some driver can give; each driver's subclass narrows it.
    CAPABILITIES = frozenset({"addresses", "plans", "images", "snapshot", "rename", "resize", "reimage"})

    _classes: ClassVar[dict[type[NodeDriver], type[LibcloudBackend]]] = {}
    driver: NodeDriver

    def __new__(cls, region_id: str, settings: Mapping[str, Any], secrets_: Mapping[str, str]) -> LibcloudBackend:
        driver = _build_driver(region_id, settings, secrets_)
        backend_class = cls._class_for(type(driver)) if cls is LibcloudBackend else cls
        backend = super().__new__(backend_class)
        backend.driver = driver
        return backend

    def __init__(self, region_id: str, settings: Mapping[str, Any], secrets_: Mapping[str, str]) -> None:
        super().__init__(region_id, settings, secrets_)
        self.provider = str(self.settings["provider"]).upper()
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def _class_for(cls, driver_class: type[NodeDriver]) -> type[LibcloudBackend]:
        backend_class = cls._classes.get(driver_class)
        if backend_class is None:
            backend_class = type(
                f"LibcloudBackend_{driver_class.__name__}",
                (cls,),
                {"CAPABILITIES": driver_capabilities(driver_class), "__module__": __name__},
            )
            cls._classes[driver_class] = backend_class
        return backend_class

    # Required: the VM life cycle.

    def create_vm(self, spec: VmSpec) -> CreatedVm:
        """Create a node. Drivers that generate a root password put it in `extra["password"]`."""
        create = self.driver.create_node
        parameters = inspect.signature(create).parameters
        arguments: dict[str, Any] = {
            "name": spec.name,
            # Looked up without retries: a provider error here fails the create at once,
            # like an error of the create request itself.
            "size": self._size(spec.plan_backend_id, retry=False),
            "image": self._image(spec.image_backend_id, retry=False),
        }

        location = self.settings.get("location")
        if location:
            arguments["location"] = NodeLocation(id=str(location), name=str(location), country="", driver=self.driver)
        elif "location" in parameters and parameters["location"].default is inspect.Parameter.empty:
            raise InvalidRequest(
                f"region {self.region_id}: the {self.provider} driver needs a location setting for new VMs",
                field="location",
            )

        user_data_parameter = next((name for name in USER_DATA_PARAMETERS if name in parameters), None)
        if user_data_parameter:
            arguments[user_data_parameter] = _cloud_config(spec.ssh_public_key)
        elif spec.ssh_public_key and "auth" in parameters and "ssh_key" in self.driver.features.get("create_node", []):
            arguments["auth"] = NodeAuthSSHKey(spec.ssh_public_key)

        node = self._call("create_node", lambda: create(**arguments))

        logger.info("backend_vm_created", extra={"region_id": self.region_id, "backend_id": str(node.id)})
        password = (node.extra or {}).get("password")
        return CreatedVm(str(node.id), f"username: root; password: {password}" if password else None)

    def delete_vm(self, backend_id: str) -> None:
        try:
            node = self._node(backend_id)
            self._act("destroy_node", lambda: self.driver.destroy_node(node))
        except NotFound:
            logger.info("backend_vm_already_deleted", extra={"region_id": self.region_id, "backend_id": backend_id})

    def get_vm(self, backend_id: str) -> VmInfo:
        node = self._node(backend_id)
        return VmInfo(
            backend_id=backend_id,
            state=STATE_MAP.get(node.state, VmState.UNKNOWN),
            addresses=tuple(_addresses(node)),
            created_at=_aware(getattr(node, "created_at", None)),
            hostname=node.name or None,
        )

    def start_vm(self, backend_id: str) -> None:
        self._power(backend_id, START_METHODS, "start")

    def stop_vm(self, backend_id: str) -> None:
        self._power(backend_id, STOP_METHODS, "stop")

    def reboot_vm(self, backend_id: str) -> None:
        if not _overrides(type(self.driver), "reboot_node"):
            raise NotSupported(f"the {self.provider} driver cannot reboot VMs")
        node = self._node(backend_id)
        self._act("reboot_node", lambda: self.driver.reboot_node(node))

    # Optional capabilities; each checks the driver's subclass declares it.

    def rename_vm(self, backend_id: str, name: str) -> None:
        method = self._capability_method("rename", RENAME_METHODS, "name")
        node = self._node(backend_id)
        self._act("rename", lambda: method(node, name))

    def reimage_vm(self, backend_id: str, image_backend_id: str, ssh_public_key: str | None = None) -> str | None:
        """Rebuild the node from an image. The drivers' rebuild methods take no common key
        argument and return only success, so the key is not sent and None is returned."""
        method = self._capability_method("reimage", REBUILD_METHODS, "image")
        node = self._node(backend_id)
        image = self._image(image_backend_id)
        self._act("rebuild", lambda: method(node, image))
        return None

    def resize_vm(self, backend_id: str, plan_backend_id: str) -> None:
        method = self._capability_method("resize", RESIZE_METHODS, "size")
        node = self._node(backend_id)
        size = self._size(plan_backend_id)
        self._act("resize", lambda: method(node, size))

    def snapshot_vm(self, backend_id: str, name: str) -> str:
        self._require("snapshot")
        node = self._node(backend_id)

        result = self._call("create_image", lambda: self.driver.create_image(node, name))

        if isinstance(result, NodeImage):
            return str(result.id)
        if result is False:
            raise BackendError(f"{self.provider} did not accept the snapshot of VM {backend_id}")
        # NOTE: some drivers (DigitalOcean's among them) return only True here, so the new
        # image is looked up by name. Among images of the same name the newest wins, but
        # only when the driver reports a creation time.
        return self._image_id_by_name(name)

    def list_addresses(self, backend_id: str) -> list[Address]:
        self._require("addresses")
        return _addresses(self._node(backend_id))

    def get_image(self, image_backend_id: str) -> ImageInfo:
        self._require("images")
        return _image(self._read("get_image", lambda: self.driver.get_image(image_backend_id)))

    def list_images(self) -> list[ImageInfo]:
        self._require("images")
        return [_image(image) for image in self._read("list_images", self.driver.list_images)]

    def delete_image(self, image_backend_id: str) -> None:
        self._require("images")
        try:
            image = self._read("get_image", lambda: self.driver.get_image(image_backend_id))
            self._act("delete_image", lambda: self.driver.delete_image(image))
        except NotFound:
            logger.info(
                "backend_image_already_deleted", extra={"region_id": self.region_id, "image_id": image_backend_id}
            )

    def list_plans(self) -> list[PlanOffer]:
        self._require("plans")
        unit_bytes = BANDWIDTH_UNIT_BYTES.get(self.provider, DEFAULT_BANDWIDTH_UNIT_BYTES)
        return [_plan(size, unit_bytes) for size in self._read("list_sizes", self.driver.list_sizes)]

    # Driver access.

    def _node(self, backend_id: str) -> Node:
        """Fetch one node, by the driver's single-node call when it has one."""
        for getter in SINGLE_NODE_GETTERS:
            method = getattr(self.driver, getter, None)
            if method is not None and _first_parameter(method) == "node_id":
                return self._read(getter, functools.partial(method, backend_id))

        for node in self._read("list_nodes", self.driver.list_nodes):
            if str(node.id) == backend_id:
                return node
        raise NotFound(f"{self.provider} has no VM {backend_id}")

    def _size(self, plan_backend_id: str, *, retry: bool = True) -> NodeSize:
        if not _overrides(type(self.driver), "list_sizes"):
            return NodeSize(plan_backend_id, plan_backend_id, 0, 0, None, 0, self.driver)
        fetch = self._read if retry else self._call
        for size in fetch("list_sizes", self.driver.list_sizes):
            if plan_backend_id in (str(size.id), str(size.name)):
                return size
        raise BackendError(f"{self.provider} does not offer the size {plan_backend_id!r}; check the plan's backend id")

    def _image(self, image_backend_id: str, *, retry: bool = True) -> NodeImage:
        """Return the driver's own image object, which carries what the driver needs."""
        driver_class = type(self.driver)
        fetch = self._read if retry else self._call
        if _overrides(driver_class, "get_image"):
            return fetch("get_image", lambda: self.driver.get_image(image_backend_id))
        if _overrides(driver_class, "list_images"):
            for image in fetch("list_images", self.driver.list_images):
                if str(image.id) == image_backend_id:
                    return image
            raise BackendError(
                f"{self.provider} does not offer the image {image_backend_id!r}; check the image's backend id"
            )
        return NodeImage(id=image_backend_id, name=image_backend_id, driver=self.driver)

    def _image_id_by_name(self, name: str) -> str:
        matches = [image for image in self._read("list_images", self.driver.list_images) if image.name == name]
        if not matches:
            raise BackendError(f"{self.provider} accepted the snapshot but lists no image named {name!r}")
        newest = max(matches, key=lambda image: str(image.extra.get("created_at") or ""))
        return str(newest.id)

    def _power(self, backend_id: str, candidates: tuple[str, ...], verb: str) -> None:
        method = _first_method(self.driver, candidates)
        if method is None:
            raise NotSupported(f"the {self.provider} driver cannot {verb} VMs")
        node = self._node(backend_id)
        self._act(method.__name__, lambda: method(node))

    def _capability_method(self, capability: str, candidates: tuple[str, ...], parameter: str) -> Callable[..., Any]:
        self._require(capability)
        for name in candidates:
            method = getattr(self.driver, name, None)
            if method is not None and parameter in inspect.signature(method).parameters:
                return method
        raise NotSupported(f"the {self.provider} driver has no method for {capability}")

    def _require(self, capability: str) -> None:
        if not self.supports(capability):
            raise self._unsupported(capability)

    # Error translation and retries.

    def _act(self, operation: str, call: Callable[[], Any]) -> None:
        """Run a driver action that returns a bool, and raise if it returned False."""
        if self._call(operation, call) is False:
            raise BackendError(f"{self.provider} did not accept {operation}")

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        """Run a read, retrying when the provider is unavailable."""
        for attempt in range(1, MAX_READ_ATTEMPTS + 1):
            try:
                return self._call(operation, call)
            except BackendUnavailable as exc:
                if attempt == MAX_READ_ATTEMPTS:
                    raise
                logger.warning(
                    "provider_request_failed",
                    extra={
                        "provider": self.provider,
                        "call": operation,
                        "attempt": attempt,
                        "retrying": True,
                        "error": exc.message,
                    },
                )
                self.sleep(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except LobsterError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver failure becomes a LobsterError
            raise self._translate(operation, exc) from exc

    def _translate(self, operation: str, exc: Exception) -> LobsterError:
        provider = self.provider
        if isinstance(exc, requests.Timeout):
            return BackendUnavailable(f"{provider} timed out; try again shortly")
        if isinstance(exc, (requests.ConnectionError, ConnectionError)):
            return BackendUnavailable(f"{provider} could not be reached")
        if isinstance(exc, NotImplementedError):
            return NotSupported(f"the {provider} driver does not implement {operation}")

        status = _status_of(exc, self.driver)
        if isinstance(exc, InvalidCredsError):
            return BackendError(f"{provider} rejected the region's credentials", status_code=status)
        if isinstance(exc, RateLimitReachedError):
            return BackendUnavailable(f"{provider} is rate limiting requests; try again shortly", status_code=status)

        text = _message_of(exc)
        if status is not None and status >= 500:
            return BackendUnavailable(f"{provider} failed with HTTP {status} during {operation}", status_code=status)
        if isinstance(exc, MalformedResponseError):
            # A 404 whose body is not the provider's format is more likely a wrong host
            # than a deleted VM, so it is not passed on as NotFound.
            return BackendError(
                f"{provider} returned a reply to {operation} that could not be read (HTTP {status})",
                status_code=status,
            )
        if status == 404:
            return NotFound(f"{provider}: not found during {operation}: {text}", status_code=status)
        if status is not None:
            return BackendError(f"{provider} rejected {operation} (HTTP {status}): {text}", status_code=status)
        return BackendError(f"{provider} failed during {operation}: {text}")


def _build_driver(region_id: str, settings: Mapping[str, Any], secrets_: Mapping[str, str]) -> NodeDriver:
    provider_name = str(settings.get("provider") or "").upper()
    provider = getattr(Provider, provider_name, None) if provider_name else None
    if not isinstance(provider, str):
        raise InvalidRequest(
            f"region {region_id}: provider {provider_name!r} is not a Libcloud compute provider name such as DIGITAL_OCEAN",
            field="provider",
        )
    key = secrets_.get("key")
    if not key:
        raise InvalidRequest(f"region {region_id}: the Libcloud secret needs a key", field="key")

    driver_kwargs = dict(settings.get("driver_kwargs") or {})
    driver_kwargs.update({name: value for name, value in secrets_.items() if name not in ("key", "secret")})
    if secrets_.get("secret"):
        driver_kwargs["secret"] = secrets_["secret"]

    try:
        driver = get_driver(provider)(key, **driver_kwargs)
    except (LibcloudError, NotImplementedError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"region {region_id}: the {provider_name} driver rejected its settings: {exc}") from exc

    # The timeout is set on the connection rather than passed to the driver, because
    # some drivers (DigitalOcean's in Libcloud 3.9.1) take no keyword arguments at all.
    # connect() builds the HTTP session again with it and sends no request.
    read_timeout = float(settings.get("timeout_seconds") or READ_TIMEOUT_SECONDS)
    driver.connection.timeout = (min(CONNECT_TIMEOUT_SECONDS, read_timeout), read_timeout)
    driver.connection.connect()
    return driver


def _overrides(driver_class: type, name: str) -> bool:
    return getattr(driver_class, name, None) is not getattr(NodeDriver, name, None)


def _method_taking(driver_class: type, candidates: tuple[str, ...], parameter: str) -> bool:
    for name in candidates:
        method = getattr(driver_class, name, None)
        if callable(method) and parameter in inspect.signature(method).parameters:
            return True
    return False


def _first_method(driver: NodeDriver, candidates: tuple[str, ...]) -> Callable[..., Any] | None:
    for name in candidates:
        method = getattr(driver, name, None)
        if method is not None and (not hasattr(NodeDriver, name) or _overrides(type(driver), name)):
            return method
    return None


def _status_of(exc: Exception, driver: NodeDriver) -> int | None:
    """Return the HTTP status behind a driver exception, when there is one.

    Libcloud's own errors carry `code` (BaseHTTPError) or `http_code` (ProviderError);
    some drivers raise their own class with an integer `code` (Vultr's VultrException).
    """
    if isinstance(exc, ProviderError):
        return int(exc.http_code)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and HTTP_STATUS_MIN <= code <= HTTP_STATUS_MAX:
        return code
    if isinstance(exc, MalformedResponseError):
        # The error body was not the provider's format (a proxy's HTML page, say), so
        # the status is read from the last response of the driver's connection.
        response = getattr(getattr(driver.connection, "connection", None), "response", None)
        return getattr(response, "status_code", None)
    return None


def _first_parameter(method: Callable[..., Any]) -> str | None:
    parameters = list(inspect.signature(method).parameters)
    return parameters[0] if parameters else None


def _message_of(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or getattr(exc, "value", None) or exc)
    return text[:MAX_ERROR_TEXT]


def _cloud_config(ssh_public_key: str | None) -> str:
    if not ssh_public_key:
        return "#cloud-config\n"
    return "#cloud-config\nssh_authorized_keys:\n  - " + ssh_public_key.strip() + "\n"


def _aware(value: Any) -> datetime | None:
    """Return a creation time as an aware datetime; drivers give datetimes or ISO text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _addresses(node: Node) -> list[Address]:
    addresses: list[Address] = []
    for ips, private in ((node.public_ips or [], False), (node.private_ips or [], True)):
        for ip in ips:
            version = 6 if ":" in str(ip) else 4
            addresses.append(Address(ip=str(ip), version=version, private=private))
    return addresses


def _image(image: NodeImage) -> ImageInfo:
    extra = image.extra or {}
    status = str(extra.get("status") or extra.get("state") or "available").lower()
    size_gb = extra.get("size_gigabytes")
    return ImageInfo(
        backend_id=str(image.id),
        name=str(image.name or ""),
        state=IMAGE_STATE_MAP.get(status, ImageState.PENDING),
        size_bytes=int(float(size_gb) * 10**9) if isinstance(size_gb, (int, float)) else 0,
    )


def _plan(size: NodeSize, bandwidth_unit_bytes: int) -> PlanOffer:
    extra = size.extra or {}
    vcpus = next((extra[name] for name in VCPU_FIELDS if isinstance(extra.get(name), int)), 0)
    bandwidth = size.bandwidth if isinstance(size.bandwidth, (int, float)) else 0
    return PlanOffer(
        backend_id=str(size.id),
        name=str(size.name or size.id),
        ram_mb=int(size.ram or 0),
        vcpus=int(vcpus),
        disk_gb=int(size.disk or 0),
        bandwidth_gib=int(bandwidth * bandwidth_unit_bytes) // GIB,
    )
