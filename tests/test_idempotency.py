"""Idempotency-Key on mutating routes, on DynamoDB Local through Powertools' persistence
layer: replays, body mismatches, errors that are not kept, and concurrent duplicates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from chalice import Blueprint, Chalice

from app import app
from chalicelib import clock
from chalicelib.api import http
from chalicelib.api.http import json_response, route
from chalicelib.models.idempotency import IdempotencyRecord
from chalicelib.models.vms import Vm
from tests.api_calls import PASSWORD, VM_BODY, ApiCaller, Reply

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


def create_vm(api: ApiCaller, token: str, key: str, body: dict[str, str] = VM_BODY) -> Reply:
    return api.call("POST", "/v1/vms", body, token, headers={"Idempotency-Key": key})


def vm_count() -> int:
    return sum(1 for vm in Vm.scan(consistent_read=True) if vm.state != "deleted")


def test_repeat_returns_first_result_and_creates_one_vm(api: ApiCaller, session: str) -> None:
    first = create_vm(api, session, "create-web1")
    second = create_vm(api, session, "create-web1")

    assert first.status == second.status == 201
    assert second.body == first.body
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert vm_count() == 1


def test_same_body_with_other_whitespace_is_a_repeat(api: ApiCaller, session: str) -> None:
    first = create_vm(api, session, "create-web1")
    raw = b'{ "image": "debian-12",  "plan": "s1", "region": "demo", "name": "web1" }'

    second = api.call("POST", "/v1/vms", token=session, headers={"Idempotency-Key": "create-web1"}, raw=raw)

    assert second.status == 201
    assert second.body == first.body
    assert vm_count() == 1


def test_same_key_with_different_body_is_409(api: ApiCaller, session: str) -> None:
    create_vm(api, session, "create-web1")

    conflict = create_vm(api, session, "create-web1", VM_BODY | {"name": "web2"})

    assert conflict.status == 409
    assert conflict.error_field == "Idempotency-Key"
    assert vm_count() == 1


def test_without_key_each_request_runs(api: ApiCaller, session: str) -> None:
    api.call("POST", "/v1/vms", VM_BODY, session)
    api.call("POST", "/v1/vms", VM_BODY | {"name": "web2"}, session)

    assert vm_count() == 2


def test_keys_belong_to_one_account(api: ApiCaller, session: str) -> None:
    other = api.verified_session("bob@example.com")
    api.add_credit(other)

    mine = create_vm(api, session, "shared-key")
    theirs = create_vm(api, other, "shared-key")

    assert mine.status == theirs.status == 201
    assert mine.body["id"] != theirs.body["id"]
    assert vm_count() == 2


def test_error_is_not_kept_so_retry_runs(api: ApiCaller) -> None:
    token = api.verified_session("ann@example.com")

    rejected = create_vm(api, token, "create-web1")
    api.add_credit(token)
    retried = create_vm(api, token, "create-web1")

    assert rejected.status == 402
    assert retried.status == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert vm_count() == 1


def test_delete_repeat_is_replayed(api: ApiCaller, session: str) -> None:
    vm = create_vm(api, session, "create-web1").body

    first = api.call("DELETE", f"/v1/vms/{vm['id']}", token=session, headers={"Idempotency-Key": "delete-web1"})
    second = api.call("DELETE", f"/v1/vms/{vm['id']}", token=session, headers={"Idempotency-Key": "delete-web1"})

    assert first.status == second.status
    assert second.body == first.body
    assert second.headers["Idempotent-Replayed"] == "true"


def test_replay_leaves_out_secret_fields(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    body = {"email": "ann@example.com", "password": PASSWORD}

    first = api.call("POST", "/v1/auth/login", body, headers={"Idempotency-Key": "login-1"})
    second = api.call("POST", "/v1/auth/login", body, headers={"Idempotency-Key": "login-1"})

    assert first.body["token"]
    assert second.status == 200
    assert second.body == {"token": None, "token_type": "Bearer"}
    assert all(first.body["token"] not in (record.data or "") for record in IdempotencyRecord.scan())


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\u00e9key"])
def test_malformed_key_is_rejected(api: ApiCaller, session: str, key: str) -> None:
    reply = create_vm(api, session, key)

    assert reply.status == 400
    assert reply.error_field == "Idempotency-Key"
    assert vm_count() == 0


def test_concurrent_duplicates_create_one_vm(api: ApiCaller, session: str) -> None:
    replies: list[Reply] = []
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        replies.append(create_vm(api, session, "create-web1"))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert vm_count() == 1
    assert {reply.status for reply in replies} <= {201, 409}
    assert len({reply.body["id"] for reply in replies if reply.status == 201}) == 1


@pytest.fixture
def route_registry() -> Iterator[None]:
    """Forget the routes a test registers, so the app's route list and OpenAPI document stay its own."""
    registered = list(http._routes)
    actions = set(http._key_actions)
    yield
    http._routes[:] = registered
    http._key_actions.clear()
    http._key_actions.update(actions)


@pytest.mark.usefixtures("route_registry")
def test_duplicate_while_first_runs_is_409_then_replayed() -> None:
    entered, release = threading.Event(), threading.Event()
    blueprint = Blueprint("tests.slow_route")

    @route(blueprint, "/v1/slow", ["POST"], public=True)
    def slow() -> object:
        entered.set()
        release.wait(timeout=10)
        return json_response({"done": True}, 201)

    slow_app = Chalice(app_name="idempotency-test")
    slow_app.experimental_feature_flags.update(["BLUEPRINTS"])
    slow_app.register_blueprint(blueprint)
    caller = ApiCaller(slow_app)
    first: list[Reply] = []
    worker = threading.Thread(target=lambda: first.append(caller.call("POST", "/v1/slow", {}, headers={"Idempotency-Key": "slow-1"})))

    worker.start()
    assert entered.wait(timeout=10)
    duplicate = caller.call("POST", "/v1/slow", {}, headers={"Idempotency-Key": "slow-1"})
    release.set()
    worker.join()
    replay = caller.call("POST", "/v1/slow", {}, headers={"Idempotency-Key": "slow-1"})

    assert duplicate.status == 409
    assert "still running" in duplicate.body["error"]["message"]
    assert first[0].status == 201
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
