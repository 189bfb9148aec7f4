"""Bandwidth pool arithmetic. Pure functions, no IO.

Each VM adds its plan's monthly allowance (GiB) to its account's pool for the region, in
proportion to the part of the UTC month it exists: a running VM until month end, a deleted
VM the time it existed. A resize counts the old plan before it and the new plan after it.
Allocations are summed exactly in GiB-seconds; bytes come out rounded down once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from chalicelib.clock import month_start, next_month_start, parse_iso

GIB = 1 << 30


def plan_segments(
    plan_history: Sequence[dict[str, Any]], started: datetime, ended: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Split a VM's life [started, ended) into (plan, from, to) by the exact resize times."""
    segments = []
    for position, entry in enumerate(plan_history):
        begin = max(parse_iso(entry["at"]), started)
        finish = parse_iso(plan_history[position + 1]["at"]) if position + 1 < len(plan_history) else ended
        finish = min(finish, ended)
        if finish > begin:
            segments.append((entry["plan"], begin, finish))
    return segments


def gib_seconds(
    plan_history: Sequence[dict[str, Any]],
    started: datetime,
    deleted: datetime | None,
    month: datetime,
    plan_gib: Callable[[str], int],
) -> int:
    """Return a VM's allocation to the pool of the month starting at `month`, in GiB-seconds."""
    first, after = month_start(month), next_month_start(month)
    ended = min(deleted, after) if deleted is not None else after

    total = 0
    for plan_id, begin, finish in plan_segments(plan_history, started, ended):
        overlap = (min(finish, after) - max(begin, first)).total_seconds()
        if overlap > 0:
            total += plan_gib(plan_id) * int(overlap)
    return total


def pool_bytes(total_gib_seconds: int, month: datetime) -> int:
    """Convert summed GiB-seconds into the pool in bytes for that month, rounded down."""
    month_seconds = int((next_month_start(month) - month_start(month)).total_seconds())
    return total_gib_seconds * GIB // month_seconds


def overage_gib(used_bytes: int, pool: int) -> int:
    """Whole GiB used above the pool; a partial GiB is not charged."""
    return max(0, used_bytes - pool) // GIB
