"""Bandwidth pools: proration over the UTC month and the resize split."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.billing.allocation import GIB, gib_seconds, overage_gib, pool_bytes

PLAN_GIB = {"s1": 1000, "big": 8000}.__getitem__


def history(*entries: tuple[str, str]) -> list[dict[str, str]]:
    return [{"plan": plan, "at": at, "price_from": at} for plan, at in entries]


def test_vm_created_late_january_gets_prorated_share() -> None:
    started = datetime(2024, 1, 31, 10, tzinfo=UTC)
    plan = history(("s1", "2024-01-31T10:00:00Z"))

    january = pool_bytes(gib_seconds(plan, started, None, datetime(2024, 1, 1, tzinfo=UTC), PLAN_GIB), datetime(2024, 1, 1, tzinfo=UTC))
    february = pool_bytes(gib_seconds(plan, started, None, datetime(2024, 2, 1, tzinfo=UTC), PLAN_GIB), datetime(2024, 2, 1, tzinfo=UTC))

    assert january == 1000 * 14 * GIB // 744
    assert round(january / GIB, 2) == 18.82
    assert february == 1000 * GIB


def test_late_upgrade_does_not_buy_a_whole_month() -> None:
    month = datetime(2024, 1, 1, tzinfo=UTC)
    plan = history(("s1", "2023-12-01T00:00:00Z"), ("big", "2024-01-31T12:00:00Z"))

    pool = pool_bytes(gib_seconds(plan, datetime(2023, 12, 1, tzinfo=UTC), None, month, PLAN_GIB), month)

    assert round(pool / GIB, 2) == 1112.90
    assert overage_gib(1200 * GIB, pool) == 87


def test_deleted_vm_counts_only_time_it_existed() -> None:
    month = datetime(2024, 4, 1, tzinfo=UTC)
    plan = history(("s1", "2024-04-01T00:00:00Z"))

    pool = pool_bytes(gib_seconds(plan, month, datetime(2024, 4, 16, tzinfo=UTC), month, PLAN_GIB), month)

    assert pool == 500 * GIB
