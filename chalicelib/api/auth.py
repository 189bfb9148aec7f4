"""Account routes: sign-up, e-mail verification, log-in and log-out, password change and
password reset by e-mail.

A password reset request returns 202 whether or not the address has an account. A log-in
with `"session": "cookie"` (the web panel's) answers with HttpOnly cookies instead of a token.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.accounts import cookies, recovery, service, verification
from chalicelib.accounts.ratelimit import hit_account_limit
from chalicelib.admin.users import ROLE_ADMIN
from chalicelib.api.http import current_principal, empty_response, json_response, request_body, route
from chalicelib.api.schema import Field, Schema
from chalicelib.config import settings
from chalicelib.errors import InvalidRequest, LobsterError

blueprint = Blueprint(__name__)

CREDENTIALS = Schema(
    "Credentials",
    (
        Field("email", max_length=254, description="E-mail address"),
        Field("password", max_length=256, description="At least 10 characters"),
    ),
)
SESSION_KINDS = ("token", "cookie")
LOGIN = Schema(
    "LogIn",
    (
        *CREDENTIALS.fields,
        Field(
            "session",
            required=False,
            max_length=16,
            description='"token" (the default) returns a bearer token; "cookie" sets HttpOnly session cookies for the web panel',
        ),
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


@route(blueprint, "/v1/auth/signup", ["POST"], action="auth:signup", public=True, body=CREDENTIALS, status=201)
def sign_up() -> object:
    body = request_body()
    account = service.sign_up(body["email"], body["password"])
    return json_response({"account_id": account.account_id, "email": account.email, "email_verified": False}, 201)


@route(blueprint, "/v1/auth/login", ["POST"], action="auth:login", public=True, secret_fields=("token",), body=LOGIN)
def log_in() -> object:
    body = request_body()
    kind = body.get("session", "token")
    if kind not in SESSION_KINDS:
        raise InvalidRequest(f"session must be one of {', '.join(SESSION_KINDS)}", field="session")
    _hit_email_limit("auth:login", body["email"])

    token = service.log_in(body["email"], body["password"])
    if kind == "token":
        return json_response({"token": token, "token_type": "Bearer"})
    headers = {"Set-Cookie": cookies.login_cookies(token, _session_seconds())}
    return json_response({"token": None, "token_type": "Cookie"}, headers=headers)


@route(blueprint, "/v1/auth/logout", ["POST"], action="auth:logout", session_only=True, status=(200, 204))
def log_out() -> object:
    request = blueprint.current_request
    principal = current_principal(request)
    if principal.session is not None:
        service.log_out(principal.session)

    admin_token = cookies.admin_session_from_cookies(request.headers)
    if admin_token and _is_live_admin_session(admin_token):
        return json_response({"restored": "admin"}, headers={"Set-Cookie": cookies.restore_admin_cookies(admin_token, _session_seconds())})
    if cookies.session_from_cookies(request.headers):
        return json_response({"restored": None}, headers={"Set-Cookie": cookies.logout_cookies()})
    return empty_response()


@route(blueprint, "/v1/auth/logout-others", ["POST"], action="auth:logout-others", session_only=True)
def log_out_other_sessions() -> object:
    principal = current_principal(blueprint.current_request)
    keep = principal.session.token_hash if principal.session is not None else None
    ended = service.end_sessions(principal.account.account_id, keep=keep)
    return json_response({"sessions_ended": ended})


@route(blueprint, "/v1/auth/verify", ["POST"], action="auth:verify", public=True, body=TOKEN)
def verify_email() -> object:
    body = request_body()
    account = verification.verify_email(body["token"])
    return json_response({"account_id": account.account_id, "email": account.email, "email_verified": True})


@route(blueprint, "/v1/auth/verify-request", ["POST"], action="auth:verify-request", status=202)
def request_verification() -> object:
    account = current_principal(blueprint.current_request).account
    verification.request_verification(account)
    return json_response({"message": f"a verification token was sent to {account.email}"}, 202)


@route(blueprint, "/v1/auth/reset-request", ["POST"], action="auth:reset-request", public=True, body=RESET_REQUEST, status=202)
def request_password_reset() -> object:
    body = request_body()
    email = service.normalise_email(body["email"])
    _hit_email_limit("auth:reset-request", email)
    recovery.request_password_reset(email)
    return json_response({"message": "if an account uses this address, a reset token was sent to it"}, 202)


@route(blueprint, "/v1/auth/reset", ["POST"], action="auth:reset", public=True, body=RESET)
def reset_password() -> object:
    body = request_body()
    recovery.reset_password(body["token"], body["new_password"], body["new_password_confirmation"])
    return json_response({"message": "password changed and every session logged out; log in with the new password"})


@route(blueprint, "/v1/account/password", ["POST"], action="account:password", session_only=True, body=PASSWORD_CHANGE)
def change_password() -> object:
    request = blueprint.current_request
    principal = current_principal(request)
    body = request_body()
    keep = principal.session.token_hash if principal.session is not None else None
    ended = service.change_password(principal.account, body["current_password"], body["new_password"], keep)
    return json_response({"message": "password changed", "sessions_ended": ended})


def _session_seconds() -> int:
    return settings().session_hours * 3600


def _is_live_admin_session(token: str) -> bool:
    """True when `token` is an unexpired session of an admin, the only session worth restoring."""
    try:
        account, _ = service.authenticate_session(token)
    except LobsterError:
        return False
    return account.role == ROLE_ADMIN


def _hit_email_limit(action: str, email: str) -> None:
    """Count the attempt against the e-mail address; an invalid address is left to the route."""
    try:
        key = service.normalise_email(email)
    except InvalidRequest:
        return
    hit_account_limit(action, key)
