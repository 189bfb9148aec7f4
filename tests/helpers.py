"""Builders shared by the tests: accounts with credit, VMs at a given time, balances."""

from __future__ import annotations

from datetime import datetime

from chalicelib import clock
from chalicelib.accounts.service import sign_up
from chalicelib.billing.adjustments import adjust_credit
from chalicelib.billing.ledger import applied_sum
from chalicelib.models.accounts import Account
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.vms import Vm
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
