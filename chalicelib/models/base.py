"""Shared pieces of every table model: the table name prefix, the endpoint, and
attributes that refuse anything but integers where money or counters are stored.

A float never reaches DynamoDB: `MicrosAttribute` and `IntMapAttribute` raise TypeError.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.transactions import TransactWrite

from chalicelib.config import settings
from chalicelib.money import require_int


def table_name(suffix: str) -> str:
    return f"{settings().table_prefix}{suffix}"


class BaseMeta:
    """Meta fields every model shares; each model subclasses it and sets `table_name`."""

    region = settings().region
    host = settings().dynamodb_endpoint
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 5
    read_timeout_seconds = 10
    max_retry_attempts = 3


@lru_cache(maxsize=1)
def connection() -> Connection:
    """Return the low-level connection that transactions use, at the configured endpoint."""
    config = settings()
    return Connection(region=config.region, host=config.dynamodb_endpoint, max_retry_attempts=3)


def transact_write() -> TransactWrite:
    """Start a DynamoDB transaction (at most 100 items, all or nothing)."""
    return TransactWrite(connection=connection())


class MicrosAttribute(NumberAttribute):
    """An integer amount of micro-units; floats and Decimals are rejected."""

    def serialize(self, value: Any) -> Any:
        return super().serialize(require_int(value))


class IntMapAttribute(UnicodeAttribute):
    """A small map of string keys to integers, stored as compact JSON text."""

    def serialize(self, value: Any) -> Any:
        for key, number in value.items():
            if not isinstance(key, str):
                raise TypeError(f"map key {key!r} must be a string")
            require_int(number)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def deserialize(self, value: Any) -> Any:
        return json.loads(value)


class JsonAttribute(UnicodeAttribute):
    """Structured data stored as compact JSON text; floats are rejected both ways."""

    def serialize(self, value: Any) -> Any:
        _reject_floats(value)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def deserialize(self, value: Any) -> Any:
        return json.loads(value, parse_float=_reject_float_text)


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(f"float {value!r} cannot be stored; use integers")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _reject_floats(item)


def _reject_float_text(text: str) -> Any:
    raise TypeError(f"stored JSON contains the float {text}; amounts must be integers")
