"""Customer SSH key routes: add, list and delete the public keys offered to new VMs."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_body, route
from chalicelib.api.schema import Field, Schema
from chalicelib.sshkeys import service
from chalicelib.sshkeys.keyformat import MAX_KEY_TEXT_LENGTH

blueprint = Blueprint(__name__)

ADD_SSH_KEY = Schema(
    "AddSshKey",
    (
        Field("name", max_length=service.MAX_NAME_LENGTH, description="A label for the key"),
        Field(
            "public_key",
            max_length=MAX_KEY_TEXT_LENGTH,
            description="One OpenSSH public key line: ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of 2048 bits or more",
        ),
    ),
)


@route(blueprint, "/v1/ssh-keys", ["POST"], body=ADD_SSH_KEY, status=201)
def add_ssh_key() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    key = service.add_key(account.account_id, body["name"], body["public_key"])
    return json_response(service.key_json(key), 201)


@route(blueprint, "/v1/ssh-keys", ["GET"])
def list_ssh_keys() -> object:
    account = current_account(blueprint.current_request)
    return json_response({"ssh_keys": [service.key_json(key) for key in service.list_keys(account.account_id)]})


@route(blueprint, "/v1/ssh-keys/{key_id}", ["GET"])
def get_ssh_key(key_id: str) -> object:
    account = current_account(blueprint.current_request)
    return json_response(service.key_json(service.get_key(account.account_id, key_id)))


@route(blueprint, "/v1/ssh-keys/{key_id}", ["DELETE"])
def delete_ssh_key(key_id: str) -> object:
    account = current_account(blueprint.current_request)
    service.delete_key(account.account_id, key_id)
    return json_response({"id": key_id, "deleted": True})
