"""Customer actions on an existing VM beyond power: rename, reimage, resize, console,
addresses and reverse DNS, and the provider's own actions.

Each action runs only on an active VM whose region's backend declares the capability
behind it (else NotSupported), and never on a suspended VM: suspension leaves only stop
and delete. Reading a VM's addresses or its list of provider actions is allowed while
suspended, because it changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from chalicelib.backends.base import ActionDescriptor, Address, Backend
from chalicelib.catalog import backend_for, load_catalog
from chalicelib.clock import now
from chalicelib.config import settings
from chalicelib.errors import InsufficientCredit, InvalidRequest, NotFound, NotSupported, VmSuspended
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm
from chalicelib.money import format_micros
from chalicelib.sshkeys.service import public_key_for
from chalicelib.vms import service

MAX_HOSTNAME_LENGTH = 253
MAX_ACTION_VALUE_LENGTH = 256
# One DNS label in its ASCII (punycode) form: letters, digits and inner hyphens.
HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def require_action(vm: Vm, capability: str, action: str, *, allow_suspended: bool = False) -> Backend:
    """Return the VM's backend once the VM may take `action` through `capability`."""
    if vm.state != "active":
        raise InvalidRequest(f"VM {vm.vm_id} is {vm.state}; {action} needs an active VM", field="vm_id")
    backend = backend_for(vm.region)
    if not backend.supports(capability):
        raise NotSupported(f"{action} is not supported in region {vm.region}")
    if vm.suspended != "no" and not allow_suspended:
        raise VmSuspended(f"VM {vm.vm_id} is suspended, so {action} is not allowed; only stop and delete are")
    return backend


def rename_vm(vm: Vm, name: str) -> Vm:
    """Rename a VM in Lobster, and on the provider too when its backend can."""
    name = service.validate_name(name)
    if vm.state != "active":
        raise InvalidRequest(f"VM {vm.vm_id} is {vm.state}; rename needs an active VM", field="vm_id")
    if vm.suspended != "no":
        raise VmSuspended(f"VM {vm.vm_id} is suspended, so rename is not allowed; only stop and delete are")

    backend = backend_for(vm.region)
    if backend.supports("rename"):
        backend.rename_vm(vm.backend_id or "", name)
    vm.update(actions=[Vm.name.set(name)])
    logger.info("vm_renamed", extra={"account_id": vm.account_id, "vm_id": vm.vm_id})
    return vm


def reimage_vm(account: Account, vm: Vm, image_id: str, ssh_key_id: str | None) -> Vm:
    """Reinstall a VM from an image, installing the account's SSH key `ssh_key_id` if given."""
    public_key = public_key_for(account.account_id, ssh_key_id) if ssh_key_id else None
    require_action(vm, "reimage", "reimage")
    return service.reimage_vm(vm, image_id, public_key)


def resize_vm(account: Account, vm: Vm, plan_id: str) -> Vm:
    """Move a VM to another plan of its region.

    A move to a plan that costs more per hour needs the same minimum credit as creating a
    VM, so an account cannot raise its hourly cost while it is out of credit. A move to a
    cheaper plan is always allowed.
    """
    require_action(vm, "resize", "resize")
    catalog = load_catalog()
    plan = catalog.plan(plan_id)
    if plan_id == vm.plan_id:
        raise InvalidRequest(f"VM {vm.vm_id} already has plan {plan_id!r}", field="plan")
    if vm.region not in plan.region_ids:
        raise InvalidRequest(f"plan {plan_id!r} is not offered in region {vm.region!r}", field="plan")

    moment = now()
    costs_more = catalog.plan_price_at(plan_id, moment) > service.hourly_price(vm, catalog, moment)
    minimum = settings().minimum_credit_micros
    if costs_more and account.balance_micros < minimum:
        raise InsufficientCredit(f"moving to a more expensive plan needs at least {format_micros(minimum)} of credit")
    return service.resize_vm(vm, plan_id)


def console_url(vm: Vm) -> str:
    url = require_action(vm, "console", "console").get_console_url(vm.backend_id or "")
    logger.info("vm_console_opened", extra={"account_id": vm.account_id, "vm_id": vm.vm_id})
    return url


def list_addresses(vm: Vm) -> list[Address]:
    """Read the VM's addresses from its provider and keep the stored copy current."""
    backend = require_action(vm, "addresses", "listing addresses", allow_suspended=True)
    addresses = backend.list_addresses(vm.backend_id or "")
    stored = [address.__dict__ for address in addresses]
    if stored != vm.addresses:
        vm.update(actions=[Vm.addresses.set(stored)])
    return addresses


def address_json(address: Address, reverse_dns_editable: bool) -> dict[str, Any]:
    return {
        "ip": address.ip,
        "version": address.version,
        "private": address.private,
        "reverse_dns": address.reverse_dns,
        "reverse_dns_editable": reverse_dns_editable and not address.private,
    }


def set_reverse_dns(vm: Vm, ip: str, hostname: str) -> Address:
    """Point the reverse DNS of one of the VM's public addresses at `hostname`."""
    requested = _parse_ip(ip)
    hostname = validate_hostname(hostname)
    backend = require_action(vm, "reverse_dns", "reverse DNS")

    known = backend.list_addresses(vm.backend_id or "") if backend.supports("addresses") else _stored_addresses(vm)
    address = next((item for item in known if ipaddress.ip_address(item.ip) == requested), None)
    if address is None:
        raise NotFound(f"address {requested} is not assigned to VM {vm.vm_id}", field="ip")
    if address.private:
        raise InvalidRequest(f"address {requested} is private; reverse DNS is set on public addresses only", field="ip")

    backend.set_reverse_dns(vm.backend_id or "", address.ip, hostname)
    logger.info("vm_reverse_dns_set", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "ip": address.ip})
    return Address(ip=address.ip, version=address.version, private=False, reverse_dns=hostname)


def validate_hostname(text: str, field: str = "hostname") -> str:
    """Return a fully qualified host name in lower case without its trailing dot."""
    hostname = text.strip().lower().removesuffix(".")
    problem = _hostname_problem(hostname)
    if problem:
        raise InvalidRequest(f"hostname {text[:80]!r} is not valid: {problem}", field=field)
    return hostname


def _hostname_problem(hostname: str) -> str | None:
    if not hostname:
        return "it is empty"
    if len(hostname) > MAX_HOSTNAME_LENGTH:
        return f"it is longer than {MAX_HOSTNAME_LENGTH} characters"
    if not hostname.isascii():
        return "write an internationalized name in its punycode (xn--) form"
    labels = hostname.split(".")
    if len(labels) < 2:
        return "it needs at least two labels, such as host.example.com"
    if not all(HOSTNAME_LABEL.match(label) for label in labels):
        return "each label must be 1 to 63 letters, digits or inner hyphens"
    if labels[-1].isdigit():
        return "the last label must not be a number"
    return None


def list_provider_actions(vm: Vm) -> list[ActionDescriptor]:
    backend = require_action(vm, "actions", "provider actions", allow_suspended=True)
    return backend.list_actions(vm.backend_id or "")


def action_json(action: ActionDescriptor) -> dict[str, Any]:
    return {
        "action": action.action,
        "label": action.label,
        "description": action.description,
        "dangerous": action.dangerous,
        "options": dict(action.options),
    }


def run_provider_action(vm: Vm, action: str, value: str | None) -> None:
    """Run one of the actions the provider lists for this VM, with a valid value."""
    backend = require_action(vm, "actions", f"provider action {action!r}")
    offered = {item.action: item for item in backend.list_actions(vm.backend_id or "")}
    descriptor = offered.get(action)
    if descriptor is None:
        names = ", ".join(sorted(offered)) or "none"
        raise InvalidRequest(f"action {action[:64]!r} is not offered for VM {vm.vm_id}; offered: {names}", field="action")
    if descriptor.options and value not in descriptor.options:
        choices = ", ".join(sorted(descriptor.options))
        raise InvalidRequest(f"action {action!r} needs a value, one of: {choices}", field="value")
    if value is not None and len(value) > MAX_ACTION_VALUE_LENGTH:
        raise InvalidRequest(f"value must have at most {MAX_ACTION_VALUE_LENGTH} characters", field="value")

    backend.run_action(vm.backend_id or "", action, value)
    logger.info("vm_provider_action", extra={"account_id": vm.account_id, "vm_id": vm.vm_id, "action": action})


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidRequest(f"{text[:64]!r} is not an IPv4 or IPv6 address", field="ip") from None


def _stored_addresses(vm: Vm) -> list[Address]:
    return [Address(**entry) for entry in vm.addresses or []]
