"""Deployment settings, read once from the environment.

The DynamoDB endpoint is configuration: unset on AWS, a 127.0.0.1 URL for DynamoDB Local.
Prices are decimal text so that sub-micro-unit prices are applied exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from chalicelib.money import parse_micros, parse_rate

STAGES = ("local", "test", "prod")


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    dynamodb_endpoint: str | None
    currency: str
    billing_queue_url: str | None
    minimum_credit_micros: int
    default_vm_limit: int
    minimum_billed_hours: int
    storage_micros_per_gb_hour: Fraction
    bandwidth_micros_per_gib: Fraction
    payment_min_micros: int
    payment_max_micros: int
    billing_shards: int
    session_hours: int
    demo_provision_seconds: int
    secrets_file: str | None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")


DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def public_url() -> str:
    """Return the public base URL of the panel and API (LOBSTER_API_URL), used in e-mails and links."""
    return os.environ.get("LOBSTER_API_URL", DEFAULT_PUBLIC_URL).rstrip("/")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Return the settings for this process; `reload()` drops the cache for tests."""
    stage = _env("LOBSTER_STAGE", "local")
    if stage not in STAGES:
        raise RuntimeError(f"LOBSTER_STAGE={stage!r} is not one of {', '.join(STAGES)}")

    return Settings(
        stage=stage,
        region=_env("AWS_DEFAULT_REGION", "us-east-1"),
        table_prefix=_env("LOBSTER_TABLE_PREFIX", f"lobster-{stage}-"),
        dynamodb_endpoint=os.environ.get("LOBSTER_DYNAMODB_ENDPOINT") or None,
        currency=_env("LOBSTER_CURRENCY", "USD"),
        billing_queue_url=os.environ.get("LOBSTER_BILLING_QUEUE_URL") or None,
        minimum_credit_micros=parse_micros(_env("LOBSTER_MINIMUM_CREDIT", "1.00")),
        default_vm_limit=int(_env("LOBSTER_VM_LIMIT", "5")),
        minimum_billed_hours=int(_env("LOBSTER_MINIMUM_BILLED_HOURS", "1")),
        storage_micros_per_gb_hour=parse_rate(_env("LOBSTER_STORAGE_PRICE_GB_HOUR", "0.0000555")),
        bandwidth_micros_per_gib=parse_rate(_env("LOBSTER_BANDWIDTH_PRICE_GIB", "0.003")),
        payment_min_micros=parse_micros(_env("LOBSTER_PAYMENT_MIN", "5.00")),
        payment_max_micros=parse_micros(_env("LOBSTER_PAYMENT_MAX", "300.00")),
        billing_shards=int(_env("LOBSTER_BILLING_SHARDS", "16")),
        session_hours=int(_env("LOBSTER_SESSION_HOURS", "24")),
        demo_provision_seconds=int(_env("LOBSTER_DEMO_PROVISION_SECONDS", "20")),
        secrets_file=os.environ.get("LOBSTER_SECRETS_FILE") or None,
    )


def reload() -> Settings:
    """Re-read the environment; tests call this after changing variables."""
    settings.cache_clear()
    return settings()
