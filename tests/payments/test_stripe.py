"""Stripe gateway against the fake Stripe API: Checkout Sessions, webhook signatures with
their timestamp tolerance, event mapping for payments, refunds and disputes, currency
exponents and exact amounts."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
import requests

from chalicelib.errors import BackendError, BackendUnavailable, InvalidRequest, WebhookRejected, WebhookSignatureInvalid
from chalicelib.payments.base import CallbackRequest, Transition
from chalicelib.payments.stripe_gateway import (
    LIST_PAGE_LIMIT,
    SIGNATURE_TOLERANCE_SECONDS,
    StripeGateway,
    micros_to_minor_units,
    minor_units_to_micros,
)
from tests.fakes.stripe import FakeStripe

ACCOUNT_ID = "acct-42"
RETURN_URL = "https://panel.example.com/billing"


@pytest.fixture(scope="module")
def fake():
    server = FakeStripe()
    server.base_url = server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(fake):
    return StripeGateway(
        {"api_url": fake.base_url}, {"secret_key": fake.secret_key, "webhook_secret": fake.webhook_secret}
    )


def paid_session(fake, gateway, amount_micros=20_000_000, currency="USD"):
    checkout = gateway.start_checkout(ACCOUNT_ID, amount_micros, currency, RETURN_URL)
    return fake.complete_session(checkout.payment_id)


def form_of(request):
    return dict(parse_qsl(request.body.decode(), keep_blank_values=True))


def stripe_get(fake, path, **kwargs):
    kwargs.setdefault("headers", {"Authorization": f"Bearer {fake.secret_key}"})
    return requests.get(fake.base_url + path, timeout=5, **kwargs)


# Checkout.


def test_checkout_creates_session_with_one_line_item(fake, gateway):
    checkout = gateway.start_checkout(ACCOUNT_ID, 20_000_000, "USD", RETURN_URL)

    request = fake.requests[-1]
    form = form_of(request)
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == f"Bearer {fake.secret_key}"
    assert request.headers["idempotency-key"]
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == "2000"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][quantity]"] == "1"
    assert form["client_reference_id"] == ACCOUNT_ID
    assert form["metadata[account_id]"] == ACCOUNT_ID
    assert form["payment_intent_data[metadata][account_id]"] == ACCOUNT_ID
    assert form["success_url"] == form["cancel_url"] == RETURN_URL
    assert checkout.payment_id.startswith("cs_test_")
    assert checkout.redirect_url == fake.objects[checkout.payment_id]["url"]
    assert fake.objects[checkout.payment_id]["amount_total"] == 2000


def test_checkout_retry_after_lost_response_creates_one_session(fake, gateway):
    sessions_before = sum(obj["object"] == "checkout.session" for obj in fake.objects.values())
    requests_before = len(fake.requests)
    fake.lose_next_response()

    checkout = gateway.start_checkout(ACCOUNT_ID, 20_000_000, "USD", RETURN_URL)

    posts = fake.requests[requests_before:]
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert sum(obj["object"] == "checkout.session" for obj in fake.objects.values()) == sessions_before + 1
    assert checkout.payment_id in fake.objects


def test_checkout_zero_decimal_currency_sends_whole_units(fake, gateway):
    gateway.start_checkout(ACCOUNT_ID, 5_000_000_000, "JPY", RETURN_URL)

    form = form_of(fake.requests[-1])
    assert form["line_items[0][price_data][unit_amount]"] == "5000"
    assert form["line_items[0][price_data][currency]"] == "jpy"


def test_checkout_three_decimal_currency_sends_thousandths(fake, gateway):
    gateway.start_checkout(ACCOUNT_ID, 5_120_000, "KWD", RETURN_URL)

    assert form_of(fake.requests[-1])["line_items[0][price_data][unit_amount]"] == "5120"


@pytest.mark.parametrize(("amount_micros", "currency"), [(5_001_000, "USD"), (1_500_000, "JPY"), (5_000_001, "KWD")])
def test_checkout_amount_finer_than_currency_rejected(fake, gateway, amount_micros, currency):
    before = len(fake.requests)

    with pytest.raises(InvalidRequest, match=currency):
        gateway.start_checkout(ACCOUNT_ID, amount_micros, currency, RETURN_URL)
    assert len(fake.requests) == before


def test_checkout_below_stripe_minimum_raises_backend_error(fake, gateway):
    with pytest.raises(BackendError, match="at least 50 usd"):
        gateway.start_checkout(ACCOUNT_ID, 100_000, "USD", RETURN_URL)


def test_checkout_with_wrong_secret_key_raises_backend_error(fake):
    gateway = StripeGateway({"api_url": fake.base_url}, {"secret_key": "sk_test_wrong", "webhook_secret": "x"})

    with pytest.raises(BackendError, match="credentials"):
        gateway.start_checkout(ACCOUNT_ID, 20_000_000, "USD", RETURN_URL)


# The fake rejects what Stripe rejects.


def test_fake_accepts_basic_auth_with_key_as_user(fake):
    response = stripe_get(fake, "/v1/refunds", headers={}, auth=(fake.secret_key, ""))

    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_fake_rejects_missing_api_key_with_stripe_error(fake):
    response = stripe_get(fake, "/v1/refunds", headers={})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("form", "param", "code"),
    [
        ({"bogus": "1"}, "bogus", "parameter_unknown"),
        (
            {"line_items[0][price_data][unit_amount]": "twenty"},
            "line_items[0][price_data][unit_amount]",
            "parameter_invalid_integer",
        ),
        ({"mode": "rental"}, "mode", None),
    ],
)
def test_fake_rejects_invalid_session_parameters(fake, form, param, code):
    body = {
        "mode": "payment",
        "success_url": RETURN_URL,
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2000",
        "line_items[0][price_data][product_data][name]": "Credit",
        **form,
    }
    response = requests.post(
        fake.base_url + "/v1/checkout/sessions",
        data=body,
        headers={"Authorization": f"Bearer {fake.secret_key}"},
        timeout=5,
    )

    error = response.json()["error"]
    assert response.status_code == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error.get("code") == code or code is None


def test_fake_rejects_session_without_success_url(fake):
    response = requests.post(
        fake.base_url + "/v1/checkout/sessions",
        data={"mode": "payment"},
        headers={"Authorization": f"Bearer {fake.secret_key}"},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Missing required param: success_url."


def test_fake_rejects_reused_idempotency_key_with_other_parameters(fake, gateway):
    headers = {"Authorization": f"Bearer {fake.secret_key}", "Idempotency-Key": "key-reused-once"}
    body = {
        "mode": "payment",
        "success_url": RETURN_URL,
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2000",
        "line_items[0][price_data][product_data][name]": "Credit",
    }
    first = requests.post(fake.base_url + "/v1/checkout/sessions", data=body, headers=headers, timeout=5)
    replayed = requests.post(fake.base_url + "/v1/checkout/sessions", data=body, headers=headers, timeout=5)
    body["line_items[0][price_data][unit_amount]"] = "3000"
    conflicting = requests.post(fake.base_url + "/v1/checkout/sessions", data=body, headers=headers, timeout=5)

    assert first.json()["id"] == replayed.json()["id"]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert conflicting.status_code == 400
    assert conflicting.json()["error"]["type"] == "idempotency_error"


def test_fake_rejects_unknown_list_parameter(fake):
    response = stripe_get(fake, "/v1/payment_intents", params={"status": "succeeded"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Received unknown parameter: status"


# Signatures.


def test_webhook_raw_bytes_as_sent_are_accepted(fake, gateway):
    session = paid_session(fake, gateway)
    delivery = fake.send_event("checkout.session.completed", session)

    [event] = gateway.verify_callback(delivery)

    assert b'\n  "data": {' in delivery.raw_body  # indented as sent, not compact
    assert event.transition == Transition.COMPLETED


def test_webhook_reserialized_json_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    compact = json.dumps(json.loads(delivery.raw_body), separators=(",", ":")).encode()

    assert json.loads(compact) == json.loads(delivery.raw_body)
    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, raw_body=compact))


def test_webhook_with_one_byte_changed_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    position = delivery.raw_body.index(b'"amount_total": 2000') + len('"amount_total": ')
    altered = delivery.raw_body[:position] + b"9" + delivery.raw_body[position + 1 :]

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, raw_body=altered))


def test_webhook_without_signature_header_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    headers = {key: value for key, value in delivery.headers.items() if key != "stripe-signature"}

    with pytest.raises(WebhookSignatureInvalid, match="missing"):
        gateway.verify_callback(replace(delivery, headers=headers))


def test_webhook_knowing_only_secret_url_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    request = CallbackRequest(
        headers={"content-type": "application/json"},
        raw_body=delivery.raw_body,
        query={"secret": fake.webhook_secret},
        received_at=delivery.received_at,
    )

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(request)


def test_webhook_signed_with_other_secret_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    other = StripeGateway({"api_url": fake.base_url}, {"webhook_secret": "whsec_other"})

    with pytest.raises(WebhookSignatureInvalid):
        other.verify_callback(delivery)


def test_webhook_without_configured_secret_is_rejected(fake, gateway):
    unset = StripeGateway({"api_url": fake.base_url}, {"secret_key": fake.secret_key})
    now = int(time.time())
    body = json.dumps(fake.event("checkout.session.completed", paid_session(fake, gateway))).encode()

    with pytest.raises(WebhookRejected, match="not configured"):
        unset.verify_callback(fake.deliver(body, timestamp=now, secret=""))


def test_webhook_one_valid_v1_of_several_accepted(fake, gateway):
    session = paid_session(fake, gateway)
    stale_secret_signature = fake.signature(b"{}", int(time.time()), "whsec_rotated_out")

    delivery = fake.send_event(
        "checkout.session.completed", session, extra_signatures=["0" * 64, stale_secret_signature]
    )

    assert delivery.headers["stripe-signature"].count("v1=") == 3
    [event] = gateway.verify_callback(delivery)
    assert event.transition == Transition.COMPLETED


def test_webhook_with_only_invalid_v1_signatures_is_rejected(fake, gateway):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))
    timestamp = delivery.headers["stripe-signature"].split(",")[0]
    headers = {**delivery.headers, "stripe-signature": f"{timestamp},v1={'0' * 64},v1={'f' * 64}"}

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, headers=headers))


@pytest.mark.parametrize("header", ["v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc", "t=1700000000,v0=abc", ""])
def test_webhook_with_malformed_signature_header_is_rejected(fake, gateway, header):
    delivery = fake.send_event("checkout.session.completed", paid_session(fake, gateway))

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(replace(delivery, headers={**delivery.headers, "stripe-signature": header}))


def test_webhook_older_than_tolerance_is_rejected_as_replay(fake, gateway):
    session = paid_session(fake, gateway)
    arrival = datetime.now(UTC).replace(microsecond=0)
    signed_at = int(arrival.timestamp()) - SIGNATURE_TOLERANCE_SECONDS - 1

    with pytest.raises(WebhookRejected, match="replayed") as raised:
        gateway.verify_callback(
            fake.send_event("checkout.session.completed", session, timestamp=signed_at, received_at=arrival)
        )
    assert not isinstance(raised.value, WebhookSignatureInvalid)


def test_webhook_at_edge_of_tolerance_is_accepted(fake, gateway):
    session = paid_session(fake, gateway)
    arrival = datetime.now(UTC).replace(microsecond=0)

    for skew in (-SIGNATURE_TOLERANCE_SECONDS, SIGNATURE_TOLERANCE_SECONDS):
        delivery = fake.send_event(
            "checkout.session.completed", session, timestamp=int(arrival.timestamp()) + skew, received_at=arrival
        )
        [event] = gateway.verify_callback(delivery)
        assert event.transition == Transition.COMPLETED


def test_webhook_from_future_beyond_tolerance_is_rejected(fake, gateway):
    session = paid_session(fake, gateway)
    arrival = datetime.now(UTC).replace(microsecond=0)
    signed_at = int(arrival.timestamp()) + SIGNATURE_TOLERANCE_SECONDS + 1

    with pytest.raises(WebhookRejected, match="replayed"):
        gateway.verify_callback(
            fake.send_event("checkout.session.completed", session, timestamp=signed_at, received_at=arrival)
        )


def test_signed_non_event_body_is_malformed(fake, gateway):
    for body in (b"not json", b'{"object": "charge"}'):
        with pytest.raises(WebhookRejected) as raised:
            gateway.verify_callback(fake.deliver(body, timestamp=int(time.time())))
        assert not isinstance(raised.value, WebhookSignatureInvalid)


def test_signed_amount_sent_as_json_float_is_rejected(fake, gateway):
    session = paid_session(fake, gateway)
    body = json.dumps(fake.event("checkout.session.completed", session), indent=2).replace(
        '"amount_total": 2000', '"amount_total": 2000.0'
    )

    with pytest.raises(WebhookRejected, match="malformed"):
        gateway.verify_callback(fake.deliver(body.encode(), timestamp=int(time.time())))


def test_signed_event_without_data_object_is_rejected(fake, gateway):
    event = fake.event("checkout.session.completed", paid_session(fake, gateway))
    del event["data"]["object"]

    with pytest.raises(WebhookRejected, match="malformed"):
        gateway.verify_callback(fake.deliver(json.dumps(event).encode(), timestamp=int(time.time())))


# Checkout Session events.


def test_paid_session_completes_payment_intent(fake, gateway):
    session = paid_session(fake, gateway)
    delivery = fake.send_event("checkout.session.completed", session)

    [event] = gateway.verify_callback(delivery)

    assert event.payment_id == session["payment_intent"]
    assert event.payment_id.startswith("pi_")
    assert event.amount_micros == 20_000_000
    assert event.currency == "USD"
    assert event.account_id == ACCOUNT_ID
    assert event.details["checkout_session_id"] == session["id"]
    assert event.event_id == json.loads(delivery.raw_body)["id"]
    assert event.occurred_at.tzinfo is not None


def test_async_payment_session_is_pending_then_completed(fake, gateway):
    checkout = gateway.start_checkout(ACCOUNT_ID, 30_000_000, "USD", RETURN_URL)
    unpaid = fake.complete_session(checkout.payment_id, payment_status="unpaid")

    [pending] = gateway.verify_callback(fake.send_event("checkout.session.completed", unpaid))
    [completed] = gateway.verify_callback(
        fake.send_event("checkout.session.async_payment_succeeded", {**unpaid, "payment_status": "paid"})
    )

    assert pending.transition == Transition.PENDING
    assert completed.transition == Transition.COMPLETED
    assert completed.payment_id == pending.payment_id
    assert completed.amount_micros == 30_000_000


def test_async_payment_failure_is_failed(fake, gateway):
    checkout = gateway.start_checkout(ACCOUNT_ID, 30_000_000, "USD", RETURN_URL)
    unpaid = fake.complete_session(checkout.payment_id, payment_status="unpaid")

    [event] = gateway.verify_callback(fake.send_event("checkout.session.async_payment_failed", unpaid))

    assert event.transition == Transition.FAILED


@pytest.mark.parametrize("event_type", ["checkout.session.expired", "payment_intent.created", "customer.created"])
def test_other_event_types_are_unhandled(fake, gateway, event_type):
    session = paid_session(fake, gateway)

    [event] = gateway.verify_callback(fake.send_event(event_type, session))

    assert event.transition == Transition.UNHANDLED
    assert event.event_type == event_type


# Refunds.


def test_partial_refunds_map_one_event_per_refund(fake, gateway):
    intent_id = paid_session(fake, gateway, 20_000_000)["payment_intent"]
    first = fake.refund(intent_id, 500)
    [after_first] = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(intent_id)))
    second = fake.refund(intent_id, 700)

    after_second = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(intent_id)))

    assert (after_first.sub_id, after_first.amount_micros) == (first["id"], 5_000_000)
    assert {(event.sub_id, event.amount_micros) for event in after_second} == {
        (first["id"], 5_000_000),
        (second["id"], 7_000_000),
    }
    assert all(event.transition == Transition.REFUNDED for event in after_second)
    assert all(event.payment_id == intent_id for event in after_second)
    assert sum(event.amount_micros for event in after_second) == minor_units_to_micros(
        fake.charge_of(intent_id)["amount_refunded"], "usd"
    )


def test_full_refund_debits_whole_amount(fake, gateway):
    intent_id = paid_session(fake, gateway, 25_000_000)["payment_intent"]
    refund = fake.refund(intent_id, 2500)

    [event] = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(intent_id)))

    assert (event.sub_id, event.amount_micros) == (refund["id"], 25_000_000)


def test_refunds_missing_from_event_are_listed(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    refund = fake.refund(intent_id, 1000)
    charge = {**fake.charge_of(intent_id), "refunds": None}
    before = len(fake.requests)

    [event] = gateway.verify_callback(fake.send_event("charge.refunded", charge))

    listing = fake.requests[before:]
    assert [(r.path, r.query["charge"]) for r in listing] == [("/v1/refunds", [charge["id"]])]
    assert (event.sub_id, event.amount_micros) == (refund["id"], 10_000_000)


def test_incomplete_refund_list_asks_redelivery(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    fake.refund(intent_id, 1000)
    charge = fake.charge_of(intent_id)
    charge = {**charge, "amount_refunded": 1500}

    with pytest.raises(BackendUnavailable):
        gateway.verify_callback(fake.send_event("charge.refunded", charge))


def test_failed_refund_is_not_debited(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    fake.refund(intent_id, 1000, status="failed")
    kept = fake.refund(intent_id, 300)

    events = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(intent_id)))

    assert [(event.sub_id, event.amount_micros) for event in events] == [(kept["id"], 3_000_000)]


# Disputes.


def test_lost_dispute_reverses_once_with_withdrawal(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    dispute = fake.dispute(intent_id)

    [withdrawn] = gateway.verify_callback(fake.send_event("charge.dispute.funds_withdrawn", dispute))
    [lost] = gateway.verify_callback(
        fake.send_event("charge.dispute.closed", fake.set_dispute_status(dispute["id"], "lost"))
    )

    for event in (withdrawn, lost):
        assert event.transition == Transition.REVERSED
        assert (event.payment_id, event.sub_id) == (intent_id, dispute["id"])
        assert event.amount_micros == 20_000_000


def test_won_dispute_cancels_reversal(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    dispute = fake.dispute(intent_id)
    won = fake.set_dispute_status(dispute["id"], "won")

    [reinstated] = gateway.verify_callback(fake.send_event("charge.dispute.funds_reinstated", won))
    [closed] = gateway.verify_callback(fake.send_event("charge.dispute.closed", won))

    assert reinstated.transition == Transition.REVERSAL_CANCELLED
    assert (reinstated.payment_id, reinstated.sub_id, reinstated.amount_micros) == (
        intent_id,
        dispute["id"],
        20_000_000,
    )
    assert closed.transition == Transition.UNHANDLED


def test_dispute_without_payment_intent_is_matched_through_charge(fake, gateway):
    intent_id = paid_session(fake, gateway)["payment_intent"]
    dispute = {**fake.dispute(intent_id), "payment_intent": None, "status": "lost"}

    [event] = gateway.verify_callback(fake.send_event("charge.dispute.closed", dispute))

    assert event.payment_id == intent_id
    assert fake.requests[-1].path == f"/v1/charges/{dispute['charge']}"


# Currencies and exact amounts.


def test_zero_decimal_currency_amounts_are_whole_units(fake, gateway):
    session = paid_session(fake, gateway, 5_000_000_000, "JPY")
    fake.refund(session["payment_intent"], 1000)

    [paid] = gateway.verify_callback(fake.send_event("checkout.session.completed", session))
    [refunded] = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(session["payment_intent"])))

    assert (paid.amount_micros, paid.currency) == (5_000_000_000, "JPY")
    assert (refunded.amount_micros, refunded.currency) == (1_000_000_000, "JPY")


def test_three_decimal_currency_amounts_are_thousandths(fake, gateway):
    session = paid_session(fake, gateway, 5_120_000, "KWD")

    [event] = gateway.verify_callback(fake.send_event("checkout.session.completed", session))

    assert (event.amount_micros, event.currency) == (5_120_000, "KWD")


@pytest.mark.parametrize(
    ("micros", "minor"),
    [(8_030_000, 803), (16_060_000, 1606), (299_990_000, 29999), (4_350_000, 435)],
)
def test_paid_amount_is_exact(fake, gateway, micros, minor):
    session = paid_session(fake, gateway, micros)

    [event] = gateway.verify_callback(fake.send_event("checkout.session.completed", session))

    assert session["amount_total"] == minor
    assert event.amount_micros == micros


def test_hundred_one_cent_refunds_sum_exactly(fake, gateway):
    intent_id = paid_session(fake, gateway, 5_000_000)["payment_intent"]
    for _ in range(100):
        fake.refund(intent_id, 1)

    events = gateway.verify_callback(fake.send_event("charge.refunded", fake.charge_of(intent_id)))

    assert len({event.sub_id for event in events}) == 100
    assert sum(event.amount_micros for event in events) == 1_000_000


def test_every_cent_5_to_300_exact(fake, gateway):
    template = json.dumps(fake.event("checkout.session.completed", paid_session(fake, gateway)), indent=2)
    marker = '"amount_total": 2000'
    signed_at = int(time.time())

    mismatches = []
    for cents in range(500, 30_001):
        body = template.replace(marker, f'"amount_total": {cents}').encode()
        [event] = gateway.verify_callback(fake.deliver(body, timestamp=signed_at))
        if event.amount_micros != cents * 10_000 or micros_to_minor_units(event.amount_micros, "USD") != cents:
            mismatches.append(cents)

    assert mismatches == []


# Reconciliation.


def test_recent_payments_lists_succeeded_intents_since(fake, gateway):
    since = datetime.now(UTC) - timedelta(hours=1)
    old = paid_session(fake, gateway, 11_000_000)["payment_intent"]
    fake.objects[old]["created"] = int((since - timedelta(days=2)).timestamp())
    checkout = gateway.start_checkout(ACCOUNT_ID, 12_000_000, "USD", RETURN_URL)
    processing = fake.complete_session(checkout.payment_id, payment_status="unpaid")["payment_intent"]
    recent = paid_session(fake, gateway, 12_340_000)["payment_intent"]

    events = {event.payment_id: event for event in gateway.list_recent_payments(since)}

    assert events[recent].transition == Transition.COMPLETED
    assert events[recent].amount_micros == 12_340_000
    assert events[recent].account_id == ACCOUNT_ID
    assert old not in events
    assert processing not in events
    assert fake.requests[-1].query["created[gte]"] == [str(int(since.timestamp()))]


def test_recent_payments_follows_pagination(fake, gateway):
    since = datetime.now(UTC) - timedelta(hours=1)
    intents = [fake.pay(500, metadata={"account_id": ACCOUNT_ID})["id"] for _ in range(LIST_PAGE_LIMIT + 5)]
    before = len(fake.requests)

    listed = {event.payment_id for event in gateway.list_recent_payments(since)}

    pages = fake.requests[before:]
    assert set(intents) <= listed
    assert len(pages) >= 2
    assert "starting_after" not in pages[0].query
    assert "starting_after" in pages[1].query
