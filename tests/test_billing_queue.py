"""The deployed shape of the hourly run: the scheduled planner sends one message per
shard to SQS, and the queue-triggered worker bills each shard, on the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import app
from chalicelib import clock, config
from chalicelib.billing.jobs import scheduled_event
from tests.fakes.sqs import FakeSqs
from tests.helpers import account_with_credit, assert_balance_matches_ledger, charges, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSqs]:
    fake = FakeSqs()
    base_url = fake.start()
    monkeypatch.setenv("LOBSTER_BILLING_QUEUE_URL", f"{base_url}/000000000000/lobster-billing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", base_url)
    config.reload()
    yield fake
    fake.stop()
    monkeypatch.delenv("LOBSTER_BILLING_QUEUE_URL")
    config.reload()


def sqs_event(bodies: list[str]) -> dict[str, object]:
    return {
        "Records": [
            {
                "messageId": str(index),
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:lobster-billing",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_planner_sends_shards_and_worker_bills_them(queue: FakeSqs) -> None:
    account = account_with_credit("queue@example.com", 20_000_000, T0)
    vm_at(account, T0)
    fire_at = datetime(2026, 12, 4, 11, 5, tzinfo=UTC)
    clock.set_time(fire_at)

    result = app.hourly_billing(scheduled_event(fire_at, "hourly_billing"), None)

    assert result["shards"] == config.settings().billing_shards == len(queue.messages)
    assert charges(account.account_id) == []
    assert {json.loads(body)["hour"] for body in queue.messages} == {"2026-12-04T10"}

    app.billing_worker(sqs_event(queue.messages), None)
    app.billing_worker(sqs_event(queue.messages[:2]), None)

    assert [line.amount_micros for line in charges(account.account_id)] == [-7_500]
    assert_balance_matches_ledger(account.account_id)


def test_worker_rejects_a_malformed_message() -> None:
    with pytest.raises(ValueError):
        app.billing_worker(sqs_event(['{"hour": "yesterday", "shard": "s0000"}']), None)


def test_rollover_schedule_settles_previous_month() -> None:
    clock.set_time(datetime(2026, 12, 1, 0, 15, tzinfo=UTC) + timedelta(seconds=1))
    result = app.monthly_rollover(scheduled_event(clock.now(), "monthly_rollover"), None)
    assert result["month"] == "2026-11"
