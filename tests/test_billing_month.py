"""A simulated month of hourly runs, compared account by account with a reference
calculation written here from the billing rules, independently of the billing code.

Accounts: one with VMs created and deleted at odd minutes, a resize and an image. A
second one runs out of credit, is suspended, pays and is unsuspended. A third one goes
above its bandwidth pool.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from chalicelib import clock
from chalicelib.billing.planner import plan_hour, plan_rollover
from chalicelib.clock import HOUR
from chalicelib.models.accounts import Account
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm
from chalicelib.notify.sender import outbox
from chalicelib.payments.service import start_payment
from chalicelib.vms.service import delete_vm, resize_vm
from tests.helpers import account_with_credit, add_image, add_plan, assert_balance_matches_ledger, balance, vm_at

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

APRIL = datetime(2024, 4, 1, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
PRICES = {"s1": 7_500, "m2": 15_000, "l4": 30_000, "trickle": 10_000}
BANDWIDTH_GIB = {"s1": 1000, "m2": 2000, "l4": 4000, "trickle": 10}
STORAGE_MICROS_PER_GB_HOUR = Fraction("55.5")
GIB = 2**30


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 4, day, hour, minute, second, tzinfo=UTC)


def reference_vm_charge(start: datetime, end: datetime | None, plans: list[tuple[datetime, str]]) -> int:
    """Sum the hourly prices a VM owes, from the rules: every started hour, counted from
    its own start, at the plan in effect when that hour starts; a resize prices from the
    next hour. A running VM owes the hours that ended by the end of April."""
    if end is None:
        hours = int((MAY - start).total_seconds()) // 3600
    else:
        hours = max(1, math.ceil((end - start).total_seconds() / 3600))
    total = 0
    for index in range(hours):
        plan = plans[0][1]
        for resized_at, new_plan in plans[1:]:
            resized_hour = math.floor((resized_at - start).total_seconds() / 3600)
            if index > resized_hour:
                plan = new_plan
        total += PRICES[plan]
    return total


def reference_storage(images: list[tuple[datetime, datetime | None, int]]) -> int:
    """Per UTC hour, the bytes of every image that existed during it, priced and rounded once."""
    total = 0
    hour = APRIL - HOUR
    while hour < MAY:
        stored = sum(size for created, deleted, size in images if created < hour + HOUR and (deleted is None or deleted > hour))
        exact = STORAGE_MICROS_PER_GB_HOUR * stored / 10**9
        total += int(exact + Fraction(1, 2))
        hour += HOUR
    return total


def demo_rate(backend_id: str) -> int:
    """The demo backend's documented traffic rate for a VM, in bytes per second."""
    return 50_000 + zlib.crc32(backend_id.encode()) % 200_000


def test_simulated_april_matches_reference() -> None:
    add_plan("trickle", "0.01", 10)
    events: list[tuple[datetime, Callable[[], None]]] = []
    state: dict[str, object] = {}

    heavy = account_with_credit("heavy@example.com", 100_000_000, APRIL - timedelta(minutes=30))
    short = account_with_credit("short@example.com", 5_000_000, APRIL - timedelta(minutes=30))
    chatty = account_with_credit("chatty@example.com", 50_000_000, APRIL - timedelta(minutes=30))

    def create(key: str, account: Account, when: datetime, plan: str) -> None:
        state[key] = vm_at(account, when, plan, key)

    def remove(key: str, when: datetime) -> None:
        clock.set_time(when)
        vm = state[key]
        assert isinstance(vm, Vm)
        delete_vm(Vm.get(vm.account_id, vm.vm_id))

    def resize(key: str, when: datetime, plan: str) -> None:
        clock.set_time(when)
        vm = state[key]
        assert isinstance(vm, Vm)
        resize_vm(Vm.get(vm.account_id, vm.vm_id), plan)

    def drop_image(when: datetime) -> None:
        image = state["image"]
        assert isinstance(image, Image)
        Image(image.account_id, image.image_id).update(actions=[Image.deleted_at.set(clock.iso(when))])

    def pay(when: datetime) -> None:
        clock.set_time(when)
        start_payment(Account.get(short.account_id), "demo", 20_000_000, "/")

    events += [
        (at(1, 0, 17, 33), lambda: create("a1", heavy, at(1, 0, 17, 33), "s1")),
        (at(1, 0, 0, 0), lambda: create("b1", short, at(1, 0, 0, 0), "s1")),
        (at(2, 8, 8, 8), lambda: create("c1", chatty, at(2, 8, 8, 8), "trickle")),
        (at(3, 5, 59, 1), lambda: create("a2", heavy, at(3, 5, 59, 1), "m2")),
        (at(5, 2), lambda: state.__setitem__("image", add_image(heavy, 25 * 10**9, at(5, 2)))),
        (at(12, 13, 41, 12), lambda: remove("a1", at(12, 13, 41, 12))),
        (at(20, 10, 10), lambda: resize("a2", at(20, 10, 10), "l4")),
        (at(25, 0), lambda: drop_image(at(25, 0))),
        (at(29, 12), lambda: pay(at(29, 12))),
    ]
    hour = APRIL - HOUR
    while hour < MAY:
        run_at = hour + HOUR + timedelta(minutes=5)
        events.append((run_at, lambda hour=hour, run_at=run_at: (clock.set_time(run_at), plan_hour(hour))))
        hour += HOUR
    events.sort(key=lambda event: event[0])

    for when, action in events:
        clock.set_time(when)
        action()
    clock.set_time(MAY + timedelta(minutes=15))
    plan_rollover(APRIL)

    # Heavy: two VMs, a resize, an image.
    a2_plans = [(at(3, 5, 59, 1), "m2"), (at(20, 10, 10), "l4")]
    heavy_cost = (
        reference_vm_charge(at(1, 0, 17, 33), at(12, 13, 41, 12), [(at(1, 0, 17, 33), "s1")])
        + reference_vm_charge(at(3, 5, 59, 1), None, a2_plans)
        + reference_storage([(at(5, 2), at(25, 0), 25 * 10**9)])
    )
    assert balance(heavy.account_id) == 100_000_000 - heavy_cost

    # Short: one VM all month; credit ran out, the VM was suspended and lifted by a payment.
    short_cost = reference_vm_charge(at(1, 0), None, [(at(1, 0), "s1")])
    assert balance(short.account_id) == 5_000_000 + 20_000_000 - short_cost
    short_notices = [notice.template for notice in outbox if notice.to == "short@example.com"]
    assert short_notices.count("low_credit") >= 5
    assert short_notices.index("suspended") < short_notices.index("unsuspended")
    assert Vm.get(short.account_id, state["b1"].vm_id).suspended == "no"  # type: ignore[attr-defined]

    # Chatty: traffic above a 10 GiB pool. April's usage is the last reading sampled in April.
    c1 = Vm.get(chatty.account_id, state["c1"].vm_id)  # type: ignore[attr-defined]
    last_april_sample = at(30, 23, 5)
    used = demo_rate(c1.backend_id or "") * int((last_april_sample - at(2, 8, 8, 8)).total_seconds())
    pool = 10 * int((MAY - at(2, 8, 8, 8)).total_seconds()) * GIB // (30 * 86400)
    over_gib = (used - pool) // GIB
    assert over_gib > 0
    chatty_cost = reference_vm_charge(at(2, 8, 8, 8), None, [(at(2, 8, 8, 8), "trickle")]) + over_gib * 3_000
    assert balance(chatty.account_id) == 50_000_000 - chatty_cost
    assert Account.get(chatty.account_id).bandwidth_used["demo|2024-04"] == used

    for account in (heavy, short, chatty):
        assert_balance_matches_ledger(account.account_id)
