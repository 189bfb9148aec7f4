"""Payments end to end: gateway callbacks through POST /v1/webhooks/{gateway} on the
Chalice test client, verified against the fake PayPal, Coinbase Commerce and Stripe
servers, credited on DynamoDB Local exactly once; checkouts and the customer's list.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock, config
from chalicelib.accounts.service import sign_up
from chalicelib.models.payments import Payment
from chalicelib.payments.registry import GatewayConfigInvalid, enabled_gateway_names, gateway_configs
from tests.helpers import assert_balance_matches_ledger, balance
from tests.payments.harness import (
    PASSWORD,
    RETURN_URL,
    Gateways,
    ProcessKilled,
    call,
    customer,
    deliver,
    deliver_callback,
    deliver_concurrently,
    killed_after_transaction,
    payment_item,
    payment_lines,
    receipts_to,
    running_gateways,
    throttled_transactions,
    transaction_paused_in,
)

pytestmark = pytest.mark.usefixtures("db", "clock")

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateways]:
    with running_gateways(tmp_path, monkeypatch) as gateways:
        yield gateways


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def new_account(email: str) -> str:
    return sign_up(email, PASSWORD).account_id


def outcomes(answers: list[tuple[int, Any]]) -> list[str]:
    return sorted(event["outcome"] for _, body in answers for event in body["events"])


def now_seconds() -> int:
    return int(clock.now().timestamp())


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == message]


# Duplicate, reordered, concurrent and failed deliveries.


def test_ipn_delivered_five_times_credits_once(
    client: Client, fakes: Gateways, caplog: pytest.LogCaptureFixture
) -> None:
    clock.set_time(T0)
    account_id = new_account("five@example.com")
    headers, body = fakes.paypal.send_ipn(txn_id="TXN-0001", mc_gross="20.00", custom=account_id)

    answers = [deliver(client, "paypal", headers, body)]
    answers += deliver_concurrently(client, "paypal", headers, body, copies=2)
    clock.advance(timedelta(seconds=60))
    answers.append(deliver(client, "paypal", headers, body))
    clock.advance(timedelta(seconds=60))
    answers.append(deliver(client, "paypal", headers, body))

    assert [status for status, _ in answers] == [200] * 5
    assert outcomes(answers) == ["applied"] + ["duplicate"] * 4
    assert balance(account_id) == 20_000_000
    assert [line.amount_micros for line in payment_lines(account_id)] == [20_000_000]
    assert receipts_to("five@example.com") == ["Payment received: 20.00 USD"]
    assert len(logged(caplog, "payment_duplicate")) == 4
    assert_balance_matches_ledger(account_id)


def test_pending_then_completed_credits_once(client: Client, fakes: Gateways) -> None:
    account_id = new_account("pending@example.com")
    pending = fakes.paypal.send_ipn(
        txn_id="TXN-0002", mc_gross="50.00", payment_status="Pending", pending_reason="echeck", custom=account_id
    )
    completed = fakes.paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00", custom=account_id)

    assert deliver(client, "paypal", *pending)[0] == 200
    stored = payment_item("paypal", "TXN-0002")
    assert stored is not None
    assert stored.status == "pending"
    assert balance(account_id) == 0

    assert deliver(client, "paypal", *completed)[0] == 200
    assert balance(account_id) == 50_000_000

    assert deliver(client, "paypal", *completed)[0] == 200
    assert balance(account_id) == 50_000_000
    assert len(payment_lines(account_id)) == 1


def test_postback_outage_then_completed_credits_once(client: Client, fakes: Gateways) -> None:
    account_id = new_account("postback@example.com")
    pending = fakes.paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00", payment_status="Pending", custom=account_id)
    fakes.paypal.fail_next(503, b"Service Unavailable", count=4)  # every attempt of the postback

    status, error = deliver(client, "paypal", *pending)

    assert status == 503
    assert error["error"]["code"] == "backend_unavailable"
    assert payment_item("paypal", "TXN-0002") is None

    completed = fakes.paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00", custom=account_id)
    assert deliver(client, "paypal", *completed)[0] == 200
    assert deliver(client, "paypal", *completed)[0] == 200
    assert balance(account_id) == 50_000_000
    assert len(payment_lines(account_id)) == 1


def test_two_events_one_capture_credit_once(client: Client, fakes: Gateways) -> None:
    account_id = new_account("capture@example.com")
    capture = fakes.paypal.capture_resource("3C679366HH908993F", "34.00", custom_id=account_id)
    first = fakes.paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", capture)
    later_capture = {**capture, "update_time": clock.iso(clock.now() + timedelta(seconds=3)), "final_capture": False}
    second = fakes.paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", later_capture)
    assert json.loads(first[1])["id"] != json.loads(second[1])["id"]

    answers = [deliver(client, "paypal", *first), deliver(client, "paypal", *second)]

    assert [status for status, _ in answers] == [200, 200]
    assert outcomes(answers) == ["applied", "duplicate"]
    assert balance(account_id) == 34_000_000
    assert len(payment_lines(account_id)) == 1


def test_refund_reversal_and_cancelled_reversal(client: Client, fakes: Gateways) -> None:
    account_id = new_account("refund@example.com")
    paypal = fakes.paypal
    assert deliver(client, "paypal", *paypal.send_ipn(txn_id="TXN-0001", mc_gross="20.00", custom=account_id))[0] == 200
    assert balance(account_id) == 20_000_000

    refund = paypal.send_ipn(
        txn_id="REFUND-0001",
        parent_txn_id="TXN-0001",
        payment_status="Refunded",
        reason_code="refund",
        mc_gross="-20.00",
        mc_fee="-0.88",
        txn_type=None,
        custom=account_id,
    )
    assert [deliver(client, "paypal", *refund)[0] for _ in range(2)] == [200, 200]
    assert balance(account_id) == 0

    assert deliver(client, "paypal", *paypal.send_ipn(txn_id="TXN-0004", mc_gross="10.00", custom=account_id))[0] == 200
    reversal = paypal.send_ipn(
        txn_id="REV-0001",
        parent_txn_id="TXN-0004",
        payment_status="Reversed",
        reason_code="chargeback",
        mc_gross="-10.00",
        txn_type=None,
        custom=account_id,
    )
    assert [deliver(client, "paypal", *reversal)[0] for _ in range(2)] == [200, 200]
    assert balance(account_id) == 0

    cancelled = paypal.send_ipn(
        txn_id="CAN-0001",
        parent_txn_id="TXN-0004",
        payment_status="Canceled_Reversal",
        reason_code="other",
        mc_gross="10.00",
        txn_type=None,
        custom=account_id,
    )
    assert [deliver(client, "paypal", *cancelled)[0] for _ in range(2)] == [200, 200]
    assert balance(account_id) == 10_000_000

    amounts = sorted(line.amount_micros for line in payment_lines(account_id))
    assert amounts == [-20_000_000, -10_000_000, 10_000_000, 10_000_000, 20_000_000]
    assert payment_item("paypal", "TXN-0004").status == "completed"
    assert_balance_matches_ledger(account_id)


def test_early_cancelled_reversal_waits_for_reversal(client: Client, fakes: Gateways) -> None:
    account_id = new_account("reorder@example.com")
    paypal = fakes.paypal
    deliver(client, "paypal", *paypal.send_ipn(txn_id="TXN-0005", mc_gross="10.00", custom=account_id))
    cancelled = paypal.send_ipn(
        txn_id="CAN-0005",
        parent_txn_id="TXN-0005",
        payment_status="Canceled_Reversal",
        mc_gross="10.00",
        txn_type=None,
    )
    reversal = paypal.send_ipn(
        txn_id="REV-0005",
        parent_txn_id="TXN-0005",
        payment_status="Reversed",
        mc_gross="-10.00",
        txn_type=None,
    )

    status, body = deliver(client, "paypal", *cancelled)
    assert (status, body["events"][0]["outcome"]) == (200, "flagged")
    assert balance(account_id) == 10_000_000
    assert "reversal_cancelled_before_reversal" in payment_item("paypal", "TXN-0005").flags

    assert deliver(client, "paypal", *reversal)[0] == 200
    assert deliver(client, "paypal", *cancelled)[0] == 200

    assert balance(account_id) == 10_000_000
    assert sorted(line.amount_micros for line in payment_lines(account_id)) == [-10_000_000, 10_000_000, 10_000_000]
    assert_balance_matches_ledger(account_id)


def test_unhandled_ipn_is_stored_and_flagged(client: Client, fakes: Gateways) -> None:
    account_id = new_account("unhandled@example.com")
    ipn = fakes.paypal.send_ipn(txn_id="SUB-0001", txn_type="subscr_payment", mc_gross="10.00", custom=account_id)

    answers = [deliver(client, "paypal", *ipn), deliver(client, "paypal", *ipn)]

    assert [status for status, _ in answers] == [200, 200]
    assert outcomes(answers) == ["duplicate", "flagged"]
    stored = payment_item("paypal", "SUB-0001")
    assert stored is not None
    assert "unhandled_event" in stored.flags
    assert [entry["event_type"] for entry in stored.events] == ["ipn:subscr_payment:Completed"]
    assert "subscr_payment" in stored.events[0]["reason"]
    assert balance(account_id) == 0
    assert payment_lines(account_id) == []


def test_coinbase_signature_covers_raw_bytes(client: Client, fakes: Gateways, caplog: pytest.LogCaptureFixture) -> None:
    account_id = new_account("rawbytes@example.com")
    coinbase = fakes.coinbase
    code = coinbase.create_charge("25.00", metadata={"account_id": account_id})
    coinbase.add_payment(code, "25.00")
    coinbase.set_status(code, "COMPLETED")
    delivery = coinbase.webhook("charge:confirmed", code)

    reserialized = json.dumps(json.loads(delivery.raw_body), separators=(",", ":")).encode()
    altered = delivery.raw_body.replace(b'"25.00"', b'"95.00"', 1)
    unsigned = {"content-type": "application/json"}
    rejected = [
        deliver(client, "coinbase", delivery.headers, reserialized),
        deliver(client, "coinbase", delivery.headers, altered),
        deliver(client, "coinbase", unsigned, delivery.raw_body),
        deliver(client, "coinbase", unsigned, delivery.raw_body, query=f"token={coinbase.webhook_secret}"),
    ]

    assert altered != delivery.raw_body
    assert [status for status, _ in rejected] == [400] * 4
    assert {body["error"]["code"] for _, body in rejected} == {"webhook_signature_invalid"}
    assert len(logged(caplog, "callback_rejected")) == 4
    assert payment_item("coinbase", code) is None
    assert balance(account_id) == 0

    answers = [deliver_callback(client, "coinbase", delivery) for _ in range(2)]

    assert b'\n  "event": {' in delivery.raw_body
    assert [status for status, _ in answers] == [200, 200]
    assert outcomes(answers) == ["applied", "duplicate"]
    assert balance(account_id) == 25_000_000


def test_crash_after_credit_stored(client: Client, fakes: Gateways) -> None:
    clock.set_time(T0)
    account_id, token = customer(client, "crash@example.com")
    status, checkout = call(
        client, "POST", "/v1/payments", {"gateway": "coinbase", "amount": "25.00", "return_url": RETURN_URL}, token
    )
    assert status == 201, checkout
    code = checkout["payment_id"]
    fakes.coinbase.add_payment(code, "25.00")
    fakes.coinbase.set_status(code, "COMPLETED")
    delivery = fakes.coinbase.webhook("charge:confirmed", code)

    with killed_after_transaction(), pytest.raises(ProcessKilled):
        deliver_callback(client, "coinbase", delivery)

    assert balance(account_id) == 25_000_000
    assert receipts_to("crash@example.com") == []

    clock.advance(timedelta(minutes=1))
    after_a_minute = deliver_callback(client, "coinbase", delivery)
    clock.advance(timedelta(hours=1))
    after_an_hour = deliver_callback(client, "coinbase", delivery)

    assert [after_a_minute[0], after_an_hour[0]] == [200, 200]
    assert outcomes([after_a_minute, after_an_hour]) == ["duplicate", "duplicate"]
    assert balance(account_id) == 25_000_000
    assert len(payment_lines(account_id)) == 1
    assert receipts_to("crash@example.com") == ["Payment received: 25.00 USD"]


def test_throttled_write_then_concurrent_redeliveries(client: Client, fakes: Gateways) -> None:
    clock.set_time(T0)
    account_id = new_account("throttle@example.com")
    headers, body = fakes.paypal.send_ipn(txn_id="TXN-0003", mc_gross="15.00", custom=account_id)

    with throttled_transactions() as rejected:
        first = deliver(client, "paypal", headers, body)

    assert first[0] == 500
    assert len(rejected) == 1
    assert payment_item("paypal", "TXN-0003") is None
    assert payment_lines(account_id) == []
    assert balance(account_id) == 0

    clock.advance(timedelta(minutes=5))
    second: list[tuple[int, Any]] = []
    with transaction_paused_in("delivery-2") as pause:
        worker = threading.Thread(
            target=lambda: second.append(deliver(client, "paypal", headers, body)), name="delivery-2"
        )
        worker.start()
        assert pause.reached.wait(10)

        third = deliver(client, "paypal", headers, body)
        stored_when_third_answered = (balance(account_id), len(payment_lines(account_id)))

        pause.release.set()
        worker.join(10)

    assert third[0] == 200
    assert stored_when_third_answered == (15_000_000, 1)
    assert second[0][0] == 200
    assert third[1]["events"][0]["outcome"] == "applied"
    assert second[0][1]["events"][0]["outcome"] == "duplicate"
    assert balance(account_id) == 15_000_000
    assert len(payment_lines(account_id)) == 1


def test_fifty_concurrent_copies_credit_once(client: Client, fakes: Gateways) -> None:
    account_id = new_account("fifty@example.com")
    coinbase = fakes.coinbase
    code = coinbase.create_charge("25.00", metadata={"account_id": account_id})
    coinbase.add_payment(code, "25.00")
    coinbase.set_status(code, "COMPLETED")
    delivery = coinbase.webhook("charge:confirmed", code)

    answers = deliver_concurrently(client, "coinbase", delivery.headers, delivery.raw_body, copies=50)

    assert [status for status, _ in answers] == [200] * 50
    assert outcomes(answers) == ["applied"] + ["duplicate"] * 49
    assert balance(account_id) == 25_000_000
    assert len(payment_lines(account_id)) == 1
    assert receipts_to("fifty@example.com") == ["Payment received: 25.00 USD"]
    assert_balance_matches_ledger(account_id)


# Amounts and flags.


@pytest.mark.parametrize(
    ("gross", "micros"), [("8.03", 8_030_000), ("16.06", 16_060_000), ("299.99", 299_990_000), ("4.35", 4_350_000)]
)
def test_gateway_amounts_credited_exactly(client: Client, fakes: Gateways, gross: str, micros: int) -> None:
    account_id = new_account("exact@example.com")

    assert (
        deliver(client, "paypal", *fakes.paypal.send_ipn(txn_id="TXN-M1", mc_gross=gross, custom=account_id))[0] == 200
    )

    assert balance(account_id) == micros


def test_wrong_currency_is_recorded_not_credited(client: Client, fakes: Gateways) -> None:
    account_id = new_account("eur@example.com")
    ipn = fakes.paypal.send_ipn(txn_id="TXN-EUR", mc_gross="20.00", mc_currency="EUR", custom=account_id)

    answers = [deliver(client, "paypal", *ipn), deliver(client, "paypal", *ipn)]

    assert [status for status, _ in answers] == [200, 200]
    assert outcomes(answers) == ["duplicate", "flagged"]
    stored = payment_item("paypal", "TXN-EUR")
    assert stored.status == "held"
    assert "currency_mismatch" in stored.flags
    assert stored.applied == set()
    assert balance(account_id) == 0
    assert payment_lines(account_id) == []


@pytest.mark.parametrize(("gross", "micros"), [("500.00", 500_000_000), ("2.00", 2_000_000)])
def test_out_of_bounds_payment_is_credited_and_flagged(
    client: Client, fakes: Gateways, gross: str, micros: int
) -> None:
    account_id = new_account("bounds@example.com")

    assert (
        deliver(client, "paypal", *fakes.paypal.send_ipn(txn_id="TXN-BIG", mc_gross=gross, custom=account_id))[0] == 200
    )

    assert balance(account_id) == micros
    assert payment_item("paypal", "TXN-BIG").flags == ["outside_bounds"]


def test_underpaid_charge_resolved_credits_difference(client: Client, fakes: Gateways) -> None:
    account_id, token = customer(client, "under@example.com")
    status, checkout = call(
        client, "POST", "/v1/payments", {"gateway": "coinbase", "amount": "25.00", "return_url": RETURN_URL}, token
    )
    assert status == 201
    code = checkout["payment_id"]
    coinbase = fakes.coinbase
    coinbase.add_payment(code, "20.00")
    coinbase.set_status(code, "UNRESOLVED", "UNDERPAID")
    underpaid = coinbase.webhook("charge:failed", code)

    assert deliver_callback(client, "coinbase", underpaid)[0] == 200
    assert balance(account_id) == 20_000_000
    assert payment_item("coinbase", code).flags == ["underpaid"]

    coinbase.add_payment(code, "5.00")
    coinbase.set_status(code, "RESOLVED")
    resolved = coinbase.webhook("charge:resolved", code)
    answers = [deliver_callback(client, "coinbase", resolved) for _ in range(2)]
    answers.append(deliver_callback(client, "coinbase", underpaid))

    assert [status for status, _ in answers] == [200, 200, 200]
    assert outcomes(answers) == ["applied", "duplicate", "duplicate"]
    assert balance(account_id) == 25_000_000
    assert sorted(line.amount_micros for line in payment_lines(account_id)) == [5_000_000, 20_000_000]
    stored = payment_item("coinbase", code)
    assert stored.received_micros == 25_000_000
    assert stored.flags == []
    assert receipts_to("under@example.com") == ["Payment received: 20.00 USD", "Payment received: 5.00 USD"]


def test_refund_of_unknown_payment_moves_no_money(client: Client, fakes: Gateways) -> None:
    account_id = new_account("stranger@example.com")
    refund = fakes.paypal.send_ipn(
        txn_id="REFUND-9",
        parent_txn_id="TXN-9999",
        payment_status="Refunded",
        mc_gross="-20.00",
        txn_type=None,
        custom=account_id,
    )

    status, body = deliver(client, "paypal", *refund)

    assert (status, body["events"][0]["outcome"]) == (200, "flagged")
    assert "refund_before_credit" in payment_item("paypal", "TXN-9999").flags
    assert balance(account_id) == 0


# Verification failures and routing.


def test_forged_ipn_credits_nothing(client: Client, fakes: Gateways) -> None:
    account_id = new_account("forged@example.com")
    headers, body = fakes.paypal.send_ipn(txn_id="TXN-FAKE", mc_gross="20.00", custom=account_id)

    status, error = deliver(client, "paypal", headers, body.replace(b"mc_gross=20.00", b"mc_gross=90.00"))

    assert status == 400
    assert error["error"]["code"] == "webhook_signature_invalid"
    assert payment_item("paypal", "TXN-FAKE") is None
    assert balance(account_id) == 0


def test_replayed_stripe_event_is_rejected(client: Client, fakes: Gateways) -> None:
    account_id, token = customer(client, "replay@example.com")
    _, checkout = call(client, "POST", "/v1/payments", {"gateway": "stripe", "amount": "20.00"}, token)
    session = fakes.stripe.complete_session(checkout["payment_id"])
    an_hour_ago = now_seconds() - 3600

    replayed = fakes.stripe.send_event(
        "checkout.session.completed", session, timestamp=an_hour_ago, received_at=clock.now()
    )
    status, error = deliver_callback(client, "stripe", replayed)

    assert status == 400
    assert error["error"]["code"] == "webhook_rejected"
    assert balance(account_id) == 0
    assert payment_item("stripe", session["payment_intent"]) is None


def test_gateway_outage_during_verification_is_503(client: Client, fakes: Gateways) -> None:
    account_id, token = customer(client, "outage@example.com")
    _, checkout = call(client, "POST", "/v1/payments", {"gateway": "stripe", "amount": "20.00"}, token)
    session = fakes.stripe.complete_session(checkout["payment_id"])
    deliver_callback(
        client, "stripe", fakes.stripe.send_event("checkout.session.completed", session, timestamp=now_seconds())
    )
    fakes.stripe.refund(session["payment_intent"], 1000)
    charge = {**fakes.stripe.charge_of(session["payment_intent"]), "amount_refunded": 1500}

    status, error = deliver_callback(
        client, "stripe", fakes.stripe.send_event("charge.refunded", charge, timestamp=now_seconds())
    )

    assert status == 503
    assert error["error"]["code"] == "backend_unavailable"
    assert balance(account_id) == 20_000_000


def test_unknown_gateway_is_404(client: Client, fakes: Gateways) -> None:
    status, error = deliver(client, "bitpay", {"content-type": "application/json"}, b"{}")

    assert status == 404
    assert error["error"]["code"] == "not_found"


def test_demo_gateway_takes_no_callbacks(client: Client, fakes: Gateways) -> None:
    assert deliver(client, "demo", {"content-type": "application/json"}, b"{}")[0] == 404


# Checkouts started by customers.


def test_stripe_checkout_uses_our_checkout_record(client: Client, fakes: Gateways) -> None:
    account_id, token = customer(client, "stripe@example.com")
    status, checkout = call(client, "POST", "/v1/payments", {"gateway": "stripe", "amount": "20.00"}, token)
    assert status == 201, checkout
    assert checkout["redirect_url"].startswith("https://checkout.stripe.com/")
    session = fakes.stripe.complete_session(checkout["payment_id"])
    # The gateway's metadata names another account; our checkout record decides.
    session = {**session, "client_reference_id": "acct_someone_else"}

    status, body = deliver_callback(
        client, "stripe", fakes.stripe.send_event("checkout.session.completed", session, timestamp=now_seconds())
    )

    assert status == 200, body
    assert balance(account_id) == 20_000_000
    stored = payment_item("stripe", session["payment_intent"])
    assert (stored.account_id, stored.checkout_id, stored.requested_micros) == (
        account_id,
        checkout["payment_id"],
        20_000_000,
    )
    assert stored.flags == ["account_mismatch"]

    fakes.stripe.refund(session["payment_intent"], 500)
    refund_event = fakes.stripe.send_event(
        "charge.refunded", fakes.stripe.charge_of(session["payment_intent"]), timestamp=now_seconds()
    )
    assert [deliver_callback(client, "stripe", refund_event)[0] for _ in range(2)] == [200, 200]
    assert balance(account_id) == 15_000_000

    status, page = call(client, "GET", "/v1/payments", token=token)
    assert status == 200
    [listed] = page["payments"]
    assert listed["id"] == session["payment_intent"]
    assert listed["status"] == "refunded"
    assert listed["received"] == {"amount": "20.00", "micros": 20_000_000}
    assert listed["credited"] == {"amount": "15.00", "micros": 15_000_000}


def test_paypal_capture_then_webhook_credits_once(client: Client, fakes: Gateways) -> None:
    account_id, token = customer(client, "paypal@example.com")
    status, checkout = call(
        client, "POST", "/v1/payments", {"gateway": "paypal", "amount": "30.00", "return_url": RETURN_URL}, token
    )
    assert status == 201, checkout
    order_id = checkout["payment_id"]
    fakes.paypal.approve_order(order_id)

    status, captured = call(client, "POST", f"/v1/payments/paypal/{order_id}/capture", token=token)

    assert status == 200, captured
    [capture] = captured["captures"]
    assert (capture["status"], capture["outcome"]) == ("completed", "applied")
    assert balance(account_id) == 30_000_000

    webhook = fakes.paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", fakes.paypal.captures[capture["id"]])
    status, body = deliver(client, "paypal", *webhook)
    assert (status, body["events"][0]["outcome"]) == (200, "duplicate")
    assert balance(account_id) == 30_000_000

    _, page = call(client, "GET", "/v1/payments", token=token)
    assert [(item["id"], item["status"]) for item in page["payments"]] == [(capture["id"], "completed")]
    assert payment_item("paypal", capture["id"]).checkout_id == order_id


def test_capture_of_another_customers_order_is_404(client: Client, fakes: Gateways) -> None:
    _, owner = customer(client, "owner@example.com")
    _, checkout = call(
        client, "POST", "/v1/payments", {"gateway": "paypal", "amount": "30.00", "return_url": RETURN_URL}, owner
    )
    fakes.paypal.approve_order(checkout["payment_id"])
    _, intruder = customer(client, "intruder@example.com")

    status, _ = call(client, "POST", f"/v1/payments/paypal/{checkout['payment_id']}/capture", token=intruder)

    assert status == 404
    assert fakes.paypal.orders[checkout["payment_id"]]["status"] == "APPROVED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gateway": "stripe", "amount": "20.00", "return_url": "/billing"}, "return_url"),
        ({"gateway": "paypal", "amount": "20.00"}, "return_url"),
        ({"gateway": "coinbase", "amount": "400.00", "return_url": RETURN_URL}, "amount"),
        ({"gateway": "bitpay", "amount": "20.00"}, "gateway"),
    ],
)
def test_start_payment_bad_input_names_field(client: Client, fakes: Gateways, body: dict[str, str], field: str) -> None:
    _, token = customer(client, "input@example.com")

    status, error = call(client, "POST", "/v1/payments", body, token)

    assert status == 400
    assert error["error"]["field"] == field
    assert Payment.count() == 0


def test_payment_list_own_newest_first(client: Client, fakes: Gateways) -> None:
    clock.set_time(T0)
    account_id, token = customer(client, "lister@example.com")
    _, other_token = customer(client, "other@example.com")
    for number, gross in enumerate(["10.00", "20.00", "30.00"]):
        clock.advance(timedelta(minutes=1))
        deliver(client, "paypal", *fakes.paypal.send_ipn(txn_id=f"TXN-L{number}", mc_gross=gross, custom=account_id))
    clock.advance(timedelta(minutes=1))
    deliver(
        client,
        "paypal",
        *fakes.paypal.send_ipn(txn_id="TXN-LEUR", mc_gross="5.00", mc_currency="EUR", custom=account_id),
    )

    status, page = call(client, "GET", "/v1/payments", token=token)

    assert status == 200
    assert [item["id"] for item in page["payments"]] == ["TXN-LEUR", "TXN-L2", "TXN-L1", "TXN-L0"]
    assert page["payments"][0]["status"] == "held"
    assert page["payments"][0]["flags"] == ["currency_mismatch"]
    assert page["payments"][1]["credited"] == {"amount": "30.00", "micros": 30_000_000}
    assert page["next_cursor"] is None
    assert call(client, "GET", "/v1/payments", token=other_token)[1]["payments"] == []

    _, first = call(client, "GET", "/v1/payments?limit=2", token=token)
    _, rest = call(client, "GET", f"/v1/payments?limit=2&cursor={first['next_cursor']}", token=token)
    assert [item["id"] for item in first["payments"] + rest["payments"]] == ["TXN-LEUR", "TXN-L2", "TXN-L1", "TXN-L0"]

    _, other_first = call(client, "GET", "/v1/payments?limit=1", token=token)
    assert call(client, "GET", f"/v1/payments?cursor={other_first['next_cursor']}", token=other_token)[0] == 400
    assert call(client, "GET", "/v1/payments?cursor=not-a-cursor", token=token)[0] == 400
    assert call(client, "GET", "/v1/payments?limit=0", token=token)[0] == 400


# Gateway configuration.


@pytest.mark.parametrize(
    ("stage", "value", "message"),
    [
        ("test", "{not json", "is not valid JSON"),
        ("test", '["stripe"]', "must be a JSON object"),
        ("test", '{"bitpay": {}}', "unknown gateway 'bitpay'"),
        ("test", '{"stripe": {"settings": [], "secret_ref": "file:stripe"}}', "settings must be an object"),
        ("test", '{"stripe": {"secret_key": "sk_live_123"}}', r"unknown keys \['secret_key'\]"),
        ("test", '{"stripe": {"secret_ref": 42}}', "secret_ref must be a string"),
        ("prod", '{"demo": {}}', "only in the local and test stages"),
    ],
)
def test_gateway_config_error_names_entry(
    monkeypatch: pytest.MonkeyPatch, stage: str, value: str, message: str
) -> None:
    monkeypatch.setenv("LOBSTER_STAGE", stage)
    monkeypatch.setenv("LOBSTER_GATEWAYS", value)
    config.reload()
    try:
        with pytest.raises(GatewayConfigInvalid, match=message) as raised:
            gateway_configs()
        assert "sk_live_123" not in raised.value.message
    finally:
        monkeypatch.undo()
        config.reload()


@pytest.mark.parametrize(
    ("stage", "expected"), [("prod", ["stripe"]), ("local", ["demo", "stripe"]), ("test", ["demo", "stripe"])]
)
def test_demo_gateway_is_enabled_outside_prod_only(
    monkeypatch: pytest.MonkeyPatch, stage: str, expected: list[str]
) -> None:
    monkeypatch.setenv("LOBSTER_STAGE", stage)
    monkeypatch.setenv("LOBSTER_GATEWAYS", '{"stripe": {"settings": {}, "secret_ref": "ssm:/lobster/prod/stripe"}}')
    config.reload()
    try:
        assert enabled_gateway_names() == expected
        assert gateway_configs()["stripe"].secret_ref == "ssm:/lobster/prod/stripe"
    finally:
        monkeypatch.undo()
        config.reload()
