"""Sign-up and log-in routes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.accounts import service
from chalicelib.api.http import json_response, route
from chalicelib.api.schema import Field, Schema

blueprint = Blueprint(__name__)

CREDENTIALS = Schema(
    "Credentials",
    (
        Field("email", max_length=254, description="E-mail address"),
        Field("password", max_length=256, description="At least 10 characters"),
    ),
)


@route(blueprint, "/v1/auth/signup", ["POST"])
def sign_up() -> object:
    body = CREDENTIALS.parse_body(blueprint.current_request.raw_body)
    account = service.sign_up(body["email"], body["password"])
    return json_response({"account_id": account.account_id, "email": account.email}, 201)


@route(blueprint, "/v1/auth/login", ["POST"])
def log_in() -> object:
    body = CREDENTIALS.parse_body(blueprint.current_request.raw_body)
    token = service.log_in(body["email"], body["password"])
    return json_response({"token": token, "token_type": "Bearer"})
