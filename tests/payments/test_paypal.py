"""PayPal gateway tests against the fake PayPal on 127.0.0.1: checkout, capture, webhook and
IPN verification, the mapping of every callback to PaymentEvents, and reconciliation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
import requests

from chalicelib import clock
from chalicelib.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    WebhookRejected,
    WebhookSignatureInvalid,
)
from chalicelib.payments.base import CallbackRequest, PaymentEvent, Transition
from chalicelib.payments.paypal import PayPalGateway, clear_token_cache, parse_ipn_event
from tests.fakes.paypal import FakePayPal
from tests.fakes.server import Request

RETURN_URL = "https://panel.lobster.example/billing/paypal/return"


@pytest.fixture(autouse=True)
def release_clock() -> Iterator[None]:
    yield
    clock.set_time(None)


@pytest.fixture
def paypal() -> Iterator[FakePayPal]:
    # A new fake may reuse a stopped fake's port, so tokens cached for that URL are stale.
    clear_token_cache()
    fake = FakePayPal()
    fake.start()
    yield fake
    fake.stop()


def make_gateway(paypal: FakePayPal, **settings: str) -> PayPalGateway:
    merged = {
        "api_url": paypal.base_url,
        "ipn_url": paypal.ipn_url,
        "webhook_id": paypal.webhook_id,
        "receiver_email": paypal.receiver_email,
    }
    merged.update(settings)
    gateway = PayPalGateway(merged, {"client_id": paypal.client_id, "client_secret": paypal.client_secret})
    for client in (gateway.api, gateway.ipn):
        client.sleep = lambda seconds: None
        client.timeout = (2, 2)
    return gateway


@pytest.fixture
def gateway(paypal: FakePayPal) -> PayPalGateway:
    return make_gateway(paypal)


def callback(headers: dict[str, str], raw_body: bytes, received_at: datetime | None = None) -> CallbackRequest:
    return CallbackRequest(headers=headers, raw_body=raw_body, query={}, received_at=received_at or clock.now())


def verify_one(gateway: PayPalGateway, headers: dict[str, str], raw_body: bytes) -> PaymentEvent:
    events = gateway.verify_callback(callback(headers, raw_body))
    assert len(events) == 1
    return events[0]


def requests_to(paypal: FakePayPal, path: str) -> list[Request]:
    return [request for request in paypal.requests if request.path == path]


# Checkout and capture.


def test_checkout_creates_order_with_payer_action_link(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    checkout = gateway.start_checkout("acct-1", 20_000_000, "USD", RETURN_URL)

    order = paypal.orders[checkout.payment_id]
    assert checkout.redirect_url == f"https://www.paypal.com/checkoutnow?token={checkout.payment_id}"
    assert order["intent"] == "CAPTURE"
    assert order["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "20.00"}
    assert order["purchase_units"][0]["custom_id"] == "acct-1"
    create = requests_to(paypal, "/v2/checkout/orders")[0]
    assert create.headers["paypal-request-id"]
    assert create.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("amount_micros", "currency", "text"),
    [
        (8_030_000, "USD", "8.03"),
        (16_060_000, "USD", "16.06"),
        (299_990_000, "USD", "299.99"),
        (5_000_000, "EUR", "5.00"),
        (1_500_000_000, "JPY", "1500"),
    ],
)
def test_checkout_sends_amount_as_exact_text(
    paypal: FakePayPal, gateway: PayPalGateway, amount_micros: int, currency: str, text: str
) -> None:
    checkout = gateway.start_checkout("acct-1", amount_micros, currency, RETURN_URL)

    amount = paypal.orders[checkout.payment_id]["purchase_units"][0]["amount"]
    assert amount == {"currency_code": currency, "value": text}


@pytest.mark.parametrize(("amount_micros", "currency"), [(20_000_500, "USD"), (1_500_500_000, "JPY"), (0, "USD")])
def test_checkout_rejects_amount_paypal_cannot_take(
    paypal: FakePayPal, gateway: PayPalGateway, amount_micros: int, currency: str
) -> None:
    with pytest.raises(InvalidRequest):
        gateway.start_checkout("acct-1", amount_micros, currency, RETURN_URL)

    assert paypal.orders == {}


def test_access_token_is_reused_until_it_expires(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    clock.set_time(datetime.now(clock.UTC))

    gateway.start_checkout("acct-1", 5_000_000, "USD", RETURN_URL)
    make_gateway(paypal).start_checkout("acct-2", 5_000_000, "USD", RETURN_URL)
    assert paypal.token_requests == 1

    clock.advance(timedelta(seconds=paypal.token_lifetime_seconds))
    gateway.start_checkout("acct-3", 5_000_000, "USD", RETURN_URL)
    assert paypal.token_requests == 2


def test_revoked_token_is_replaced_after_rejection(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    gateway.start_checkout("acct-1", 5_000_000, "USD", RETURN_URL)
    paypal.tokens.clear()

    with pytest.raises(BackendError, match="HTTP 401"):
        gateway.start_checkout("acct-2", 5_000_000, "USD", RETURN_URL)
    gateway.start_checkout("acct-3", 5_000_000, "USD", RETURN_URL)

    assert paypal.token_requests == 2
    assert len(paypal.orders) == 2


def test_wrong_client_secret_fails_with_backend_error(paypal: FakePayPal) -> None:
    gateway = PayPalGateway(
        {"api_url": paypal.base_url}, {"client_id": paypal.client_id, "client_secret": "not-the-secret"}
    )

    with pytest.raises(BackendError, match="client_id and client_secret"):
        gateway.start_checkout("acct-1", 5_000_000, "USD", RETURN_URL)

    assert paypal.orders == {}


def test_fake_rejects_order_that_breaks_paypal_spec(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    gateway.start_checkout("acct-1", 5_000_000, "USD", RETURN_URL)
    token = requests_to(paypal, "/v2/checkout/orders")[0].headers["authorization"]
    float_amount: dict[str, Any] = {
        "intent": "CAPTURE",
        "purchase_units": [{"amount": {"currency_code": "USD", "value": 20.0}}],
    }

    response = requests.post(
        f"{paypal.base_url}/v2/checkout/orders", json=float_amount, headers={"Authorization": token}, timeout=5
    )

    assert response.status_code == 400
    assert response.json()["name"] == "INVALID_REQUEST"
    assert len(paypal.orders) == 1


def test_capture_returns_completed_event_keyed_by_capture_id(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    checkout = gateway.start_checkout("acct-1", 20_000_000, "USD", RETURN_URL)
    paypal.approve_order(checkout.payment_id)

    events = gateway.capture_order(checkout.payment_id)

    assert len(events) == 1
    event = events[0]
    assert event.payment_id in paypal.captures
    assert event.payment_id != checkout.payment_id
    assert event.transition is Transition.COMPLETED
    assert event.amount_micros == 20_000_000
    assert event.requested_micros == 20_000_000
    assert event.currency == "USD"
    assert event.account_id == "acct-1"
    assert event.details["order_id"] == checkout.payment_id


def test_capture_same_order_twice_captures_once(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    checkout = gateway.start_checkout("acct-1", 20_000_000, "USD", RETURN_URL)
    paypal.approve_order(checkout.payment_id)

    first = gateway.capture_order(checkout.payment_id)
    second = gateway.capture_order(checkout.payment_id)

    assert [event.payment_id for event in first] == [event.payment_id for event in second]
    assert len(paypal.captures) == 1


def test_pending_capture_maps_to_pending(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    paypal.next_capture_status = "PENDING"
    checkout = gateway.start_checkout("acct-1", 50_000_000, "USD", RETURN_URL)
    paypal.approve_order(checkout.payment_id)

    (event,) = gateway.capture_order(checkout.payment_id)

    assert event.transition is Transition.PENDING
    assert event.amount_micros == 50_000_000


def test_capture_of_unapproved_order_is_backend_error(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    checkout = gateway.start_checkout("acct-1", 20_000_000, "USD", RETURN_URL)

    with pytest.raises(BackendError, match="ORDER_NOT_APPROVED"):
        gateway.capture_order(checkout.payment_id)

    assert paypal.captures == {}


def test_capture_rejects_malformed_order_id(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    with pytest.raises(InvalidRequest):
        gateway.capture_order("../../v1/oauth2/token")

    assert paypal.requests == []


# REST webhooks.


def test_webhook_capture_completed_maps_to_capture_id(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "34.00"), event_id="WH-1"
    )

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.COMPLETED
    assert event.payment_id == "42311647XV020574X"
    assert event.event_id == "WH-1"
    assert event.amount_micros == 34_000_000
    assert event.currency == "USD"
    assert event.account_id == "acct-1"
    assert event.details["order_id"] == "5O190127TN364715T"


def test_webhook_events_for_one_capture_share_payment(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    first_resource = paypal.capture_resource("3C679366HH908993F", "34.00")
    second_resource = dict(first_resource, update_time="2024-03-01T10:00:05Z", final_capture=False)
    first = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", first_resource, event_id="WH-A"))
    second = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", second_resource, event_id="WH-B"))

    assert first.event_id != second.event_id
    assert (first.payment_id, first.transition, first.sub_id) == (second.payment_id, second.transition, second.sub_id)
    assert first.payment_id == "3C679366HH908993F"
    assert first.amount_micros == second.amount_micros == 34_000_000


def test_webhook_capture_pending_maps_to_pending(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.capture_resource("8MC585209K746392H", "50.00", status="PENDING")

    event = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.PENDING", resource))

    assert event.transition is Transition.PENDING
    assert event.payment_id == "8MC585209K746392H"
    assert event.details["status_reason"] == "PENDING_REVIEW"


def test_webhook_denied_capture_maps_to_failed(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.capture_resource("8MC585209K746392H", "50.00", status="DECLINED")

    event = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.DENIED", resource))

    assert event.transition is Transition.FAILED
    assert event.payment_id == "8MC585209K746392H"


def test_webhook_refund_maps_to_original_capture(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.refund_resource("1JU08902781691411", "42311647XV020574X", "12.50")

    event = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.REFUNDED", resource, resource_type="refund"))

    assert event.transition is Transition.REFUNDED
    assert event.payment_id == "42311647XV020574X"
    assert event.sub_id == "1JU08902781691411"
    assert event.amount_micros == 12_500_000


def test_webhook_refund_without_capture_link_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.refund_resource("1JU08902781691411", "42311647XV020574X", "12.50")
    resource["links"] = [link for link in resource["links"] if link["rel"] != "up"]

    event = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.REFUNDED", resource, resource_type="refund"))

    assert event.transition is Transition.UNHANDLED
    assert "capture" in event.details["reason"]


def test_webhook_reversal_maps_to_reversed_capture(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.refund_resource("09E71677NS257044M", "4L335234718889942", "2.51")

    event = verify_one(gateway, *paypal.send_webhook("PAYMENT.CAPTURE.REVERSED", resource, resource_type="refund"))

    assert event.transition is Transition.REVERSED
    assert event.payment_id == "4L335234718889942"
    assert event.sub_id == ""
    assert event.amount_micros == 2_510_000


def test_lost_dispute_maps_to_reversal_of_capture(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.dispute_resource("PP-D-27803", "4L335234718889942", "10.00")

    event = verify_one(gateway, *paypal.send_webhook("CUSTOMER.DISPUTE.RESOLVED", resource, resource_type="dispute"))

    assert event.transition is Transition.REVERSED
    assert event.payment_id == "4L335234718889942"
    assert event.sub_id == ""
    assert event.amount_micros == 10_000_000
    assert event.details["dispute_id"] == "PP-D-27803"


def test_won_dispute_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.dispute_resource(
        "PP-D-27804", "4L335234718889942", "10.00", outcome_code="RESOLVED_SELLER_FAVOUR"
    )

    event = verify_one(gateway, *paypal.send_webhook("CUSTOMER.DISPUTE.RESOLVED", resource, resource_type="dispute"))

    assert event.transition is Transition.UNHANDLED
    assert "RESOLVED_SELLER_FAVOUR" in event.details["reason"]


def test_unknown_webhook_event_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = {"id": "5O190127TN364715T", "status": "APPROVED"}

    event = verify_one(
        gateway, *paypal.send_webhook("CHECKOUT.ORDER.APPROVED", resource, resource_type="checkout-order")
    )

    assert event.transition is Transition.UNHANDLED
    assert event.event_type == "CHECKOUT.ORDER.APPROVED"
    assert event.payment_id == "5O190127TN364715T"


def test_webhook_verification_sends_event_bytes_unchanged(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "8.03")
    )

    verify_one(gateway, headers, raw)

    verification = requests_to(paypal, "/v1/notifications/verify-webhook-signature")[0]
    assert verification.body.endswith(b'"webhook_event": ' + raw + b"}")
    assert verification.json()["webhook_id"] == paypal.webhook_id


def test_altered_webhook_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )
    altered = raw.replace(b'"value":"5.00"', b'"value":"500.00"')
    assert altered != raw

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(headers, altered))


def test_forged_webhook_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )
    forged = dict(
        headers,
        **{"paypal-transmission-id": "6a7e2d90-f1a3-11ee-9c2c-0242ac120002", "paypal-transmission-sig": "f00d" * 16},
    )

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(forged, raw))


def test_rejected_webhook_is_logged(
    paypal: FakePayPal, gateway: PayPalGateway, caplog: pytest.LogCaptureFixture
) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(headers, raw.replace(b"5.00", b"9.00")))

    rejected = [record for record in caplog.records if record.getMessage() == "paypal_callback_rejected"]
    assert len(rejected) == 1
    assert rejected[0].__dict__["transmission_id"] == headers["paypal-transmission-id"]
    assert rejected[0].__dict__["error_code"] == "webhook_signature_invalid"


def test_webhook_with_malformed_signature_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )
    malformed = dict(headers, **{"paypal-transmission-sig": "+/not a PayPal signature"})

    with pytest.raises(WebhookSignatureInvalid, match="paypal-transmission-sig"):
        gateway.verify_callback(callback(malformed, raw))

    assert requests_to(paypal, "/v1/notifications/verify-webhook-signature") == []


def test_reserialized_webhook_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )
    reserialized = json.dumps(json.loads(raw), indent=2).encode()

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(headers, reserialized))


def test_webhook_without_signature_headers_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )
    unsigned = {key: value for key, value in headers.items() if key != "paypal-transmission-sig"}

    with pytest.raises(WebhookSignatureInvalid, match="paypal-transmission-sig"):
        gateway.verify_callback(callback(unsigned, raw))

    assert requests_to(paypal, "/v1/notifications/verify-webhook-signature") == []


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(hours=-30), timedelta(minutes=6)])
def test_webhook_with_stale_transmission_time_is_rejected(
    paypal: FakePayPal, gateway: PayPalGateway, offset: timedelta
) -> None:
    resource = paypal.capture_resource("42311647XV020574X", "5.00")
    headers, raw = paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", resource, transmitted_at=clock.now() + offset)

    with pytest.raises(WebhookRejected, match="replay") as raised:
        gateway.verify_callback(callback(headers, raw))

    assert not isinstance(raised.value, WebhookSignatureInvalid)
    assert requests_to(paypal, "/v1/notifications/verify-webhook-signature") == []


def test_webhook_within_transmission_tolerance_is_accepted(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    resource = paypal.capture_resource("42311647XV020574X", "5.00")
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", resource, transmitted_at=clock.now() - timedelta(minutes=4)
    )

    assert verify_one(gateway, headers, raw).transition is Transition.COMPLETED


def test_webhook_without_configured_webhook_id_is_rejected(paypal: FakePayPal) -> None:
    gateway = make_gateway(paypal, webhook_id="")
    headers, raw = paypal.send_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00")
    )

    with pytest.raises(WebhookRejected, match="webhook_id"):
        gateway.verify_callback(callback(headers, raw))


def test_webhook_body_that_is_not_json_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, _ = paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("42311647XV020574X", "5.00"))

    with pytest.raises(WebhookRejected, match="JSON"):
        gateway.verify_callback(callback(headers, b"mc_gross=5.00"))


def test_callback_with_other_content_type_is_rejected(gateway: PayPalGateway) -> None:
    with pytest.raises(WebhookRejected, match="Content-Type"):
        gateway.verify_callback(callback({"content-type": "text/plain"}, b"VERIFIED"))


# Classic IPN.


def test_ipn_completed_maps_to_txn_id(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0001", mc_gross="20.00")

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.COMPLETED
    assert event.payment_id == "TXN-0001"
    assert event.amount_micros == 20_000_000
    assert event.currency == "USD"
    assert event.account_id == "acct-1"
    assert event.event_type == "ipn:web_accept:Completed"
    assert event.occurred_at == datetime(2009, 1, 14, 4, 12, 59, tzinfo=clock.UTC)
    assert paypal.ipn_postbacks == [b"cmd=_notify-validate&" + raw]


def test_same_ipn_five_times_maps_to_one_payment(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0001", mc_gross="20.00")
    events = [verify_one(gateway, headers, raw) for _ in range(3)]

    concurrent: list[PaymentEvent] = []
    threads = [threading.Thread(target=lambda: concurrent.append(verify_one(gateway, headers, raw))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events += concurrent

    assert len(events) == 5
    assert {(event.payment_id, event.transition, event.sub_id, event.amount_micros) for event in events} == {
        ("TXN-0001", Transition.COMPLETED, "", 20_000_000)
    }
    assert len(paypal.ipn_postbacks) == 5


def test_pending_then_completed_ipn_share_txn_id(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    pending = verify_one(
        gateway,
        *paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00", payment_status="Pending", pending_reason="echeck"),
    )
    completed = verify_one(gateway, *paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00"))
    repeated = verify_one(gateway, *paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00"))

    assert (pending.payment_id, pending.transition) == ("TXN-0002", Transition.PENDING)
    assert pending.details["pending_reason"] == "echeck"
    assert (completed.payment_id, completed.transition, completed.amount_micros) == (
        "TXN-0002",
        Transition.COMPLETED,
        50_000_000,
    )
    assert (repeated.payment_id, repeated.transition) == (completed.payment_id, completed.transition)


def test_ipn_postback_timeout_is_backend_unavailable(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    gateway.ipn.timeout = (1, 0.2)
    pending_headers, pending_raw = paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00", payment_status="Pending")
    paypal.hang_next(0.5, count=4)

    with pytest.raises(BackendUnavailable):
        gateway.verify_callback(callback(pending_headers, pending_raw))

    completed = verify_one(gateway, *paypal.send_ipn(txn_id="TXN-0002", mc_gross="50.00"))
    assert (completed.payment_id, completed.transition, completed.amount_micros) == (
        "TXN-0002",
        Transition.COMPLETED,
        50_000_000,
    )


def test_refund_ipn_maps_to_parent_payment(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(
        txn_id="REFUND-0001",
        parent_txn_id="TXN-0001",
        payment_status="Refunded",
        reason_code="refund",
        mc_gross="-20.00",
        mc_fee="-0.88",
        txn_type=None,
    )

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.REFUNDED
    assert event.payment_id == "TXN-0001"
    assert event.sub_id == "REFUND-0001"
    assert event.amount_micros == 20_000_000
    assert event.event_type == "ipn:-:Refunded"


def test_reversal_then_cancelled_reversal(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    reversed_event = verify_one(
        gateway,
        *paypal.send_ipn(
            txn_id="REV-0001",
            parent_txn_id="TXN-0009",
            payment_status="Reversed",
            reason_code="chargeback",
            mc_gross="-10.00",
            txn_type=None,
        ),
    )
    cancelled = verify_one(
        gateway,
        *paypal.send_ipn(
            txn_id="CAN-0001",
            parent_txn_id="TXN-0009",
            payment_status="Canceled_Reversal",
            reason_code="other",
            mc_gross="10.00",
            txn_type=None,
        ),
    )

    assert (reversed_event.transition, reversed_event.payment_id, reversed_event.amount_micros) == (
        Transition.REVERSED,
        "TXN-0009",
        10_000_000,
    )
    assert (cancelled.transition, cancelled.payment_id, cancelled.amount_micros) == (
        Transition.REVERSAL_CANCELLED,
        "TXN-0009",
        10_000_000,
    )
    assert reversed_event.details["reason_code"] == "chargeback"


def test_subscription_payment_ipn_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="SUB-0001", txn_type="subscr_payment", mc_gross="10.00", subscr_id="I-1234")

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.UNHANDLED
    assert event.payment_id == "SUB-0001"
    assert event.amount_micros == 10_000_000
    assert "subscr_payment" in event.details["reason"]


def test_denied_ipn_maps_to_failed(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    event = verify_one(gateway, *paypal.send_ipn(txn_id="TXN-0004", payment_status="Denied"))

    assert (event.transition, event.payment_id) == (Transition.FAILED, "TXN-0004")


def test_refund_ipn_without_parent_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="REFUND-0002", payment_status="Refunded", mc_gross="-20.00", txn_type=None)

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.UNHANDLED
    assert "parent_txn_id" in event.details["reason"]


def test_ipn_for_another_receiver_is_unhandled(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(
        txn_id="TXN-0005", receiver_email="someone@else.example", business="someone@else.example"
    )

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.UNHANDLED
    assert "receiver" in event.details["reason"]


def test_ipn_receiver_matches_case_insensitively(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0006", receiver_email=paypal.receiver_email.upper())

    assert verify_one(gateway, headers, raw).transition is Transition.COMPLETED


def test_altered_ipn_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0001", mc_gross="20.00")
    altered = raw.replace(b"mc_gross=20.00", b"mc_gross=200.00")
    assert altered != raw

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(headers, altered))


@pytest.mark.parametrize("reencode", ["quote", "reorder"])
def test_reencoded_ipn_is_rejected(paypal: FakePayPal, gateway: PayPalGateway, reencode: str) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0001")
    pairs = parse_qsl(raw.decode(), keep_blank_values=True, encoding="windows-1252")
    if reencode == "quote":
        reencoded = urlencode(pairs, encoding="windows-1252", quote_via=quote).encode()
    else:
        reencoded = urlencode(sorted(pairs), encoding="windows-1252").encode()
    assert reencoded != raw

    with pytest.raises(WebhookSignatureInvalid):
        gateway.verify_callback(callback(headers, reencoded))


def test_ipn_with_unusual_encoding_verifies_byte_for_byte(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0007", first_name="Zoë", item_name="Crédit Lobster", quote_via=quote)
    assert b"%20" in raw

    event = verify_one(gateway, headers, raw)

    assert event.transition is Transition.COMPLETED
    assert paypal.ipn_postbacks[-1] == b"cmd=_notify-validate&" + raw


def test_unexpected_postback_response_is_backend_error(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    headers, raw = paypal.send_ipn(txn_id="TXN-0001")
    paypal.fail_next(200, b"<html>maintenance</html>")

    with pytest.raises(BackendError, match="neither VERIFIED nor INVALID"):
        gateway.verify_callback(callback(headers, raw))


def test_empty_ipn_is_rejected(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    with pytest.raises(WebhookRejected):
        gateway.verify_callback(callback({"content-type": "application/x-www-form-urlencoded"}, b""))

    assert paypal.ipn_postbacks == []


# Money: decimal text to micro-units, never through float.


@pytest.mark.parametrize(
    ("text", "micros"),
    [("8.03", 8_030_000), ("16.06", 16_060_000), ("299.99", 299_990_000), ("4.35", 4_350_000), ("0.01", 10_000)],
)
def test_callback_amounts_are_exact(paypal: FakePayPal, gateway: PayPalGateway, text: str, micros: int) -> None:
    ipn = verify_one(gateway, *paypal.send_ipn(txn_id="TXN-M1", mc_gross=text))
    webhook = verify_one(
        gateway, *paypal.send_webhook("PAYMENT.CAPTURE.COMPLETED", paypal.capture_resource("CAPM1", text))
    )

    assert ipn.amount_micros == micros
    assert webhook.amount_micros == micros


def test_every_cent_from_5_to_300_parses_exactly() -> None:
    received_at = clock.now()
    mismatches = []
    for cents in range(500, 30_001):
        text = f"{cents // 100}.{cents % 100:02d}"
        fields = {
            "txn_type": "web_accept",
            "payment_status": "Completed",
            "txn_id": "T",
            "mc_gross": text,
            "mc_currency": "USD",
        }
        event = parse_ipn_event(fields, event_id="e", received_at=received_at)
        if event.amount_micros != cents * 10_000:
            mismatches.append(text)

    assert mismatches == []


# Reconciliation.


def test_recent_payments_lists_completed_receipts_only(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    checkout = gateway.start_checkout("acct-1", 20_000_000, "USD", RETURN_URL)
    paypal.approve_order(checkout.payment_id)
    (captured,) = gateway.capture_order(checkout.payment_id)
    paypal.add_transaction("WPS-0001", "15.00", event_code="T0007", custom_field="acct-2")
    paypal.add_transaction("REFUND-0001", "-20.00", event_code="T1107")
    paypal.add_transaction("PENDING-0001", "30.00", status="P")
    paypal.add_transaction("SUB-0001", "10.00", event_code="T0002")

    events = gateway.list_recent_payments(clock.now() - timedelta(days=1))

    by_id = {event.payment_id: event for event in events}
    assert set(by_id) == {captured.payment_id, "WPS-0001"}
    assert by_id[captured.payment_id].amount_micros == 20_000_000
    assert by_id[captured.payment_id].account_id == "acct-1"
    assert by_id["WPS-0001"].amount_micros == 15_000_000
    assert by_id["WPS-0001"].account_id == "acct-2"
    assert {event.transition for event in events} == {Transition.COMPLETED}


def test_recent_payments_follows_every_page(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    for number in range(1001):
        paypal.add_transaction(f"TXN-{number:05d}", "5.00")

    events = gateway.list_recent_payments(clock.now() - timedelta(days=1))

    assert len(events) == 1001
    assert [request["page"] for request in paypal.report_requests] == ["1", "2", "3"]


def test_recent_payments_splits_range_into_31_day_windows(paypal: FakePayPal, gateway: PayPalGateway) -> None:
    now = clock.now()
    paypal.add_transaction("OLD-0001", "5.00", initiated_at=now - timedelta(days=35))
    paypal.add_transaction("NEW-0001", "6.00", initiated_at=now - timedelta(days=2))

    events = gateway.list_recent_payments(now - timedelta(days=40))

    assert {event.payment_id for event in events} == {"OLD-0001", "NEW-0001"}
    assert len(paypal.report_requests) == 2
    for request in paypal.report_requests:
        span = clock.parse_iso(request["end_date"]) - clock.parse_iso(request["start_date"])
        assert span <= timedelta(days=31)
