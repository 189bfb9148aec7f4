"""API keys through the API on DynamoDB Local: the secret shown once and stored hashed,
action and address limits (IPv4 and IPv6), revocation and the recorded last use."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app import app
from chalicelib import clock
from chalicelib.models.apikeys import ApiKey
from tests.api_calls import VM_BODY, ApiCaller

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def api() -> ApiCaller:
    clock.set_time(T0)
    return ApiCaller(app)


@pytest.fixture
def session(api: ApiCaller) -> str:
    token = api.verified_session("ann@example.com")
    api.add_credit(token)
    return token


def create_key(api: ApiCaller, session: str, **limits: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/api-keys", {"label": "deploy", **limits}, session)
    assert reply.status == 201, reply.body
    return reply.body


def test_secret_shown_once_and_stored_hashed(api: ApiCaller, session: str) -> None:
    created = create_key(api, session)

    secret = created["secret"]
    key_id = created["id"]
    listed = api.call("GET", "/v1/api-keys", token=session).body["api_keys"]
    stored = ApiKey.get(key_id)

    assert secret.startswith(f"lbk_{key_id}_")
    assert [key["id"] for key in listed] == [key_id]
    assert "secret" not in listed[0]
    raw_secret = secret.removeprefix(f"lbk_{key_id}_")
    assert stored.secret_hash == hashlib.sha256(raw_secret.encode()).hexdigest()
    assert raw_secret not in str(stored.attribute_values)


def test_key_authenticates_like_session(api: ApiCaller, session: str) -> None:
    key = create_key(api, session)["secret"]

    account = api.call("GET", "/v1/account", token=key)

    assert account.status == 200
    assert account.body["email"] == "ann@example.com"


def test_key_with_wrong_secret_is_rejected(api: ApiCaller, session: str) -> None:
    created = create_key(api, session)

    forged = api.call("GET", "/v1/account", token=f"lbk_{created['id']}_not-the-secret")
    malformed = api.call("GET", "/v1/account", token="lbk_nothex_secret")

    assert forged.status == 401
    assert malformed.status == 401


def test_action_limited_key_calls_only_listed_actions(api: ApiCaller, session: str) -> None:
    key = create_key(api, session, actions=["vms:read", "ledger:read"])["secret"]

    assert api.call("GET", "/v1/vms", token=key).status == 200
    assert api.call("GET", "/v1/ledger", token=key).status == 200
    rejected = api.call("POST", "/v1/payments", {"gateway": "demo", "amount": "20.00"}, key)
    assert rejected.status == 403
    assert "payments:create" in rejected.body["error"]["message"]
    assert api.call("GET", "/v1/account", token=key).status == 403


def test_resource_wildcard_allows_every_action_of_resource(api: ApiCaller, session: str) -> None:
    key = create_key(api, session, actions=["vms:*"])["secret"]

    created = api.call("POST", "/v1/vms", VM_BODY, key)

    assert created.status == 201
    assert api.call("GET", f"/v1/vms/{created.body['id']}", token=key).status == 200
    assert api.call("GET", "/v1/ledger", token=key).status == 403


def test_key_cannot_manage_credentials(api: ApiCaller, session: str) -> None:
    key = create_key(api, session)["secret"]

    assert api.call("POST", "/v1/api-keys", {"label": "another"}, key).status == 403
    assert api.call("GET", "/v1/api-keys", token=key).status == 403
    assert api.call("POST", "/v1/account/password", {"current_password": "x" * 10, "new_password": "y" * 10}, key).status == 403
    assert api.call("POST", "/v1/auth/logout", token=key).status == 403


@pytest.mark.parametrize(
    ("cidrs", "allowed", "rejected"),
    [
        (["203.0.113.0/24"], ["203.0.113.9", "::ffff:203.0.113.10"], ["198.51.100.1", "2001:db8::1"]),
        (["198.51.100.7"], ["198.51.100.7"], ["198.51.100.8"]),
        (["2001:db8:1::/48"], ["2001:db8:1::5", "2001:db8:1:ffff::1"], ["2001:db8:2::5", "203.0.113.9"]),
        (["2001:db8::/32", "192.0.2.0/24"], ["2001:db8:abcd::1", "192.0.2.200"], ["2001:db9::1", "192.0.3.1"]),
    ],
)
def test_address_limited_key(api: ApiCaller, session: str, cidrs: list[str], allowed: list[str], rejected: list[str]) -> None:
    key = create_key(api, session, allowed_cidrs=cidrs)["secret"]

    for address in allowed:
        assert api.call("GET", "/v1/vms", token=key, source_ip=address).status == 200, address
    for address in rejected:
        reply = api.call("GET", "/v1/vms", token=key, source_ip=address)
        assert reply.status == 403, address
        assert reply.body["error"]["code"] == "forbidden"


def test_cidrs_are_normalised(api: ApiCaller, session: str) -> None:
    created = create_key(api, session, allowed_cidrs=["2001:0db8:0000::/32", "192.0.2.5"])

    assert created["allowed_cidrs"] == ["192.0.2.5/32", "2001:db8::/32"]


def test_revoked_key_is_rejected(api: ApiCaller, session: str) -> None:
    created = create_key(api, session)

    revoked = api.call("DELETE", f"/v1/api-keys/{created['id']}", token=session)

    assert revoked.status == 204
    assert api.call("GET", "/v1/account", token=created["secret"]).status == 401
    assert api.call("GET", "/v1/api-keys", token=session).body["api_keys"] == []


def test_other_account_cannot_revoke_key(api: ApiCaller, session: str) -> None:
    created = create_key(api, session)
    intruder = api.verified_session("intruder@example.com")

    rejected = api.call("DELETE", f"/v1/api-keys/{created['id']}", token=intruder)

    assert rejected.status == 404
    assert api.call("GET", "/v1/account", token=created["secret"]).status == 200
    assert api.call("GET", "/v1/api-keys", token=intruder).body["api_keys"] == []


def test_last_use_recorded_at_most_once_a_minute(api: ApiCaller, session: str) -> None:
    created = create_key(api, session)
    key = created["secret"]

    api.call("GET", "/v1/vms", token=key, source_ip="2001:db8::7")
    first = ApiKey.get(created["id"])
    clock.set_time(T0 + timedelta(seconds=30))
    api.call("GET", "/v1/vms", token=key, source_ip="203.0.113.50")
    within_minute = ApiKey.get(created["id"])
    clock.set_time(T0 + timedelta(seconds=61))
    api.call("GET", "/v1/vms", token=key, source_ip="203.0.113.50")
    listed = api.call("GET", "/v1/api-keys", token=session).body["api_keys"][0]

    assert (first.last_used_at, first.last_used_ip) == ("2026-12-04T09:30:00Z", "2001:db8::7")
    assert (within_minute.last_used_at, within_minute.last_used_ip) == ("2026-12-04T09:30:00Z", "2001:db8::7")
    assert (listed["last_used_at"], listed["last_used_ip"]) == ("2026-12-04T09:31:01Z", "203.0.113.50")


def test_unused_key_lists_no_last_use(api: ApiCaller, session: str) -> None:
    create_key(api, session, actions=["vms:read"], allowed_cidrs=["203.0.113.0/24"])

    listed = api.call("GET", "/v1/api-keys", token=session).body["api_keys"][0]

    assert listed["last_used_at"] is None
    assert listed["actions"] == ["vms:read"]
    assert listed["allowed_cidrs"] == ["203.0.113.0/24"]


def test_action_list_names_key_actions_only(api: ApiCaller, session: str) -> None:
    listed = api.call("GET", "/v1/api-keys/actions", token=session)

    actions = listed.body["actions"]
    assert listed.status == 200
    assert actions == sorted(actions)
    assert {"vms:create", "vms:read", "ssh-keys:delete", "tickets:create"} <= set(actions)
    assert "api-keys:create" not in actions
    assert "auth:login" not in actions


def test_action_list_needs_session_token(api: ApiCaller, session: str) -> None:
    key = create_key(api, session)["secret"]

    assert api.call("GET", "/v1/api-keys/actions", token=key).status == 403
    assert api.call("GET", "/v1/api-keys/actions").status == 401
