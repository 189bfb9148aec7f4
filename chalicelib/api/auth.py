"""Account routes: sign-up, e-mail verification, log-in and log-out, password change and
password reset by e-mail.

A password reset request returns 202 whether or not the address has an account.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.accounts import recovery, service, verification
from chalicelib.accounts.ratelimit import hit_account_limit
from chalicelib.api.http import current_principal, empty_response, json_response, route
from chalicelib.api.schema import Field, Schema
from chalicelib.errors import InvalidRequest

blueprint = Blueprint(__name__)

CREDENTIALS = Schema(
    "Credentials",
    (
        Field("email", max_length=254, description="E-mail address"),
        Field("password", max_length=256, description="At least 10 characters"),
    ),
)
TOKEN = Schema("EmailToken", (Field("token", max_length=128, description="Token from the e-mail"),))
RESET_REQUEST = Schema("PasswordResetRequest", (Field("email", max_length=254, description="E-mail address of the account"),))
RESET = Schema(
    "PasswordReset",
    (
        Field("token", max_length=128, description="Token from the reset e-mail"),
        Field("new_password", max_length=256, description="At least 10 characters"),
        Field("new_password_confirmation", max_length=256, description="The new password again"),
    ),
)
PASSWORD_CHANGE = Schema(
    "PasswordChange",
    (
        Field("current_password", max_length=256, description="The password in use now"),
        Field("new_password", max_length=256, description="At least 10 characters"),
    ),
)


@route(blueprint, "/v1/auth/signup", ["POST"], action="auth:signup", public=True)
def sign_up() -> object:
    body = CREDENTIALS.parse_body(blueprint.current_request.raw_body)
    account = service.sign_up(body["email"], body["password"])
    return json_response({"account_id": account.account_id, "email": account.email, "email_verified": False}, 201)


@route(blueprint, "/v1/auth/login", ["POST"], action="auth:login", public=True, secret_fields=("token",))
def log_in() -> object:
    body = CREDENTIALS.parse_body(blueprint.current_request.raw_body)
    _hit_email_limit("auth:login", body["email"])
    token = service.log_in(body["email"], body["password"])
    return json_response({"token": token, "token_type": "Bearer"})


@route(blueprint, "/v1/auth/logout", ["POST"], action="auth:logout", session_only=True)
def log_out() -> object:
    principal = current_principal(blueprint.current_request)
    if principal.session is not None:
        service.log_out(principal.session)
    return empty_response()


@route(blueprint, "/v1/auth/verify", ["POST"], action="auth:verify", public=True)
def verify_email() -> object:
    body = TOKEN.parse_body(blueprint.current_request.raw_body)
    account = verification.verify_email(body["token"])
    return json_response({"account_id": account.account_id, "email": account.email, "email_verified": True})


@route(blueprint, "/v1/auth/verify-request", ["POST"], action="auth:verify-request")
def request_verification() -> object:
    account = current_principal(blueprint.current_request).account
    verification.request_verification(account)
    return json_response({"message": f"a verification token was sent to {account.email}"}, 202)


@route(blueprint, "/v1/auth/reset-request", ["POST"], action="auth:reset-request", public=True)
def request_password_reset() -> object:
    body = RESET_REQUEST.parse_body(blueprint.current_request.raw_body)
    email = service.normalise_email(body["email"])
    _hit_email_limit("auth:reset-request", email)
    recovery.request_password_reset(email)
    return json_response({"message": "if an account uses this address, a reset token was sent to it"}, 202)


@route(blueprint, "/v1/auth/reset", ["POST"], action="auth:reset", public=True)
def reset_password() -> object:
    body = RESET.parse_body(blueprint.current_request.raw_body)
    recovery.reset_password(body["token"], body["new_password"], body["new_password_confirmation"])
    return json_response({"message": "password changed and every session logged out; log in with the new password"})


@route(blueprint, "/v1/account/password", ["POST"], action="account:password", session_only=True)
def change_password() -> object:
    request = blueprint.current_request
    principal = current_principal(request)
    body = PASSWORD_CHANGE.parse_body(request.raw_body)
    keep = principal.session.token_hash if principal.session is not None else None
    ended = service.change_password(principal.account, body["current_password"], body["new_password"], keep)
    return json_response({"message": "password changed", "sessions_ended": ended})


def _hit_email_limit(action: str, email: str) -> None:
    """Count the attempt against the e-mail address; an invalid address is left to the route."""
    try:
        key = service.normalise_email(email)
    except InvalidRequest:
        return
    hit_account_limit(action, key)
