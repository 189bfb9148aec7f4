"""Coinbase Commerce gateway against the fake Coinbase API: checkout, webhook signatures
over the raw bytes, event mapping, exact amounts and reconciliation listing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import BackendError, WebhookRejected, WebhookSignatureInvalid
from chalicelib.payments.base import CallbackRequest, Transition
from chalicelib.payments.coinbase import LIST_PAGE_LIMIT, CoinbaseGateway
from tests.fakes.coinbase import FakeCoinbase

ACCOUNT_ID = "acct-7"
RETURN_URL = "https://panel.example.com/billing"


@pytest.fixture(scope="module")
def fake():
    server = FakeCoinbase()
    base_url = server.start()
    server.base_url = base_url
    yield server
    server.stop()


@pytest.fixture
def gateway(fake):
    return CoinbaseGateway({"api_url": fake.base_url}, {"api_key": fake.api_key, "webhook_secret": fake.webhook_secret})


def open_charge(gateway, amount_micros=25_000_000):
    return gateway.start_checkout(ACCOUNT_ID, amount_micros, "USD", RETURN_URL).payment_id


def paid_charge(fake, gateway, amount="25.00", price_micros=25_000_000):
    code = open_charge(gateway, price_micros)
    fake.add_payment(code, amount)
    fake.set_status(code, "COMPLETED")
    return code


# Checkout.


def test_checkout_creates_fixed_price_charge(fake, gateway):
    checkout = gateway.start_checkout(ACCOUNT_ID, 20_000_000, "usd", RETURN_URL)

    request = fake.requests[-1]
    body = json.loads(request.body)
    assert request.method == "POST"
    assert request.path == "/charges"
    assert request.headers["x-cc-api-key"] == fake.api_key
    assert request.headers["x-cc-version"] == "2018-03-22"
    assert body["pricing_type"] == "fixed_price"
    assert body["local_price"] == {"amount": "20.00", "currency": "USD"}
    assert body["metadata"] == {"account_id": ACCOUNT_ID}
    assert body["redirect_url"] == RETURN_URL
    assert checkout.payment_id == fake.charges[checkout.payment_id]["code"]
    assert checkout.redirect_url == f"https://commerce.coinbase.com/pay/{checkout.payment_id}"


@pytest.mark.parametrize(
    ("amount_micros", "text"),
    [(8_030_000, "8.03"), (16_060_000, "16.06"), (299_990_000, "299.99"), (4_350_000, "4.35")],
)
def test_checkout_sends_amount_as_exact_decimal_text(fake, gateway, amount_micros, text):
    gateway.start_checkout(ACCOUNT_ID, amount_micros, "USD", RETURN_URL)

    assert json.loads(fake.requests[-1].body)["local_price"]["amount"] == text


def test_checkout_with_wrong_api_key_raises_backend_error(fake):
    gateway = CoinbaseGateway({"api_url": fake.base_url}, {"api_key": "not-the-key", "webhook_secret": "x"})

    with pytest.raises(BackendError, match="credentials"):
        gateway.start_checkout(ACCOUNT_ID, 20_000_000, "USD", RETURN_URL)


def test_checkout_without_api_key_sends_nothing(fake):
    gateway = CoinbaseGateway({"api_url": fake.base_url}, {"webhook_secret": "x"})
    before = len(fake.requests)

    with pytest.raises(BackendError, match="API key is not configured"):
        gateway.start_checkout(ACCOUNT_ID, 20_000_000, "USD", RETURN_URL)
    assert len(fake.requests) == before


def test_fake_rejects_charge_amount_sent_as_number(fake):
    import requests

    response = requests.post(
        fake.base_url + "/charges",
        json={"name": "x", "pricing_type": "fixed_price", "local_price": {"amount": 20.0, "currency": "USD"}},
        headers={"X-CC-Api-Key": fake.api_key, "X-CC-Version": "2018-03-22"},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation_error"


# Signatures over the raw body.


def test_webhook_raw_bytes_as_sent_are_accepted(fake, gateway):
    code = paid_charge(fake, gateway)
    delivery = fake.webhook("charge:confirmed", code)

    [event] = gateway.verify_callback(delivery)

    assert b'\n  "event": {' in delivery.raw_body  # indented as sent, not compact
    assert event.transition == Transition.COMPLETED
    assert event.payment_id == code
    assert event.amount_micros == 25_000_000
    assert event.currency == "USD"
    assert event.account_id == ACCOUNT_ID


def test_webhook_reserialized_json_is_rejected(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    compact = json.dumps(json.loads(delivery.raw_body), separators=(",", ":")).encode()

    assert json.loads(compact) == json.loads(delivery.raw_body)
    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, raw_body=compact))


def test_webhook_with_one_byte_changed_is_rejected(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    position = delivery.raw_body.index(b'"25.00"') + 1
    altered = delivery.raw_body[:position] + b"9" + delivery.raw_body[position + 1 :]

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, raw_body=altered))


def test_webhook_without_signature_header_is_rejected(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    headers = {key: value for key, value in delivery.headers.items() if key != "x-cc-webhook-signature"}

    with pytest.raises(WebhookSignatureInvalid, match="missing"):
        gateway.verify_callback(replace(delivery, headers=headers))


def test_webhook_knowing_only_secret_url_is_rejected(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    request = CallbackRequest(
        headers={"content-type": "application/json"},
        raw_body=delivery.raw_body,
        query={"token": fake.webhook_secret},
        received_at=delivery.received_at,
    )

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(request)


def test_webhook_signed_with_other_secret_is_rejected(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    other = CoinbaseGateway({"api_url": fake.base_url}, {"webhook_secret": "another-secret"})

    with pytest.raises(WebhookSignatureInvalid):
        other.verify_callback(delivery)


def test_unset_secret_rejects_empty_key_signature(fake, gateway):
    unset = CoinbaseGateway({"api_url": fake.base_url}, {"api_key": fake.api_key})
    empty_key = FakeCoinbase(webhook_secret="")
    forged = empty_key.deliver(fake.webhook("charge:confirmed", paid_charge(fake, gateway)).raw_body)

    with pytest.raises(WebhookRejected, match="not configured"):
        unset.verify_callback(forged)


def test_webhook_header_name_is_matched_in_any_case(fake, gateway):
    delivery = fake.webhook("charge:confirmed", paid_charge(fake, gateway))
    headers = {"X-CC-Webhook-Signature": delivery.headers["x-cc-webhook-signature"]}

    [event] = gateway.verify_callback(replace(delivery, headers=headers))

    assert event.transition == Transition.COMPLETED


def test_signed_non_json_body_is_malformed(fake, gateway):
    delivery = fake.deliver(b"not json at all")

    with pytest.raises(WebhookRejected) as raised:
        gateway.verify_callback(delivery)
    assert not isinstance(raised.value, WebhookSignatureInvalid)


def test_signed_amount_sent_as_json_number_is_rejected(fake, gateway):
    code = paid_charge(fake, gateway)
    fake.charges[code]["payments"][0]["value"]["local"]["amount"] = 25.0

    with pytest.raises(WebhookRejected, match="not decimal text"):
        gateway.verify_callback(fake.webhook("charge:confirmed", code))


def test_signed_payment_of_wrong_shape_is_rejected(fake, gateway):
    code = paid_charge(fake, gateway)
    fake.charges[code]["payments"][0]["value"] = ["25.00", "USD"]

    with pytest.raises(WebhookRejected, match="malformed"):
        gateway.verify_callback(fake.webhook("charge:confirmed", code))


# Event mapping.


def test_redeliveries_map_to_same_payment(fake, gateway):
    code = paid_charge(fake, gateway)
    delivery = fake.webhook("charge:confirmed", code)
    redelivery = fake.webhook("charge:confirmed", code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(gateway.verify_callback, [delivery] * 25 + [redelivery] * 25))

    keys = {(event.payment_id, event.transition, event.sub_id, event.amount_micros) for [event] in results}
    assert keys == {(code, Transition.COMPLETED, "", 25_000_000)}
    assert {event.event_id for [event] in results} == {
        json.loads(delivery.raw_body)["event"]["id"],
        json.loads(redelivery.raw_body)["event"]["id"],
    }


def test_payment_id_is_charge_code_not_event_id(fake, gateway):
    code = paid_charge(fake, gateway)
    delivery = fake.webhook("charge:confirmed", code)

    [event] = gateway.verify_callback(delivery)

    assert event.payment_id == code
    assert event.event_id == json.loads(delivery.raw_body)["event"]["id"]
    assert event.event_type == "charge:confirmed"
    assert event.occurred_at.tzinfo is not None


def test_pending_charge_is_pending_not_completed(fake, gateway):
    code = open_charge(gateway)
    fake.add_payment(code, "25.00", status="PENDING")
    fake.set_status(code, "PENDING")

    [event] = gateway.verify_callback(fake.webhook("charge:pending", code))

    assert event.transition == Transition.PENDING
    assert event.amount_micros == 25_000_000


def test_pending_charge_without_listed_payment_is_pending(fake, gateway):
    code = open_charge(gateway)

    [event] = gateway.verify_callback(fake.webhook("charge:pending", code))

    assert event.transition == Transition.PENDING
    assert event.amount_micros == 25_000_000


def test_resolved_charge_is_completed(fake, gateway):
    code = paid_charge(fake, gateway)
    fake.set_status(code, "RESOLVED")

    [event] = gateway.verify_callback(fake.webhook("charge:resolved", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 25_000_000


def test_underpayment_credits_amount_received(fake, gateway):
    code = open_charge(gateway, 25_000_000)
    fake.add_payment(code, "20.00")
    fake.set_status(code, "UNRESOLVED", "UNDERPAID")

    [event] = gateway.verify_callback(fake.webhook("charge:failed", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 20_000_000
    assert event.requested_micros == 25_000_000


def test_overpayment_credits_amount_received(fake, gateway):
    code = paid_charge(fake, gateway, amount="30.00", price_micros=25_000_000)

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 30_000_000
    assert event.requested_micros == 25_000_000


def test_several_payments_are_summed(fake, gateway):
    code = open_charge(gateway, 25_000_000)
    fake.add_payment(code, "10.00")
    fake.add_payment(code, "15.01")
    fake.add_payment(code, "99.00", status="FAILED")
    fake.set_status(code, "COMPLETED")

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.amount_micros == 25_010_000
    assert len(event.details["transaction_ids"]) == 2


def test_confirmed_charge_counts_payment_left_pending(fake, gateway):
    code = open_charge(gateway)
    fake.add_payment(code, "25.00", status="pending")
    fake.set_status(code, "COMPLETED")

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 25_000_000


def test_failed_charge_without_payment_is_failed(fake, gateway):
    code = open_charge(gateway)
    fake.set_status(code, "EXPIRED")

    [event] = gateway.verify_callback(fake.webhook("charge:failed", code))

    assert event.transition == Transition.FAILED
    assert event.amount_micros == 0


def test_failed_charge_with_late_confirmed_payment_is_completed(fake, gateway):
    code = open_charge(gateway)
    fake.set_status(code, "EXPIRED")
    fake.add_payment(code, "25.00")

    [event] = gateway.verify_callback(fake.webhook("charge:failed", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 25_000_000


def test_delayed_charge_with_confirmed_payment_is_completed(fake, gateway):
    code = open_charge(gateway)
    fake.set_status(code, "EXPIRED")
    fake.add_payment(code, "24.50")
    fake.set_status(code, "UNRESOLVED", "DELAYED")

    [event] = gateway.verify_callback(fake.webhook("charge:delayed", code))

    assert event.transition == Transition.COMPLETED
    assert event.amount_micros == 24_500_000
    assert event.requested_micros == 25_000_000


def test_delayed_charge_with_unconfirmed_payment_is_pending(fake, gateway):
    code = open_charge(gateway)
    fake.set_status(code, "EXPIRED")
    fake.add_payment(code, "25.00", status="PENDING")

    [event] = gateway.verify_callback(fake.webhook("charge:delayed", code))

    assert event.transition == Transition.PENDING


def test_confirmed_charge_without_payments_is_unhandled(fake, gateway):
    code = open_charge(gateway)
    fake.set_status(code, "COMPLETED")

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.transition == Transition.UNHANDLED
    assert event.amount_micros == 0


def test_payments_in_two_currencies_are_unhandled(fake, gateway):
    code = open_charge(gateway)
    fake.add_payment(code, "10.00")
    fake.add_payment(code, "15.00", currency="EUR")

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.transition == Transition.UNHANDLED
    assert event.details["reason"] == "payments in several local currencies"


def test_created_event_is_unhandled(fake, gateway):
    code = open_charge(gateway)

    [event] = gateway.verify_callback(fake.webhook("charge:created", code))

    assert event.transition == Transition.UNHANDLED
    assert event.payment_id == code


# Exact amounts.


@pytest.mark.parametrize(
    ("amount", "micros"),
    [("8.03", 8_030_000), ("16.06", 16_060_000), ("299.99", 299_990_000), ("4.35", 4_350_000), ("0.01", 10_000)],
)
def test_received_amount_is_parsed_exactly(fake, gateway, amount, micros):
    code = paid_charge(fake, gateway, amount=amount, price_micros=micros)

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.amount_micros == micros
    assert event.requested_micros == micros


def test_hundred_one_cent_payments_sum_exactly(fake, gateway):
    code = open_charge(gateway, 1_000_000)
    for _ in range(100):
        fake.add_payment(code, "0.01")

    [event] = gateway.verify_callback(fake.webhook("charge:confirmed", code))

    assert event.amount_micros == 1_000_000


def test_every_cent_5_to_300_exact(fake, gateway):
    code = paid_charge(fake, gateway)
    template = fake.webhook("charge:confirmed", code).raw_body.decode()
    marker = '"amount": "25.00"'
    assert template.count(marker) == 2  # the price and the payment

    mismatches = []
    for cents in range(500, 30_001):
        text = f"{cents // 100}.{cents % 100:02d}"
        body = template.replace(marker, f'"amount": "{text}"').encode()
        [event] = gateway.verify_callback(fake.deliver(body))
        if event.amount_micros != cents * 10_000:
            mismatches.append(text)

    assert mismatches == []


# Reconciliation.


def test_recent_payments_lists_paid_charges_since(fake, gateway):
    since = datetime.now(UTC) - timedelta(hours=1)
    old = paid_charge(fake, gateway, amount="11.00")
    fake.backdate(old, since - timedelta(days=2))
    unpaid = open_charge(gateway)
    paid = paid_charge(fake, gateway, amount="12.34")

    events = {event.payment_id: event for event in gateway.list_recent_payments(since)}

    assert paid in events
    assert events[paid].transition == Transition.COMPLETED
    assert events[paid].amount_micros == 12_340_000
    assert events[paid].account_id == ACCOUNT_ID
    assert unpaid not in events
    assert old not in events


def test_recent_payments_skips_malformed_charge(fake, gateway):
    since = datetime.now(UTC) - timedelta(hours=1)
    broken = paid_charge(fake, gateway)
    fake.charges[broken]["payments"][0]["value"]["local"]["amount"] = 25.0
    paid = paid_charge(fake, gateway, amount="7.00")

    listed = {event.payment_id for event in gateway.list_recent_payments(since)}

    assert paid in listed
    assert broken not in listed


def test_recent_payments_follows_pagination(fake, gateway):
    since = datetime.now(UTC) - timedelta(hours=1)
    codes = [fake.create_charge("5.00", metadata={"account_id": ACCOUNT_ID}) for _ in range(LIST_PAGE_LIMIT + 5)]
    for code in codes:
        fake.add_payment(code, "5.00")
        fake.set_status(code, "COMPLETED")
    before = len(fake.requests)

    listed = {event.payment_id for event in gateway.list_recent_payments(since)}

    list_requests = [r for r in fake.requests[before:] if r.method == "GET" and r.path == "/charges"]
    assert set(codes) <= listed
    assert len(list_requests) >= 2
    assert "starting_after" in list_requests[1].query
