"""VM-hour arithmetic. Pure functions, no IO.

A VM's hours are counted from its own start: VM-hour k is [start + k h, start + (k+1) h).
Every hour or part of an hour is charged, so a VM deleted at time d owes hours
0 .. ceil((d - start) / 1 h) - 1, and at least the configured minimum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from chalicelib.clock import HOUR, parse_iso

HOUR_SECONDS = 3600


def _seconds(later: datetime, earlier: datetime) -> int:
    return int((later - earlier).total_seconds())


def owed_hour_count(started: datetime, deleted: datetime, minimum_hours: int) -> int:
    """Number of VM-hours owed by a VM that ran from `started` to `deleted`."""
    elapsed = max(0, _seconds(deleted, started))
    return max(minimum_hours, -(-elapsed // HOUR_SECONDS))


def hours_ending_in(
    started: datetime,
    window_start: datetime,
    window_end: datetime,
    deleted: datetime | None = None,
    minimum_hours: int = 1,
) -> range:
    """VM-hour indexes k whose end lies in (window_start, window_end].

    For a deleted VM only the owed hours count; they all end by the time the hourly run
    reaches them, since a deletion charges its last partial hour at once.
    """
    first = max(0, _seconds(window_start, started) // HOUR_SECONDS)
    last_exclusive = max(0, _seconds(window_end, started) // HOUR_SECONDS)
    if deleted is not None:
        last_exclusive = min(last_exclusive, owed_hour_count(started, deleted, minimum_hours))
    return range(first, max(first, last_exclusive))


def hour_start(started: datetime, index: int) -> datetime:
    return started + index * HOUR


def plan_at(plan_history: Sequence[dict[str, Any]], moment: datetime) -> str:
    """Return the plan id whose price applies to an hour starting at `moment`.

    A resize takes effect for pricing from the VM-hour after it, recorded as `price_from`.
    """
    current = plan_history[0]["plan"]
    for entry in plan_history:
        if parse_iso(entry["price_from"]) <= moment:
            current = entry["plan"]
    return current


def price_at(prices: Iterable[Sequence[Any]], moment: datetime) -> int:
    """Return the hourly price in micro-units in effect at `moment` from [[from, micros], ...]."""
    chosen: int | None = None
    for effective_from, micros in sorted(prices, key=lambda pair: pair[0]):
        if parse_iso(effective_from) <= moment or chosen is None:
            chosen = int(micros)
    if chosen is None:
        raise ValueError("plan has no price")
    return chosen
