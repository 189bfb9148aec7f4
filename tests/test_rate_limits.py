"""Rate limits on DynamoDB Local: 429 with Retry-After per client address (IPv4, IPv6 /64)
and per account, fixed windows on the settable clock, and concurrent hits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.accounts import ratelimit
from chalicelib.accounts.ratelimit import Limit, RateLimitExceeded
from tests.api_calls import PASSWORD, ApiCaller

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

# 09:30 is 30 minutes into the hourly windows and the start of a 15-minute window.
T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def api() -> ApiCaller:
    clock.set_time(T0)
    return ApiCaller(app)


def sign_up(api: ApiCaller, number: int, source_ip: str) -> int:
    return api.call("POST", "/v1/auth/signup", {"email": f"user{number}@example.com", "password": PASSWORD}, source_ip=source_ip).status


def log_in(api: ApiCaller, email: str, source_ip: str, password: str = "wrong password") -> int:
    return api.call("POST", "/v1/auth/login", {"email": email, "password": password}, source_ip=source_ip).status


def test_signup_limited_per_address(api: ApiCaller) -> None:
    allowed = [sign_up(api, number, "203.0.113.7") for number in range(ratelimit.SIGNUP_PER_IP.hits)]

    rejected = api.call("POST", "/v1/auth/signup", {"email": "late@example.com", "password": PASSWORD}, source_ip="203.0.113.7")

    assert allowed == [201] * ratelimit.SIGNUP_PER_IP.hits
    assert rejected.status == 429
    assert rejected.body["error"]["code"] == "rate_limited"
    assert rejected.headers["Retry-After"] == str(30 * 60)
    assert sign_up(api, 999, "198.51.100.1") == 201


def test_limit_lifts_when_window_ends(api: ApiCaller) -> None:
    for number in range(ratelimit.SIGNUP_PER_IP.hits):
        sign_up(api, number, "203.0.113.7")
    clock.set_time(T0 + timedelta(minutes=29, seconds=59))
    assert sign_up(api, 100, "203.0.113.7") == 429

    clock.set_time(T0 + timedelta(minutes=30))

    assert sign_up(api, 101, "203.0.113.7") == 201


def test_ipv6_addresses_in_one_64_share_a_limit(api: ApiCaller) -> None:
    statuses = [sign_up(api, number, f"2001:db8:0:1::{number + 1:x}") for number in range(ratelimit.SIGNUP_PER_IP.hits + 1)]

    other_prefix = sign_up(api, 500, "2001:db8:0:2::1")

    assert statuses == [201] * ratelimit.SIGNUP_PER_IP.hits + [429]
    assert other_prefix == 201


def test_login_limited_per_account_from_any_address(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    limit = ratelimit.LOGIN_PER_ACCOUNT.hits

    statuses = [log_in(api, "ann@example.com", f"198.51.100.{number + 1}") for number in range(limit)]
    rejected = log_in(api, "ann@example.com", "192.0.2.1", PASSWORD)

    assert statuses == [401] * limit
    assert rejected == 429
    assert log_in(api, "bob@example.com", "192.0.2.1") == 401


def test_login_limited_per_address(api: ApiCaller) -> None:
    limit = ratelimit.LOGIN_PER_IP.hits

    statuses = [log_in(api, f"user{number}@example.com", "2001:db8::1") for number in range(limit)]
    rejected = log_in(api, "fresh@example.com", "2001:db8::2")

    assert statuses == [401] * limit
    assert rejected == 429
    assert log_in(api, "fresh@example.com", "2001:db8:1::1") == 401


def test_reset_request_limited_per_address_and_account(api: ApiCaller) -> None:
    per_account = ratelimit.RESET_REQUEST_PER_ACCOUNT.hits
    per_address = ratelimit.RESET_REQUEST_PER_IP.hits

    same_account = [
        api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"}, source_ip=f"198.51.100.{number + 1}").status
        for number in range(per_account + 1)
    ]
    same_address = [
        api.call("POST", "/v1/auth/reset-request", {"email": f"user{number}@example.com"}, source_ip="203.0.113.9").status
        for number in range(per_address + 1)
    ]

    assert same_account == [202] * per_account + [429]
    assert same_address == [202] * per_address + [429]


def test_payment_start_limited_per_account(api: ApiCaller) -> None:
    token = api.verified_session("ann@example.com")
    limit = ratelimit.PAYMENT_START_PER_ACCOUNT.hits
    body = {"gateway": "demo", "amount": "5.00"}

    statuses = [api.call("POST", "/v1/payments", body, token, source_ip=f"198.51.100.{number + 1}").status for number in range(limit)]
    rejected = api.call("POST", "/v1/payments", body, token, source_ip="192.0.2.1")

    assert statuses == [201] * limit
    assert rejected.status == 429
    assert int(rejected.headers["Retry-After"]) == 30 * 60


def test_payment_start_limited_per_address(api: ApiCaller) -> None:
    limit = ratelimit.PAYMENT_START_PER_IP.hits
    tokens = [api.verified_session(f"user{number}@example.com") for number in range(3)]
    body = {"gateway": "demo", "amount": "5.00"}

    statuses = [api.call("POST", "/v1/payments", body, tokens[number % 3], source_ip="2001:db8::5").status for number in range(limit)]
    rejected = api.call("POST", "/v1/payments", body, tokens[0], source_ip="2001:db8::6")

    assert statuses == [201] * limit
    assert rejected.status == 429


def test_chalice_local_source_address_is_counted(api: ApiCaller) -> None:
    with Client(app) as client:
        statuses = [
            client.http.post(
                "/v1/auth/signup",
                headers={"Content-Type": "application/json"},
                body=f'{{"email": "local{number}@example.com", "password": "{PASSWORD}"}}'.encode(),
            ).status_code
            for number in range(ratelimit.SIGNUP_PER_IP.hits)
        ]

    assert statuses == [201] * ratelimit.SIGNUP_PER_IP.hits
    assert sign_up(api, 999, "127.0.0.1") == 429


def test_concurrent_hits_never_pass_limit(api: ApiCaller) -> None:
    limit = Limit(5, timedelta(minutes=1))
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def attempt() -> None:
        start.wait()
        try:
            ratelimit.hit("test:concurrent", ratelimit.SCOPE_IP, "203.0.113.1", limit)
            outcomes.append("passed")
        except RateLimitExceeded:
            outcomes.append("limited")

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("passed") == 5
    assert outcomes.count("limited") == 7
