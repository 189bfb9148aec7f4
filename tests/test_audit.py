"""The audit log on DynamoDB Local: one record per event id, listings by day and target,
credit adjustments audited in their ledger transaction. Also the observability wiring: the
middleware that writes business metrics as CloudWatch embedded-metric-format lines, and
tracing that loads X-Ray only when switched on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chalice.test import Client
from pynamodb.exceptions import TransactWriteError

import app as app_module
from app import app
from chalicelib import audit, clock
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.billing.jobs import scheduled_event
from chalicelib.errors import Conflict, InvalidRequest
from chalicelib.models.audit import AuditEvent
from chalicelib.models.base import transact_write
from chalicelib.models.ledger import LedgerLine
from tests.helpers import account_with_credit, balance

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def all_events() -> list[AuditEvent]:
    return list(AuditEvent.scan(consistent_read=True))


def test_record_stores_event_once_per_id() -> None:
    clock.set_time(T0)

    first = audit.record("acct_admin", "user.disable", "account:acct_x", {"why": "abuse"}, "192.0.2.1", event_id="evt-1")
    second = audit.record("acct_admin", "user.disable", "account:acct_x", {"why": "abuse"}, "192.0.2.1", event_id="evt-1")

    assert (first, second) == (True, False)
    [event] = all_events()
    assert event.day == "2026-12-04"
    assert event.event_sort == "2026-12-04T09:30:00Z#evt-1"
    assert event.ip == "192.0.2.1"


def test_only_read_events_expire() -> None:
    clock.set_time(T0)

    audit.record("acct_admin", "user.view", "account:acct_x", read_only=True, event_id="read")
    audit.record("acct_admin", "user.disable", "account:acct_x", event_id="write")

    expiry = {event.event_id: event.expires_epoch for event in all_events()}
    assert expiry["write"] is None
    assert expiry["read"] == int((T0 + audit.READ_EVENT_RETENTION).timestamp())


def test_list_day_pages_newest_first() -> None:
    for minute in range(5):
        clock.set_time(T0 + timedelta(minutes=minute))
        audit.record("acct_admin", "plan.edit", f"plan:p{minute}", event_id=f"evt-{minute}")
    clock.set_time(T0 + timedelta(days=1))
    audit.record("acct_admin", "plan.edit", "plan:tomorrow", event_id="evt-next-day")

    first = audit.list_day(T0, limit=3)
    second = audit.list_day(T0, limit=3, cursor=first.cursor)

    assert [event.event_id for event in first.events] == ["evt-4", "evt-3", "evt-2"]
    assert [event.event_id for event in second.events] == ["evt-1", "evt-0"]
    assert second.cursor is None


def test_list_target_returns_only_that_target() -> None:
    clock.set_time(T0)
    audit.record("acct_admin", "vm.suspend", "vm:vm_1", event_id="a")
    audit.record("acct_admin", "vm.suspend", "vm:vm_2", event_id="b")
    clock.advance(timedelta(minutes=1))
    audit.record("acct_admin", "vm.unsuspend", "vm:vm_1", event_id="c")

    page = audit.list_target("vm:vm_1")

    assert [event.action for event in page.events] == ["vm.unsuspend", "vm.suspend"]


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", audit.encode_cursor({"day": {"S": "2026-12-04"}}), "e" * 3000])
def test_malformed_cursor_is_invalid_request(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        audit.list_day(T0, cursor=cursor)
    assert raised.value.field == "cursor"


def test_cursor_of_another_day_is_rejected() -> None:
    clock.set_time(T0)
    for index in range(3):
        audit.record("acct_admin", "plan.edit", "plan:s1", event_id=f"evt-{index}")
    cursor = audit.list_day(T0, limit=1).cursor

    with pytest.raises(InvalidRequest):
        audit.list_day(T0 - timedelta(days=1), cursor=cursor)


def test_adjustment_repeated_days_later_credits_once() -> None:
    account = account_with_credit("ann@example.com", 0, T0)

    assert adjust_credit(account.account_id, 5_000_000, "Goodwill", "adj-1", actor_account_id="acct_admin", ip="192.0.2.7") is True
    clock.set_time(T0 + timedelta(days=3))
    assert adjust_credit(account.account_id, 5_000_000, "Goodwill", "adj-1", actor_account_id="acct_admin", ip="192.0.2.7") is False

    assert balance(account.account_id) == 5_000_000
    assert [line.amount_micros for line in LedgerLine.query(account.account_id)] == [5_000_000]
    [event] = [event for event in all_events() if event.action == "credit.adjusted"]
    assert event.actor_account_id == "acct_admin"
    assert event.details["amount_micros"] == 5_000_000
    assert event.details["ledger_key"] == next(iter(LedgerLine.query(account.account_id))).line_key


def test_adjustment_id_reused_for_other_amount_is_conflict() -> None:
    account = account_with_credit("ann@example.com", 0, T0)
    adjust_credit(account.account_id, 5_000_000, "Goodwill", "adj-1")
    clock.advance(timedelta(seconds=5))

    with pytest.raises(Conflict) as raised:
        adjust_credit(account.account_id, 9_000_000, "Goodwill", "adj-1")

    assert raised.value.field == "adjustment_id"
    assert balance(account.account_id) == 5_000_000


def test_adjustment_of_missing_account_records_nothing() -> None:
    clock.set_time(T0)

    with pytest.raises(TransactWriteError):
        adjust_credit("acct_missing", 1_000_000, "Goodwill", "adj-1")

    assert all_events() == []
    assert list(LedgerLine.query("acct_missing")) == []


def test_system_adjustments_are_audited_with_system_actor() -> None:
    account = account_with_credit("ann@example.com", 2_000_000, T0)

    [event] = [event for event in all_events() if event.target == f"account:{account.account_id}"]

    assert event.actor_account_id == audit.SYSTEM_ACTOR
    assert event.details["adjustment_id"] == "opening"


def test_payment_event_is_written_once_per_transition() -> None:
    clock.set_time(T0)

    with transact_write() as transaction:
        audit.add_payment_event(transaction, "stripe#pi_1", "credit", "acct_x", 20_000_000)
    with pytest.raises(TransactWriteError), transact_write() as transaction:
        audit.add_payment_event(transaction, "stripe#pi_1", "credit", "acct_x", 20_000_000)

    [event] = all_events()
    assert event.event_id == "payment#stripe#pi_1#credit"
    assert event.action == "payment.credited"
    assert event.details["amount_micros"] == 20_000_000


def emf_lines(output: str) -> list[dict[str, object]]:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


def values(document: dict[str, object], name: str) -> list[float]:
    """Return the values of one metric in an EMF document, which has a number or a list."""
    value = document[name]
    return value if isinstance(value, list) else [value]  # type: ignore[list-item, return-value]


def test_hourly_run_publishes_planned_metric(capsys: pytest.CaptureFixture[str]) -> None:
    fire_at = datetime(2026, 12, 4, 11, 5, tzinfo=UTC)
    clock.set_time(fire_at)
    capsys.readouterr()

    app_module.hourly_billing(scheduled_event(fire_at, "hourly_billing"), None)

    [document] = emf_lines(capsys.readouterr().out)
    assert values(document, "BillingRunPlanned") == [1.0]
    assert "BillingRunDuration" in document
    assert document["service"] == "lobster"
    namespaces = [directive["Namespace"] for directive in document["_aws"]["CloudWatchMetrics"]]  # type: ignore[index]
    assert namespaces == ["Lobster"]


def test_queued_shard_publishes_lag(capsys: pytest.CaptureFixture[str]) -> None:
    clock.set_time(datetime(2026, 12, 4, 11, 20, tzinfo=UTC))
    capsys.readouterr()
    body = json.dumps({"hour": "2026-12-04T10", "shard": "00", "kind": "hourly"})

    app_module.billing_worker({"Records": [{"body": body, "messageId": "1", "receiptHandle": "r", "attributes": {}, "eventSource": "aws:sqs"}]}, None)

    [document] = emf_lines(capsys.readouterr().out)
    assert values(document, "BillingShardLag") == [1200.0]
    assert "BillingShardDuration" in document


def test_rejected_webhook_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    with Client(app) as client:
        response = client.http.post("/v1/webhooks/nowhere", headers={"Content-Type": "application/json"}, body=b"{}")

    assert 400 <= response.status_code < 500
    [document] = emf_lines(capsys.readouterr().out)
    assert values(document, "WebhookRejections") == [1.0]


def test_request_without_metrics_writes_no_metric_line(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    with Client(app) as client:
        assert client.http.get("/health").status_code == 200

    assert emf_lines(capsys.readouterr().out) == []


TRACING_PROBE = "import sys, app; print('aws_xray_sdk' in sys.modules)"


@pytest.mark.parametrize(("setting", "loaded"), [(None, "False"), ("true", "False"), ("false", "True")])
def test_tracing_loads_xray_only_when_enabled(setting: str | None, loaded: str) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "POWERTOOLS_TRACE_DISABLED"}
    if setting is not None:
        environment["POWERTOOLS_TRACE_DISABLED"] = setting

    result = subprocess.run([sys.executable, "-c", TRACING_PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == loaded
