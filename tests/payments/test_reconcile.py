"""The daily payment reconciliation against the fake gateways on DynamoDB Local: missed
payments are credited once however often it runs, differences are flagged, and the
scheduled Lambda runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.accounts.service import sign_up
from chalicelib.payments.reconcile import AMOUNT_DIFFERS_FLAG, run_reconciliation
from tests.helpers import assert_balance_matches_ledger, balance
from tests.payments.harness import (
    PASSWORD,
    Gateways,
    deliver,
    payment_item,
    payment_lines,
    receipts_to,
    running_gateways,
)

pytestmark = pytest.mark.usefixtures("db", "clock")

# The fakes stamp their objects with the real time, so the tests leave the clock running.
LOOKBACK = timedelta(days=1)


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateways]:
    with running_gateways(tmp_path, monkeypatch) as gateways:
        yield gateways


def new_account(email: str) -> str:
    return sign_up(email, PASSWORD).account_id


def reconcile() -> dict[str, dict[str, object]]:
    return run_reconciliation(clock.now() - LOOKBACK)


def paid_coinbase_charge(fakes: Gateways, account_id: str, amount: str) -> str:
    code = fakes.coinbase.create_charge(amount, metadata={"account_id": account_id})
    fakes.coinbase.add_payment(code, amount)
    fakes.coinbase.set_status(code, "COMPLETED")
    return code


def test_missed_payments_are_credited_once(fakes: Gateways, caplog: pytest.LogCaptureFixture) -> None:
    account_id = new_account("missed@example.com")
    intent = fakes.stripe.pay(2500, metadata={"account_id": account_id})
    code = paid_coinbase_charge(fakes, account_id, "12.50")
    fakes.paypal.add_transaction("TXN-R1", "40.00", custom_field=account_id)

    first = reconcile()
    second = reconcile()

    assert {name: (tally["listed"], tally["applied"]) for name, tally in first.items()} == {
        "coinbase": (1, 1),
        "demo": (0, 0),
        "paypal": (1, 1),
        "stripe": (1, 1),
    }
    assert {name: (tally["applied"], tally["matched"]) for name, tally in second.items() if name != "demo"} == {
        "coinbase": (0, 1),
        "paypal": (0, 1),
        "stripe": (0, 1),
    }
    assert balance(account_id) == 25_000_000 + 12_500_000 + 40_000_000
    assert sorted(line.amount_micros for line in payment_lines(account_id)) == [12_500_000, 25_000_000, 40_000_000]
    assert payment_item("stripe", intent["id"]).status == "completed"
    assert payment_item("coinbase", code).status == "completed"
    assert len(receipts_to("missed@example.com")) == 3
    reconciled = [record for record in caplog.records if record.getMessage() == "payment_reconciled"]
    assert sorted(record.__dict__["gateway"] for record in reconciled) == ["coinbase", "paypal", "stripe"]
    assert_balance_matches_ledger(account_id)


def test_payment_already_credited_by_callback_is_matched(fakes: Gateways) -> None:
    account_id = new_account("matched@example.com")
    with Client(app) as client:
        status, _ = deliver(
            client, "paypal", *fakes.paypal.send_ipn(txn_id="TXN-R2", mc_gross="20.00", custom=account_id)
        )
    assert status == 200
    fakes.paypal.add_transaction("TXN-R2", "20.00", custom_field=account_id)

    report = reconcile()

    assert (report["paypal"]["matched"], report["paypal"]["applied"]) == (1, 0)
    assert balance(account_id) == 20_000_000
    assert len(payment_lines(account_id)) == 1


def test_amount_difference_is_flagged_not_credited(fakes: Gateways) -> None:
    account_id = new_account("differs@example.com")
    with Client(app) as client:
        deliver(client, "paypal", *fakes.paypal.send_ipn(txn_id="TXN-R3", mc_gross="20.00", custom=account_id))
    fakes.paypal.add_transaction("TXN-R3", "25.00", custom_field=account_id)

    first = reconcile()
    second = reconcile()

    assert first["paypal"]["amount_differs"] == 1
    assert second["paypal"]["amount_differs"] == 1
    stored = payment_item("paypal", "TXN-R3")
    assert AMOUNT_DIFFERS_FLAG in stored.flags
    assert [entry["event_id"] for entry in stored.events].count("report-TXN-R3") == 1
    assert balance(account_id) == 20_000_000
    assert len(payment_lines(account_id)) == 1


def test_payment_in_another_currency_stays_held(fakes: Gateways) -> None:
    account_id = new_account("euro@example.com")
    fakes.paypal.add_transaction("TXN-R4", "30.00", currency="EUR", custom_field=account_id)

    report = reconcile()

    assert report["paypal"]["held"] == 1
    assert "currency_mismatch" in payment_item("paypal", "TXN-R4").flags
    assert balance(account_id) == 0


def test_one_gateway_down_does_not_stop_the_others(fakes: Gateways, caplog: pytest.LogCaptureFixture) -> None:
    account_id = new_account("outage@example.com")
    fakes.stripe.pay(1000, metadata={"account_id": account_id})
    fakes.paypal.add_transaction("TXN-R5", "15.00", custom_field=account_id)
    fakes.stripe.fail_next(500, b'{"error": {"type": "api_error"}}', count=4)  # every attempt of the listing

    report = reconcile()

    assert report["stripe"]["error"]
    assert report["stripe"]["applied"] == 0
    assert report["paypal"]["applied"] == 1
    assert balance(account_id) == 15_000_000
    failures = [record for record in caplog.records if record.getMessage() == "payment_reconciliation_failed"]
    assert [record.__dict__["gateway"] for record in failures] == ["stripe"]
    assert failures[0].levelno == logging.ERROR

    assert reconcile()["stripe"]["applied"] == 1
    assert balance(account_id) == 25_000_000


def test_daily_schedule_runs_reconciliation(fakes: Gateways) -> None:
    account_id = new_account("scheduled@example.com")
    code = paid_coinbase_charge(fakes, account_id, "30.00")

    with Client(app) as client:
        event = client.events.generate_cw_event(
            source="aws.events",
            detail_type="Scheduled Event",
            detail={},
            resources=["arn:aws:events:us-east-1:000000000000:rule/payment_reconciliation"],
        )
        event["time"] = clock.iso(clock.now())
        result = client.lambda_.invoke("payment_reconciliation", event).payload

    assert result["gateways"]["coinbase"]["applied"] == 1
    assert balance(account_id) == 30_000_000
    assert payment_item("coinbase", code).received_micros == 30_000_000
