"""Test fixtures: one DynamoDB Local server per test session, reached over HTTP on
127.0.0.1, with fresh tables per test module and a clock that tests set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

os.environ.setdefault("LOBSTER_STAGE", "test")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("LOBSTER_DEMO_PROVISION_SECONDS", "0")
os.environ.setdefault("LOBSTER_BILLING_SHARDS", "4")
# Each test process gets its own table prefix, so parallel workers never share tables.
os.environ.setdefault("LOBSTER_TABLE_PREFIX", f"t{uuid.uuid4().hex[:8]}-")

# The endpoint is fixed now, because models read it at import; the server itself starts
# only when a test needs tables, so backend and gateway tests run without Java.
# Each process (and each pytest-xdist worker, which inherits the marker) owns a server,
# unless LOBSTER_DYNAMODB_ENDPOINT names one that the caller started.
_OWN_SERVER = "LOBSTER_DYNAMODB_ENDPOINT" not in os.environ or os.environ.get("LOBSTER_TEST_OWN_SERVER") == "1"
if _OWN_SERVER:
    from tools import dynamodb_local

    _PORT = dynamodb_local.free_port()
    os.environ["LOBSTER_DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{_PORT}"
    os.environ["LOBSTER_TEST_OWN_SERVER"] = "1"


@pytest.fixture(scope="session")
def tables() -> Iterator[None]:
    from tools import dynamodb_local
    from tools.tables import create_tables

    server = dynamodb_local.start(_PORT) if _OWN_SERVER else None
    try:
        create_tables()
        yield
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def db(tables: None) -> Iterator[None]:
    """Empty every table before the test, so each test starts from a known state."""
    from chalicelib.catalog import invalidate
    from chalicelib.models import ALL_MODELS

    for model in ALL_MODELS:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    invalidate()
    yield
    invalidate()


@pytest.fixture
def clock() -> Iterator[object]:
    from chalicelib import clock as clock_module

    yield clock_module
    clock_module.set_time(None)


@pytest.fixture
def demo_catalog(db: None) -> None:
    from tools.seed import seed_demo

    seed_demo()
