"""Customer VM routes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, route
from chalicelib.api.schema import Field, Schema
from chalicelib.catalog import load_catalog
from chalicelib.errors import InvalidRequest
from chalicelib.vms import service

blueprint = Blueprint(__name__)

CREATE_VM = Schema(
    "CreateVm",
    (
        Field("name", max_length=64, description="Hostname-style name"),
        Field("region", max_length=64, description="Region id from /v1/catalog"),
        Field("plan", max_length=64, description="Plan id from /v1/catalog"),
        Field("image", max_length=64, description="Image id from /v1/catalog"),
    ),
)
POWER_ACTIONS = ("start", "stop", "reboot")


@route(blueprint, "/v1/vms", ["POST"])
def create_vm() -> object:
    request = blueprint.current_request
    account = current_account(request)
    body = CREATE_VM.parse_body(request.raw_body)
    vm = service.create_vm(account, body["name"], body["region"], body["plan"], body["image"])
    return json_response(service.vm_json(vm, load_catalog()), 201)


@route(blueprint, "/v1/vms", ["GET"])
def list_vms() -> object:
    account = current_account(blueprint.current_request)
    catalog = load_catalog()
    vms = [service.refresh_vm(vm) for vm in service.list_vms(account.account_id)]
    return json_response({"vms": [service.vm_json(vm, catalog) for vm in vms]})


@route(blueprint, "/v1/vms/{vm_id}", ["GET"])
def get_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    vm = service.refresh_vm(service.get_vm(account.account_id, vm_id))
    return json_response(service.vm_json(vm, load_catalog()))


@route(blueprint, "/v1/vms/{vm_id}", ["DELETE"])
def delete_vm(vm_id: str) -> object:
    account = current_account(blueprint.current_request)
    vm = service.delete_vm(service.get_vm(account.account_id, vm_id))
    return json_response(service.vm_json(vm, load_catalog()), 202 if vm.state == "deleting" else 200)


@route(blueprint, "/v1/vms/{vm_id}/{action}", ["POST"])
def power_vm(vm_id: str, action: str) -> object:
    account = current_account(blueprint.current_request)
    if action not in POWER_ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(POWER_ACTIONS)}", field="action")
    vm = service.power_action(account, service.get_vm(account.account_id, vm_id), action)
    return json_response(service.vm_json(vm, load_catalog()))
