"""Builders shared by the tests: accounts with credit, VMs at a given time, balances."""

from __future__ import annotations

from datetime import datetime

from chalicelib import clock
from chalicelib.accounts.service import sign_up
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.billing.ledger import applied_sum
from chalicelib.billing.shards import shard_for
from chalicelib.catalog import invalidate
from chalicelib.clock import iso
from chalicelib.models.accounts import Account
from chalicelib.models.catalog import KIND_PLAN, CatalogItem
from chalicelib.models.images import Image
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
from chalicelib.money import parse_micros
from chalicelib.vms.service import create_vm

PASSWORD = "correct horse battery"


def account_with_credit(email: str, amount_micros: int, at: datetime) -> Account:
    clock.set_time(at)
    account = sign_up(email, PASSWORD)
    if amount_micros:
        adjust_credit(account.account_id, amount_micros, "Opening credit", "opening")
    return Account.get(account.account_id, consistent_read=True)


def vm_at(account: Account, at: datetime, plan: str = "s1", name: str = "web1") -> Vm:
    clock.set_time(at)
    return create_vm(Account.get(account.account_id, consistent_read=True), name, "demo", plan, "debian-12")


def accounts_in_one_shard(count: int, credit: int, at: datetime) -> list[Account]:
    """Sign up accounts until `count` of them share a billing shard; return those."""
    by_shard: dict[str, list[Account]] = {}
    number = 0
    while True:
        account = account_with_credit(f"user{number}@example.com", credit, at)
        number += 1
        same_shard = by_shard.setdefault(shard_for(account.account_id), [])
        same_shard.append(account)
        if len(same_shard) == count:
            return same_shard


def balance(account_id: str) -> int:
    return Account.get(account_id, consistent_read=True).balance_micros


def ledger(account_id: str) -> list[LedgerLine]:
    return list(LedgerLine.query(account_id, consistent_read=True))


def charges(account_id: str, kind: str = "vm") -> list[LedgerLine]:
    return [line for line in ledger(account_id) if line.kind == kind]


def assert_balance_matches_ledger(account_id: str) -> None:
    account = Account.get(account_id, consistent_read=True)
    applied, pending = applied_sum(account)
    assert pending == 0, f"hourly lines waiting for their batch: {pending}"
    assert account.balance_micros == applied


def add_plan(plan_id: str, price: str, bandwidth_gib: int) -> None:
    """Add a plan offered in the demo region, priced from 2020 on."""
    CatalogItem(
        KIND_PLAN,
        plan_id,
        name=plan_id,
        ram_mb=1024,
        vcpus=1,
        disk_gb=25,
        bandwidth_gib=bandwidth_gib,
        prices=[["2020-01-01T00:00:00Z", parse_micros(price)]],
        region_ids={"demo": plan_id},
    ).save()
    invalidate()


def add_image(account: Account, size_bytes: int, created: datetime, name: str = "backup") -> Image:
    """Store a customer image that takes part in storage billing from `created`."""
    image = Image(
        account.account_id,
        f"img-{name}",
        name=name,
        region="demo",
        state="active",
        size_bytes=size_bytes,
        created_at=iso(created),
        billing_shard=shard_for(account.account_id),
    )
    image.billing_sort = f"{account.account_id}#{image.image_id}"
    image.save()
    return image
