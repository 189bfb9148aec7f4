"""The UTC clock. Every module reads the time through `now()` so tests can set it.

Times are timezone-aware UTC datetimes; naive datetimes are rejected at the edges.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    """Return the current time in UTC, or the time a test set."""
    with _lock:
        if _frozen is not None:
            return _frozen
    return datetime.now(UTC)


def set_time(moment: datetime | None) -> None:
    """Freeze the clock at `moment` (UTC), or release it with None."""
    global _frozen
    if moment is not None:
        moment = as_utc(moment)
    with _lock:
        _frozen = moment


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward by `delta` and return the new time."""
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("advance() needs a frozen clock; call set_time() first")
        _frozen = _frozen + delta
        return _frozen


@contextlib.contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Freeze the clock at `moment` for the duration of a `with` block."""
    set_time(moment)
    try:
        yield
    finally:
        set_time(None)


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; naive datetimes are rejected rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone; use UTC")
    return moment.astimezone(UTC)


def floor_hour(moment: datetime) -> datetime:
    """Return the start of the UTC hour that contains `moment`."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


def month_start(moment: datetime) -> datetime:
    """Return the start of the UTC calendar month that contains `moment`."""
    return as_utc(moment).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    """Return the start of the UTC month after the one that contains `moment`."""
    start = month_start(moment)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def previous_month_start(moment: datetime) -> datetime:
    """Return the start of the UTC month before the one that contains `moment`."""
    return month_start(month_start(moment) - timedelta(days=1))


def month_key(moment: datetime) -> str:
    """Return the UTC month of `moment` as "YYYY-MM"."""
    return as_utc(moment).strftime("%Y-%m")


def hour_key(moment: datetime) -> str:
    """Return the UTC hour of `moment` as "YYYY-MM-DDTHH"."""
    return as_utc(moment).strftime("%Y-%m-%dT%H")


def parse_hour_key(text: str) -> datetime:
    """Parse "YYYY-MM-DDTHH" as the start of that UTC hour."""
    return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def parse_month_key(text: str) -> datetime:
    """Parse "YYYY-MM" as the start of that UTC month."""
    return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """Format a UTC time as ISO 8601 with a Z suffix and whole seconds."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 time with a zone (Z or an offset) into UTC."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
