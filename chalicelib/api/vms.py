"""Customer VM routes: create, list, show and delete VMs, power them, and the actions a
region's backend offers on them (rename, reimage, resize, snapshot, console, addresses,
reverse DNS and provider actions)."""

from __future__ import annotations

from urllib.parse import unquote

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_body, route
from chalicelib.api.schema import Field, Schema
from chalicelib.catalog import backend_for, load_catalog
from chalicelib.errors import InvalidRequest
from chalicelib.images import service as images
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm
from chalicelib.vms import actions, service

blueprint = Blueprint(__name__)

ID_FIELD_LENGTH = 64
CREATE_VM = Schema(
    "CreateVm",
    (
        Field("name", max_length=64, description="Hostname-style name"),
        Field("region", max_length=ID_FIELD_LENGTH, description="Region id from /v1/catalog"),
        Field("plan", max_length=ID_FIELD_LENGTH, description="Plan id from /v1/catalog"),
        Field("image", max_length=ID_FIELD_LENGTH, description="Image id from /v1/catalog"),
        Field("ssh_key", required=False, max_length=ID_FIELD_LENGTH, description="SSH key id from /v1/ssh-keys to install"),
    ),
)
RENAME_VM = Schema("RenameVm", (Field("name", max_length=64, description="Hostname-style name"),))
REIMAGE_VM = Schema(
    "ReimageVm",
    (
        Field("image", max_length=ID_FIELD_LENGTH, description="Image id from /v1/catalog of the VM's region"),
        Field("ssh_key", required=False, max_length=ID_FIELD_LENGTH, description="SSH key id from /v1/ssh-keys to install"),
    ),
)
RESIZE_VM = Schema("ResizeVm", (Field("plan", max_length=ID_FIELD_LENGTH, description="Plan id from /v1/catalog"),))
SNAPSHOT_VM = Schema("SnapshotVm", (Field("name", max_length=images.MAX_NAME_LENGTH, description="A label for the image"),))
SET_REVERSE_DNS = Schema(
    "SetReverseDns",
    (Field("hostname", max_length=actions.MAX_HOSTNAME_LENGTH, description="Fully qualified host name"),),
)
RUN_ACTION = Schema(
    "RunProviderAction",
    (Field("value", required=False, max_length=actions.MAX_ACTION_VALUE_LENGTH, description="One of the action's options"),),
)
POWER_ACTIONS = ("start", "stop", "reboot")


def _account_and_vm(vm_id: str) -> tuple[Account, Vm]:
    account = current_account(blueprint.current_request)
    return account, service.get_vm(account.account_id, vm_id)


def _vm_response(vm: Vm, status: int = 200) -> object:
    return json_response(service.vm_json(vm, load_catalog()), status)


@route(blueprint, "/v1/vms", ["POST"], body=CREATE_VM, status=201)
def create_vm() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.create_vm(account, body["name"], body["region"], body["plan"], body["image"], body.get("ssh_key"))
    return _vm_response(vm, 201)


@route(blueprint, "/v1/vms", ["GET"])
def list_vms() -> object:
    account = current_account(blueprint.current_request)
    catalog = load_catalog()
    vms = [service.refresh_vm(vm) for vm in service.list_vms(account.account_id)]
    return json_response({"vms": [service.vm_json(vm, catalog) for vm in vms]})


@route(blueprint, "/v1/vms/{vm_id}", ["GET"])
def get_vm(vm_id: str) -> object:
    _, vm = _account_and_vm(vm_id)
    return _vm_response(service.refresh_vm(vm))


@route(blueprint, "/v1/vms/{vm_id}", ["PATCH"], body=RENAME_VM)
def rename_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    return _vm_response(actions.rename_vm(vm, body["name"]))


@route(blueprint, "/v1/vms/{vm_id}", ["DELETE"], status=(200, 202))
def delete_vm(vm_id: str) -> object:
    _, vm = _account_and_vm(vm_id)
    vm = service.delete_vm(vm)
    return _vm_response(vm, 202 if vm.state == "deleting" else 200)


@route(blueprint, "/v1/vms/{vm_id}/reimage", ["POST"], body=REIMAGE_VM)
def reimage_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    return _vm_response(actions.reimage_vm(account, vm, body["image"], body.get("ssh_key")))


@route(blueprint, "/v1/vms/{vm_id}/resize", ["POST"], body=RESIZE_VM)
def resize_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    return _vm_response(actions.resize_vm(account, vm, body["plan"]))


@route(blueprint, "/v1/vms/{vm_id}/snapshots", ["POST"], action="images:create", body=SNAPSHOT_VM, status=202)
def snapshot_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    return json_response(images.image_json(images.snapshot_vm(account, vm, body["name"])), 202)


@route(blueprint, "/v1/vms/{vm_id}/console", ["GET"], action="vms:console")
def get_console(vm_id: str) -> object:
    _, vm = _account_and_vm(vm_id)
    return json_response({"url": actions.console_url(vm)})


@route(blueprint, "/v1/vms/{vm_id}/addresses", ["GET"])
def list_addresses(vm_id: str) -> object:
    _, vm = _account_and_vm(vm_id)
    addresses = actions.list_addresses(vm)
    editable = backend_for(vm.region).supports("reverse_dns")
    return json_response({"addresses": [actions.address_json(address, editable) for address in addresses]})


@route(blueprint, "/v1/vms/{vm_id}/addresses/{ip}/reverse-dns", ["PUT"], body=SET_REVERSE_DNS)
def set_reverse_dns(vm_id: str, ip: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    address = actions.set_reverse_dns(vm, unquote(ip), body["hostname"])
    return json_response(actions.address_json(address, True))


@route(blueprint, "/v1/vms/{vm_id}/actions", ["GET"])
def list_provider_actions(vm_id: str) -> object:
    _, vm = _account_and_vm(vm_id)
    return json_response({"actions": [actions.action_json(item) for item in actions.list_provider_actions(vm)]})


@route(blueprint, "/v1/vms/{vm_id}/actions/{action}", ["POST"], body=RUN_ACTION)
def run_provider_action(vm_id: str, action: str) -> object:
    """Run a provider action; the body may be left out when the action takes no value."""
    account = current_account(blueprint.current_request)
    body = request_body()
    vm = service.get_vm(account.account_id, vm_id)
    actions.run_provider_action(vm, action, body.get("value"))
    return json_response({"action": action, "value": body.get("value"), "vm": service.vm_json(vm, load_catalog())})


@route(blueprint, "/v1/vms/{vm_id}/{action}", ["POST"])
def power_vm(vm_id: str, action: str) -> object:
    account = current_account(blueprint.current_request)
    if action not in POWER_ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(POWER_ACTIONS)}", field="action")
    vm = service.get_vm(account.account_id, vm_id)
    return _vm_response(service.power_action(account, vm, action))
