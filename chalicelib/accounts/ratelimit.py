"""Fixed-window rate limits per client address and per account, counted in DynamoDB.

Each hit is one conditional ADD on the counter of the current window, so concurrent
requests on any number of Lambda instances never pass the limit together. IPv6 clients
are counted per /64, the block a single customer line usually gets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.clock import now
from chalicelib.errors import RateLimited
from chalicelib.log import logger
from chalicelib.models.ratelimits import RateCounter

SCOPE_IP = "ip"
SCOPE_ACCOUNT = "account"
IPV6_PREFIX_LENGTH = 64
# A counter stays readable this long after its window ends, then TTL deletion removes it.
COUNTER_GRACE = timedelta(hours=1)
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Limit:
    hits: int
    window: timedelta


SIGNUP_PER_IP = Limit(10, timedelta(hours=1))
LOGIN_PER_IP = Limit(30, timedelta(minutes=15))
LOGIN_PER_ACCOUNT = Limit(10, timedelta(minutes=15))
RESET_REQUEST_PER_IP = Limit(10, timedelta(hours=1))
RESET_REQUEST_PER_ACCOUNT = Limit(3, timedelta(hours=1))
PAYMENT_START_PER_IP = Limit(20, timedelta(hours=1))
PAYMENT_START_PER_ACCOUNT = Limit(10, timedelta(hours=1))
PASSWORD_CHANGE_PER_ACCOUNT = Limit(10, timedelta(minutes=15))
VERIFY_REQUEST_PER_ACCOUNT = Limit(5, timedelta(hours=1))

# Limits by route action name. Log-in and reset requests count per e-mail address, because
# the caller is not signed in; the others count per signed-in account.
IP_LIMITS: dict[str, Limit] = {
    "auth:signup": SIGNUP_PER_IP,
    "auth:login": LOGIN_PER_IP,
    "auth:reset-request": RESET_REQUEST_PER_IP,
    "payments:create": PAYMENT_START_PER_IP,
}
ACCOUNT_LIMITS: dict[str, Limit] = {
    "auth:login": LOGIN_PER_ACCOUNT,
    "auth:reset-request": RESET_REQUEST_PER_ACCOUNT,
    "payments:create": PAYMENT_START_PER_ACCOUNT,
    "account:password": PASSWORD_CHANGE_PER_ACCOUNT,
    "auth:verify-request": VERIFY_REQUEST_PER_ACCOUNT,
}


class RateLimitExceeded(RateLimited):
    """Too many requests in the current window; `retry_after_seconds` is the wait until it ends."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def address_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """Return the counter key of a client address: the IPv4 address, or the IPv6 /64."""
    if address is None:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX_LENGTH), strict=False))
    return str(address)


def hit_ip_limit(action: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> None:
    """Count one request of `action` from `address`; raise RateLimitExceeded past the limit."""
    limit = IP_LIMITS.get(action)
    if limit is not None:
        hit(action, SCOPE_IP, address_key(address), limit)


def hit_account_limit(action: str, account_key: str) -> None:
    """Count one request of `action` for an account id or e-mail address."""
    limit = ACCOUNT_LIMITS.get(action)
    if limit is not None:
        hit(action, SCOPE_ACCOUNT, account_key, limit)


def hit(action: str, scope: str, key: str, limit: Limit) -> None:
    """Add one to the counter of the current window unless it already reached the limit."""
    window_seconds = int(limit.window.total_seconds())
    moment = now().timestamp()
    window_start = int(moment // window_seconds) * window_seconds
    window_end = window_start + window_seconds
    counter = RateCounter(_counter_key(action, scope, key, window_start))

    try:
        counter.update(
            actions=[
                RateCounter.hits.add(1),
                RateCounter.expires_epoch.set(window_end + int(COUNTER_GRACE.total_seconds())),
            ],
            condition=RateCounter.hits.does_not_exist() | (RateCounter.hits < limit.hits),
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        retry_after = max(1, math.ceil(window_end - moment))
        logger.info("rate_limited", extra={"action": action, "scope": scope, "retry_after_seconds": retry_after})
        raise RateLimitExceeded(
            f"too many {action} requests; try again in {retry_after} seconds",
            retry_after_seconds=retry_after,
        ) from None


def _counter_key(action: str, scope: str, key: str, window_start: int) -> str:
    # Addresses and e-mail addresses are stored only as a digest.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{action}|{scope}|{digest}|{window_start}"
