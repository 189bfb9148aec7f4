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

_server = None
if "LOBSTER_DYNAMODB_ENDPOINT" not in os.environ:
    from tools import dynamodb_local

    _server = dynamodb_local.start()
    os.environ["LOBSTER_DYNAMODB_ENDPOINT"] = _server.endpoint


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def tables() -> Iterator[None]:
    from tools.tables import create_tables

    create_tables()
    yield


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
