"""Schemathesis against the app served over HTTP on 127.0.0.1, on DynamoDB Local.

Every operation of GET /openapi.json, called with a session token, must respond without a
5xx and match the document (status code, content type, error schema). A 4xx response must
leave the tables unchanged.

The run is bounded and derandomized: `MAX_EXAMPLES` generated cases per operation, and the
same cases on every run.
"""

from __future__ import annotations

import atexit
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app import app
from chalicelib import clock
from chalicelib.admin.users import create_admin
from chalicelib.catalog import invalidate
from chalicelib.models import ALL_MODELS, IdempotencyRecord, RateCounter
from tests.api_calls import PASSWORD, ApiCaller
from tests.local_server import serve

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
MAX_EXAMPLES = 6
REQUEST_TIMEOUT_SECONDS = 10
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIWKQ0nsKQpp6o0RGPzmnK7EZepwqFDN0TWhKpek+wzo fuzz@example"

# Tables that a request rejected with a 4xx may write by design, with the reason. Every other
# table must be unchanged after a 4xx.
WRITES_ON_REJECTION = {
    # A rejected attempt counts against its rate limit, so limits cannot be probed for free.
    RateCounter: "rate-limit counters",
    # Powertools stores an Idempotency-Key while its request runs and deletes it again when
    # the response is not 2xx. The table is left out, so that step needs no exact timing.
    IdempotencyRecord: "Idempotency-Key records",
}
CHECKED_MODELS = tuple(model for model in ALL_MODELS if model not in WRITES_ON_REJECTION)
# Checks left out: positive_data_acceptance expects a 2xx for every valid body, but random
# path ids name no resource, so 404 is the right response.
EXCLUDED_CHECKS = [positive_data_acceptance]
# Path parameters of customer routes that get the owner's real ids, so generated bodies reach
# the route's own checks instead of stopping at 404. DELETE routes keep generated ids.
OWNER_PATH_IDS = ("vm_id", "ticket_id", "gateway")


# The server starts when this module is imported, because Schemathesis reads the document
# while pytest collects the tests. schemathesis.pytest.from_fixture would defer that to a
# fixture, but Schemathesis 4.32.5 reads `request.node._nodeid`, which pytest 9 no longer has.
# Serving /openapi.json touches no table, so DynamoDB Local is needed only once cases run.
_server = ExitStack()
BASE_URL = _server.enter_context(serve(app))
atexit.register(_server.close)
schema = schemathesis.openapi.from_url(f"{BASE_URL}/openapi.json")


Snapshot = dict[str, list[str]]
_scanners = ThreadPoolExecutor(max_workers=6, thread_name_prefix="snapshot")
atexit.register(_scanners.shutdown)


@dataclass
class FuzzWorld:
    api: ApiCaller
    owner_token: str
    admin_token: str
    ids: dict[str, str]
    # The tables as the last 4xx response left them, which is the state before the next call.
    # None after a call that may have written, so the next call takes a fresh snapshot.
    last_snapshot: Snapshot | None = None


def snapshot() -> Snapshot:
    """Return every item of the checked tables as sorted JSON text, one table per key."""

    def scan(model: Any) -> tuple[str, list[str]]:
        items = [json.dumps(item.attribute_values, sort_keys=True, default=str) for item in model.scan(consistent_read=True)]
        return model.Meta.table_name, sorted(items)

    return dict(_scanners.map(scan, CHECKED_MODELS))


def clear_rate_counters() -> None:
    # Every client of the local server is 127.0.0.1, so without this the per-address limits
    # would reject most of the run with 429. Rate limits have their own tests.
    with RateCounter.batch_write() as batch:
        for counter in RateCounter.scan():
            batch.delete(counter)


@pytest.fixture(scope="module")
def fuzz_world(tables: None) -> Iterator[FuzzWorld]:
    from tools.seed import seed_demo

    for model in ALL_MODELS:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    invalidate()
    seed_demo()
    clock.set_time(T0)

    api = ApiCaller(app)
    owner = api.verified_session("owner@example.com")
    api.add_credit(owner, "50.00")
    vm = api.call("POST", "/v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, owner)
    ticket = api.call("POST", "/v1/tickets", {"subject": "Hello", "message": "First message"}, owner)
    ssh_key = api.call("POST", "/v1/ssh-keys", {"name": "main", "public_key": ED25519}, owner)
    assert (vm.status, ticket.status, ssh_key.status) == (201, 201, 201), (vm.body, ticket.body, ssh_key.body)
    create_admin("admin@example.com", PASSWORD)
    admin = api.log_in("admin@example.com")
    ids = {"vm_id": vm.body["id"], "ticket_id": ticket.body["id"], "gateway": "demo"}

    yield FuzzWorld(api, owner, admin, ids)
    clock.set_time(None)
    invalidate()


def credentials(world: FuzzWorld, path: str, method: str) -> dict[str, str]:
    if path.startswith("/v1/admin/"):
        token = world.admin_token
    elif (method, path) == ("POST", "/v1/auth/logout"):
        # Log-out ends the session it is sent with, so it gets one of its own.
        token = world.api.log_in("owner@example.com")
        world.last_snapshot = None
    else:
        token = world.owner_token
    return {"Authorization": f"Bearer {token}"}


def use_owner_ids(world: FuzzWorld, case: Any) -> None:
    if case.method == "DELETE" or case.path.startswith("/v1/admin/") or not case.path_parameters:
        return
    for name in OWNER_PATH_IDS:
        if name in case.path_parameters:
            case.path_parameters[name] = world.ids[name]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation_conforms_and_writes_nothing_on_4xx(case: Any, fuzz_world: FuzzWorld) -> None:
    use_owner_ids(fuzz_world, case)
    headers = credentials(fuzz_world, case.path, case.method)
    clear_rate_counters()
    before = fuzz_world.last_snapshot or snapshot()
    fuzz_world.last_snapshot = None

    response = case.call(base_url=BASE_URL, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
    after = snapshot() if 400 <= response.status_code < 500 else None
    case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)

    assert response.status_code < 500, response.text
    if after is not None:
        assert set(response.json()["error"]) == {"code", "message", "field"}
        changed = sorted(table for table in before if before[table] != after[table])
        assert changed == [], f"{case.method} {case.formatted_path} answered {response.status_code} but wrote to {changed}"
        fuzz_world.last_snapshot = after
