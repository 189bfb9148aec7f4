"""Shared pieces of the customer API tests: calls through Chalice's test client, signed-in
customers with credit, regions on the fake Vultr and SolusVM servers, and an item count
for "writes nothing" checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import config
from chalicelib.catalog import invalidate
from chalicelib.models import ALL_MODELS, REQUEST_BOOKKEEPING_MODELS
from chalicelib.models.accounts import Account
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.secrets import clear_cache
from tests.fakes import solusvm, vultr
from tests.helpers import PASSWORD, account_with_credit

VULTR_REGION = "vultr"
VULTR_IMAGE = "debian-vultr"
SOLUSVM_REGION = "sol"
SOLUSVM_IMAGE = "ubuntu-ct"
PROVIDER_TIMEOUT_SECONDS = 2


def call(client: Client, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
    """Send one request; return the status and the decoded JSON body."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = b""
    if raw is not None:
        payload = raw
    elif body is not None:
        payload = json.dumps(body).encode()
    response = client.http.request(method, path, headers=headers, body=payload)
    return response.status_code, json.loads(response.body or b"null")


def customer(client: Client, email: str, credit_micros: int, at: datetime) -> tuple[Account, str]:
    """Create a verified account with `credit_micros` of credit and log it in over HTTP."""
    account = account_with_credit(email, credit_micros, at)
    account.update(actions=[Account.email_verified.set(True)])
    return account, log_in(client, email)


def log_in(client: Client, email: str) -> str:
    """Log in over HTTP at the current clock time and return the bearer token."""
    status, body = call(client, "POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, body
    return str(body["token"])


def item_count() -> int:
    """Count customer data items; rate-limit counters and Idempotency-Key records are left out."""
    models = [model for model in ALL_MODELS if model not in REQUEST_BOOKKEEPING_MODELS]
    return sum(1 for model in models for _ in model.scan(consistent_read=True))


@contextmanager
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, dict[str, str]]) -> Iterator[None]:
    """Point LOBSTER_SECRETS_FILE at a file holding `secrets` for the duration."""
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets))
    monkeypatch.setenv("LOBSTER_SECRETS_FILE", str(path))
    config.reload()
    clear_cache()
    try:
        yield
    finally:
        monkeypatch.delenv("LOBSTER_SECRETS_FILE")
        config.reload()
        clear_cache()


def offer_plan(plan_id: str, region: str, backend_plan: str) -> None:
    plan = CatalogItem.get(KIND_PLAN, plan_id)
    plan.update(actions=[CatalogItem.region_ids.set({**plan.region_ids, region: backend_plan})])


@contextmanager
def vultr_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[vultr.FakeVultr]:
    """A region on the fake Vultr API, which offers every capability except provider actions."""
    fake = vultr.FakeVultr()
    base_url = fake.start()
    with secrets_file(tmp_path, monkeypatch, {VULTR_REGION: {"api_key": vultr.API_KEY}}):
        settings = {"api_url": base_url + "/v2", "region": "ewr", "timeout_seconds": PROVIDER_TIMEOUT_SECONDS}
        CatalogItem(
            KIND_REGION, VULTR_REGION, name="Vultr New Jersey", backend="vultr", settings=settings, secret_ref=f"file:{VULTR_REGION}"
        ).save()
        offer_plan("s1", VULTR_REGION, "vc2-1c-1gb")
        offer_plan("m2", VULTR_REGION, "vc2-1c-2gb")
        CatalogItem(KIND_IMAGE, VULTR_IMAGE, name="Debian 12", region=VULTR_REGION, backend_id="2136").save()
        invalidate()
        try:
            yield fake
        finally:
            fake.stop()
            invalidate()


@contextmanager
def solusvm_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[solusvm.FakeSolusVm]:
    """A region of OpenVZ containers on the fake SolusVM master, which offers the TUN/TAP action."""
    fake = solusvm.FakeSolusVm(clients=("lobster" + SOLUSVM_REGION,))
    base_url = fake.start()
    with secrets_file(tmp_path, monkeypatch, {SOLUSVM_REGION: {"api_id": solusvm.API_ID, "api_key": solusvm.API_KEY}}):
        settings = {
            "api_url": base_url + solusvm.COMMAND_PATH,
            "timeout_seconds": PROVIDER_TIMEOUT_SECONDS,
            "username_prefix": "lobster",
            "virtualization_type": "openvz",
        }
        CatalogItem(
            KIND_REGION, SOLUSVM_REGION, name="SolusVM containers", backend="solusvm", settings=settings, secret_ref=f"file:{SOLUSVM_REGION}"
        ).save()
        offer_plan("s1", SOLUSVM_REGION, "Lobster CT")
        CatalogItem(KIND_IMAGE, SOLUSVM_IMAGE, name="Ubuntu 22.04", region=SOLUSVM_REGION, backend_id="ubuntu-22.04-x86_64-ct").save()
        invalidate()
        try:
            yield fake
        finally:
            fake.stop()
            invalidate()
