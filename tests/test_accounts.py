"""Accounts through the API on DynamoDB Local: e-mail verification, log-in and log-out,
password change and password reset, with tokens read from the sent e-mails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app import app
from chalicelib import clock
from chalicelib.accounts.tokens import token_digest
from chalicelib.models.auth import AuthItem, Session
from tests.api_calls import PASSWORD, VM_BODY, ApiCaller, data_item_count, mailed_token, mails_to

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
NEW_PASSWORD = "a much longer new password"


@pytest.fixture
def api() -> ApiCaller:
    clock.set_time(T0)
    return ApiCaller(app)


def test_signup_mails_verification_token(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")

    token = mailed_token("ann@example.com", "verify_email")

    assert AuthItem.get(f"verify#{token_digest(token)}").account_id.startswith("acct_")
    assert not any(token in str(item.attribute_values) for item in AuthItem.scan())


def test_unverified_account_cannot_create_vm(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = api.log_in("ann@example.com")

    api.add_credit(token)
    rejected = api.call("POST", "/v1/vms", VM_BODY, token)

    assert rejected.status == 403
    assert rejected.body["error"]["code"] == "forbidden"
    assert "verify your e-mail address" in rejected.body["error"]["message"]
    assert api.call("GET", "/v1/account", token=token).status == 200


def test_verified_account_creates_vm(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = api.log_in("ann@example.com")
    api.add_credit(token)

    verified = api.call("POST", "/v1/auth/verify", {"token": mailed_token("ann@example.com", "verify_email")})
    created = api.call("POST", "/v1/vms", VM_BODY, token)

    assert verified.status == 200
    assert verified.body["email_verified"] is True
    assert created.status == 201


def test_verification_token_works_once(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = mailed_token("ann@example.com", "verify_email")

    assert api.call("POST", "/v1/auth/verify", {"token": token}).status == 200
    again = api.call("POST", "/v1/auth/verify", {"token": token})

    assert again.status == 400
    assert again.error_field == "token"


def test_verification_token_expires_after_48_hours(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = mailed_token("ann@example.com", "verify_email")

    clock.set_time(T0 + timedelta(hours=48))
    expired = api.call("POST", "/v1/auth/verify", {"token": token})

    assert expired.status == 400
    assert expired.error_field == "token"
    assert "expired" in expired.body["error"]["message"]


def test_verify_request_mails_new_token_until_verified(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    session = api.log_in("ann@example.com")

    resent = api.call("POST", "/v1/auth/verify-request", token=session)
    api.verify("ann@example.com")
    after = api.call("POST", "/v1/auth/verify-request", token=session)

    assert resent.status == 202
    assert mails_to("ann@example.com", "verify_email") >= 2
    assert after.status == 409


def test_login_wrong_password_and_unknown_address_look_alike(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")

    wrong = api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": "not the password"})
    unknown = api.call("POST", "/v1/auth/login", {"email": "nobody@example.com", "password": PASSWORD})

    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body


def test_session_token_is_stored_hashed(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = api.log_in("ann@example.com")

    stored = [session.token_hash for session in Session.scan()]

    assert stored == [token_digest(token)]
    assert token.split(".")[1] not in str([session.attribute_values for session in Session.scan()])


def test_logout_ends_session(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    token = api.log_in("ann@example.com")
    other = api.log_in("ann@example.com")

    logged_out = api.call("POST", "/v1/auth/logout", token=token)

    assert logged_out.status == 204
    assert api.call("GET", "/v1/account", token=token).status == 401
    assert api.call("GET", "/v1/account", token=other).status == 200


def test_change_password_ends_other_sessions(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    current = api.log_in("ann@example.com")
    other = api.log_in("ann@example.com")

    changed = api.call("POST", "/v1/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, current)

    assert changed.status == 200
    assert changed.body["sessions_ended"] == 1
    assert api.call("GET", "/v1/account", token=current).status == 200
    assert api.call("GET", "/v1/account", token=other).status == 401
    assert api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD}).status == 401
    assert api.log_in("ann@example.com", NEW_PASSWORD)
    assert mails_to("ann@example.com", "password_changed") == 1


def test_change_password_wrong_current_password_changes_nothing(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    current = api.log_in("ann@example.com")
    other = api.log_in("ann@example.com")

    rejected = api.call("POST", "/v1/account/password", {"current_password": "wrong password", "new_password": NEW_PASSWORD}, current)

    assert rejected.status == 400
    assert rejected.error_field == "current_password"
    assert api.call("GET", "/v1/account", token=other).status == 200
    assert api.log_in("ann@example.com", PASSWORD)


def test_reset_request_unknown_address_gets_202(api: ApiCaller) -> None:
    sent_before = mails_to("nobody@example.com", "password_reset")

    reply = api.call("POST", "/v1/auth/reset-request", {"email": "nobody@example.com"})

    assert reply.status == 202
    assert mails_to("nobody@example.com", "password_reset") == sent_before


def test_reset_flow_sets_password_and_ends_sessions(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    session = api.log_in("ann@example.com")

    requested = api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    token = mailed_token("ann@example.com", "password_reset")
    reset = api.call("POST", "/v1/auth/reset", _reset_body(token))

    assert requested.status == 202
    assert reset.status == 200
    assert api.call("GET", "/v1/account", token=session).status == 401
    assert api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD}).status == 401
    new_session = api.log_in("ann@example.com", NEW_PASSWORD)
    assert api.call("GET", "/v1/account", token=new_session).status == 200


def test_reset_marks_address_verified(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})

    api.call("POST", "/v1/auth/reset", _reset_body(mailed_token("ann@example.com", "password_reset")))
    session = api.log_in("ann@example.com", NEW_PASSWORD)
    api.add_credit(session)

    assert api.call("POST", "/v1/vms", VM_BODY, session).status == 201


def test_reset_token_works_once(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    token = mailed_token("ann@example.com", "password_reset")

    assert api.call("POST", "/v1/auth/reset", _reset_body(token)).status == 200
    again = api.call("POST", "/v1/auth/reset", _reset_body(token, "yet another password"))

    assert again.status == 400
    assert again.error_field == "token"
    assert api.log_in("ann@example.com", NEW_PASSWORD)


def test_reset_token_expires_after_60_minutes(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    token = mailed_token("ann@example.com", "password_reset")

    clock.set_time(T0 + timedelta(minutes=59))
    assert api.call("POST", "/v1/auth/reset", _reset_body(token, confirmation="mismatch")).status == 400
    clock.set_time(T0 + timedelta(minutes=60))
    expired = api.call("POST", "/v1/auth/reset", _reset_body(token))

    assert expired.status == 400
    assert expired.error_field == "token"
    assert "expired" in expired.body["error"]["message"]
    assert api.log_in("ann@example.com", PASSWORD)


def test_reset_confirmation_mismatch_changes_nothing(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    session = api.log_in("ann@example.com")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    token = mailed_token("ann@example.com", "password_reset")

    mismatch = api.call("POST", "/v1/auth/reset", _reset_body(token, confirmation="a different password"))

    assert mismatch.status == 400
    assert mismatch.error_field == "new_password_confirmation"
    assert api.call("GET", "/v1/account", token=session).status == 200
    assert api.log_in("ann@example.com", PASSWORD)
    assert api.call("POST", "/v1/auth/reset", _reset_body(token)).status == 200


def test_newer_reset_email_replaces_older_token(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    older = mailed_token("ann@example.com", "password_reset")
    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    newer = mailed_token("ann@example.com", "password_reset")

    rejected = api.call("POST", "/v1/auth/reset", _reset_body(older))

    assert rejected.status == 400
    assert rejected.error_field == "token"
    assert api.call("POST", "/v1/auth/reset", _reset_body(newer)).status == 200


def _reset_body(token: str, password: str = NEW_PASSWORD, confirmation: str | None = None) -> dict[str, str]:
    return {"token": token, "new_password": password, "new_password_confirmation": confirmation or password}


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "status"),
    [
        ("POST", "/v1/auth/verify", {}, "token", 400),
        ("POST", "/v1/auth/verify", {"token": "no such token"}, "token", 400),
        ("POST", "/v1/auth/verify", {"token": "x" * 129}, "token", 400),
        ("POST", "/v1/auth/verify", {"token": 42}, "token", 400),
        ("POST", "/v1/auth/verify", {"token": "abc", "extra": 1}, "extra", 400),
        ("POST", "/v1/auth/reset-request", {}, "email", 400),
        ("POST", "/v1/auth/reset-request", {"email": "not-an-address"}, "email", 400),
        ("POST", "/v1/auth/reset", {"token": "abc", "new_password": NEW_PASSWORD}, "new_password_confirmation", 400),
        ("POST", "/v1/auth/reset", {"token": "abc", "new_password": "short", "new_password_confirmation": "short"}, "new_password", 400),
        ("POST", "/v1/auth/reset", {"token": "unknown", "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}, "token", 400),
        ("POST", "/v1/account/password", {"new_password": NEW_PASSWORD}, "current_password", 400),
        ("POST", "/v1/account/password", {"current_password": PASSWORD, "new_password": "short"}, "new_password", 400),
        ("POST", "/v1/account/password", {"current_password": PASSWORD, "new_password": ["list"]}, "new_password", 400),
        ("POST", "/v1/api-keys", {}, "label", 400),
        ("POST", "/v1/api-keys", {"label": ""}, "label", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "actions": "vms:read"}, "actions", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "actions": []}, "actions", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "actions": ["vms:fly"]}, "actions", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "allowed_cidrs": ["10.0.0.1/8"]}, "allowed_cidrs", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "allowed_cidrs": ["2001:db8::/129"]}, "allowed_cidrs", 400),
        ("POST", "/v1/api-keys", {"label": "ci", "allowed_cidrs": [7]}, "allowed_cidrs", 400),
        ("DELETE", "/v1/api-keys/0123456789abcdef", None, "key_id", 404),
        ("POST", "/v1/vms", VM_BODY, None, 403),
    ],
)
def test_bad_input_names_field_and_writes_nothing(
    api: ApiCaller, method: str, path: str, body: dict[str, Any] | None, field: str | None, status: int
) -> None:
    api.sign_up("ann@example.com")
    session = api.log_in("ann@example.com")
    before = data_item_count()

    reply = api.call(method, path, body, session)

    assert reply.status == status
    assert reply.error_field == field
    assert data_item_count() == before


def test_log_out_others_keeps_only_the_calling_session(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    kept = api.log_in("ann@example.com")
    other = api.log_in("ann@example.com")
    third = api.log_in("ann@example.com")

    reply = api.call("POST", "/v1/auth/logout-others", token=kept)

    assert reply.status == 200
    assert reply.body == {"sessions_ended": 2}
    assert api.call("GET", "/v1/account", token=kept).status == 200
    assert api.call("GET", "/v1/account", token=other).status == 401
    assert api.call("GET", "/v1/account", token=third).status == 401
