"""Shared set-up for the end-to-end payment tests: the fake PayPal, Coinbase Commerce and
Stripe servers configured as this deployment's gateways, webhook deliveries through the
Chalice test client, customers, and faults injected at the DynamoDB wire.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import config, secrets
from chalicelib.models.base import connection
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.payments import Payment
from chalicelib.notify.sender import outbox
from chalicelib.payments.base import CallbackRequest
from chalicelib.payments.paypal import clear_token_cache
from tests.fakes.coinbase import FakeCoinbase
from tests.fakes.paypal import FakePayPal
from tests.fakes.stripe import FakeStripe

PASSWORD = "correct horse battery"
RETURN_URL = "https://panel.lobster.example/billing"
# How long a paused transaction waits for the test to release it before failing the test.
PAUSE_LIMIT_SECONDS = 20


@dataclass
class Gateways:
    paypal: FakePayPal
    coinbase: FakeCoinbase
    stripe: FakeStripe


@contextmanager
def running_gateways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateways]:
    """Start the three fake gateways and enable them through LOBSTER_GATEWAYS and file: secrets."""
    clear_token_cache()  # a new fake may reuse a stopped fake's port
    fakes = Gateways(FakePayPal(), FakeCoinbase(), FakeStripe())
    paypal_url = fakes.paypal.start()
    coinbase_url = fakes.coinbase.start()
    stripe_url = fakes.stripe.start()
    fakes.coinbase.base_url = coinbase_url
    fakes.stripe.base_url = stripe_url

    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(
        json.dumps(
            {
                "paypal": {"client_id": fakes.paypal.client_id, "client_secret": fakes.paypal.client_secret},
                "coinbase": {"api_key": fakes.coinbase.api_key, "webhook_secret": fakes.coinbase.webhook_secret},
                "stripe": {"secret_key": fakes.stripe.secret_key, "webhook_secret": fakes.stripe.webhook_secret},
            }
        )
    )
    gateways = {
        "paypal": {
            "settings": {
                "api_url": paypal_url,
                "ipn_url": fakes.paypal.ipn_url,
                "webhook_id": fakes.paypal.webhook_id,
                "receiver_email": fakes.paypal.receiver_email,
            },
            "secret_ref": "file:paypal",
        },
        "coinbase": {"settings": {"api_url": coinbase_url}, "secret_ref": "file:coinbase"},
        "stripe": {"settings": {"api_url": stripe_url, "return_url": RETURN_URL}, "secret_ref": "file:stripe"},
    }
    monkeypatch.setenv("LOBSTER_GATEWAYS", json.dumps(gateways))
    monkeypatch.setenv("LOBSTER_SECRETS_FILE", str(secrets_file))
    config.reload()
    secrets.clear_cache()
    outbox.clear()
    try:
        yield fakes
    finally:
        for fake in (fakes.paypal, fakes.coinbase, fakes.stripe):
            fake.stop()
        monkeypatch.undo()
        config.reload()
        secrets.clear_cache()


# The customer API.


def call(client: Client, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode() if body is not None else b""
    response = client.http.request(method, path, headers=headers, body=payload)
    return response.status_code, json.loads(response.body or b"null")


def customer(client: Client, email: str) -> tuple[str, str]:
    """Sign up and log in through the API; return (account id, bearer token)."""
    status, body = call(client, "POST", "/v1/auth/signup", {"email": email, "password": PASSWORD})
    assert status == 201, body
    status, body = call(client, "POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, body
    token = body["token"]
    status, account = call(client, "GET", "/v1/account", token=token)
    assert status == 200, account
    return account["account_id"], token


# Webhook deliveries.


def deliver(client: Client, gateway: str, headers: Mapping[str, str], body: bytes, query: str = "") -> tuple[int, Any]:
    """POST a callback's exact bytes to the webhook route and return (status, decoded body)."""
    path = f"/v1/webhooks/{gateway}" + (f"?{query}" if query else "")
    response = client.http.request("POST", path, headers=dict(headers), body=body)
    return response.status_code, json.loads(response.body or b"null")


def deliver_callback(client: Client, gateway: str, callback: CallbackRequest) -> tuple[int, Any]:
    return deliver(client, gateway, callback.headers, callback.raw_body)


def deliver_concurrently(
    client: Client, gateway: str, headers: Mapping[str, str], body: bytes, copies: int
) -> list[tuple[int, Any]]:
    """Deliver `copies` identical callbacks at once and return every response.

    Chalice keeps the current request on the app object, as one Lambda process handles one
    request at a time, so the copies must carry the same bytes. Its test client also swaps
    os.environ during each request. Parallel requests can leave a copy in place, so the
    process's own environment is put back afterwards.
    """
    environment = os.environ
    barrier = threading.Barrier(copies)

    def send(_: int) -> tuple[int, Any]:
        barrier.wait()
        return deliver(client, gateway, headers, body)

    try:
        with ThreadPoolExecutor(max_workers=copies) as pool:
            return list(pool.map(send, range(copies)))
    finally:
        os.environ = environment  # noqa: B003 - the process's own os._Environ, which the test client replaced


# What the database holds.


def payment_lines(account_id: str) -> list[LedgerLine]:
    return [line for line in LedgerLine.query(account_id, consistent_read=True) if line.batch == "payment"]


def payment_item(gateway: str, payment_id: str) -> Payment | None:
    try:
        return Payment.get(f"{gateway}#{payment_id}", consistent_read=True)
    except Payment.DoesNotExist:
        return None


def receipts_to(email: str) -> list[str]:
    return [notice.subject for notice in outbox if notice.template == "payment_received" and notice.to == email]


# Faults at the DynamoDB wire, on the client that runs ledger transactions.


class ProcessKilled(BaseException):
    """The Lambda process stopped here, so nothing after this point ran, not even the response."""


@contextmanager
def killed_after_transaction() -> Iterator[None]:
    """Stop the process right after the next ledger transaction commits, once."""
    client = connection().client
    armed = [True]

    def after(**_: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise ProcessKilled("stopped after the transaction committed")

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", after)
    try:
        yield
    finally:
        client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", after)


@contextmanager
def throttled_transactions() -> Iterator[list[int]]:
    """Fail every ledger transaction as DynamoDB does once the SDK gives up retrying a throttle.

    Yields a list with one count per rejected transaction.
    """
    client = connection().client
    rejected: list[int] = []

    def before(**_: Any) -> None:
        rejected.append(1)
        error = {
            "Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed throughput."}
        }
        raise ClientError(error, "TransactWriteItems")

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", before)
    try:
        yield rejected
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", before)


@dataclass
class Pause:
    reached: threading.Event
    release: threading.Event


@contextmanager
def transaction_paused_in(thread_name: str) -> Iterator[Pause]:
    """Hold the ledger transaction of the thread named `thread_name` until the test releases it."""
    client = connection().client
    pause = Pause(threading.Event(), threading.Event())

    def before(**_: Any) -> None:
        if threading.current_thread().name != thread_name:
            return
        pause.reached.set()
        if not pause.release.wait(PAUSE_LIMIT_SECONDS):
            raise AssertionError("the paused transaction was never released")

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", before)
    try:
        yield pause
    finally:
        pause.release.set()
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", before)
