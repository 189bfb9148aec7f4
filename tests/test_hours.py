"""VM-hour arithmetic: hours counted from the VM's own start, partial hours rounded up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.billing.hours import hours_ending_in, owed_hour_count

START = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)


def test_owed_hours_round_partial_hours_up() -> None:
    assert owed_hour_count(START, START + timedelta(minutes=5), 1) == 1
    assert owed_hour_count(START, START + timedelta(minutes=60), 1) == 1
    assert owed_hour_count(START, START + timedelta(minutes=61), 1) == 2


def test_owed_hours_apply_minimum() -> None:
    assert owed_hour_count(START, START + timedelta(minutes=5), 3) == 3
    assert owed_hour_count(START, START, 1) == 1


def test_hours_ending_in_window() -> None:
    window_start = datetime(2026, 12, 4, 11, tzinfo=UTC)
    window_end = datetime(2026, 12, 4, 12, tzinfo=UTC)

    assert list(hours_ending_in(START, window_start, window_end)) == [0]
    assert list(hours_ending_in(START, window_end, window_end + timedelta(hours=1))) == [1]


def test_hours_ending_in_stops_at_deletion() -> None:
    deleted = START + timedelta(minutes=70)
    far = START + timedelta(hours=10)

    assert list(hours_ending_in(START, START, far, deleted, 1)) == [0, 1]
