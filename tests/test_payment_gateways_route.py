"""GET /v1/payments/gateways: the enabled gateways with their display names, the amount
bounds of a payment and how each checkout completes, for logged-in customers only."""

from __future__ import annotations

import json

import pytest

from app import app
from chalicelib.config import settings
from chalicelib.money import money_json
from tests.api_calls import ApiCaller

# Settings the route never reads: it lists gateways without building or calling them.
ENABLED = {
    "paypal": {"settings": {"api_url": "http://127.0.0.1:9"}, "secret_ref": "file:paypal"},
    "stripe": {"settings": {"api_url": "http://127.0.0.1:9"}, "secret_ref": "file:stripe"},
}


@pytest.fixture
def api(db: None) -> ApiCaller:
    return ApiCaller(app)


def gateways_by_id(api: ApiCaller, token: str) -> dict[str, dict[str, object]]:
    reply = api.call("GET", "/v1/payments/gateways", token=token)
    assert reply.status == 200, reply.body
    return {gateway["id"]: gateway for gateway in reply.body["gateways"]}


def test_gateways_default_to_demo_only(api: ApiCaller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOBSTER_GATEWAYS", raising=False)
    token = api.verified_session("gateways-default@example.com")

    gateways = gateways_by_id(api, token)

    assert list(gateways) == ["demo"]
    assert gateways["demo"]["pays_at_checkout"] is True
    assert gateways["demo"]["capture_on_return"] is False


def test_gateways_list_enabled_gateways_with_bounds(api: ApiCaller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOBSTER_GATEWAYS", json.dumps(ENABLED))
    token = api.verified_session("gateways-enabled@example.com")

    gateways = gateways_by_id(api, token)

    assert sorted(gateways) == ["demo", "paypal", "stripe"]
    assert gateways["paypal"]["name"] == "PayPal"
    assert gateways["stripe"]["name"] == "Stripe"
    assert gateways["stripe"]["min_amount"] == money_json(settings().payment_min_micros)
    assert gateways["stripe"]["max_amount"] == money_json(settings().payment_max_micros)
    assert gateways["stripe"]["currency"] == settings().currency


def test_gateways_tell_which_checkout_needs_a_capture(api: ApiCaller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOBSTER_GATEWAYS", json.dumps(ENABLED))
    token = api.verified_session("gateways-capture@example.com")

    gateways = gateways_by_id(api, token)

    assert gateways["paypal"]["capture_on_return"] is True
    assert gateways["paypal"]["pays_at_checkout"] is False
    assert gateways["stripe"]["capture_on_return"] is False
    assert gateways["stripe"]["pays_at_checkout"] is False


def test_gateways_need_authentication(api: ApiCaller) -> None:
    reply = api.call("GET", "/v1/payments/gateways")

    assert reply.status == 401
    assert reply.body["error"]["code"] == "unauthenticated"
