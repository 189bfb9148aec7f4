"""API key routes: create (the secret is in this one response only), list and revoke, and
the action names a key may be limited to.

Managing keys needs a session token, so a leaked key cannot mint or hide other keys.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.accounts import apikeys
from chalicelib.api.http import current_account, empty_response, json_response, key_actions, request_body, route
from chalicelib.api.schema import Field, Schema

blueprint = Blueprint(__name__)

CREATE_KEY = Schema(
    "CreateApiKey",
    (
        Field("label", max_length=apikeys.MAX_LABEL_LENGTH, description="A name to recognise the key by"),
        Field(
            "actions",
            kind=list,
            required=False,
            max_length=64,
            max_items=apikeys.MAX_ACTIONS,
            description='Action names the key may call, such as "vms:read" or "vms:*"; leave out for every action',
        ),
        Field(
            "allowed_cidrs",
            kind=list,
            required=False,
            max_length=64,
            max_items=apikeys.MAX_CIDRS,
            description='IPv4 or IPv6 ranges the key may be used from, such as "203.0.113.0/24"; leave out for any address',
        ),
    ),
)


@route(blueprint, "/v1/api-keys", ["POST"], session_only=True, secret_fields=("secret",), body=CREATE_KEY, status=201)
def create_api_key() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    key, secret = apikeys.create_key(account.account_id, body["label"], body.get("actions"), body.get("allowed_cidrs"), key_actions())
    return json_response(apikeys.key_json(key) | {"secret": secret}, 201)


@route(blueprint, "/v1/api-keys", ["GET"], session_only=True)
def list_api_keys() -> object:
    account = current_account(blueprint.current_request)
    keys = sorted(apikeys.list_keys(account.account_id), key=lambda key: key.created_at)
    return json_response({"api_keys": [apikeys.key_json(key) for key in keys]})


@route(blueprint, "/v1/api-keys/actions", ["GET"], session_only=True)
def list_api_key_actions() -> object:
    """List the action names an API key may be limited to, sorted."""
    # Authenticates the caller, which rejects API keys on this session-only route.
    current_account(blueprint.current_request)
    return json_response({"actions": sorted(key_actions())})


@route(blueprint, "/v1/api-keys/{key_id}", ["DELETE"], session_only=True, status=204)
def revoke_api_key(key_id: str) -> object:
    account = current_account(blueprint.current_request)
    apikeys.revoke_key(account.account_id, key_id)
    return empty_response()
