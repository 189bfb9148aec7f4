"""`make reconcile`: every balance against the sum of its ledger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.models.accounts import Account
from tests.helpers import account_with_credit
from tools.cli import main

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")


def test_reconcile_passes_when_balances_match(capsys: pytest.CaptureFixture[str]) -> None:
    account_with_credit("ok@example.com", 20_000_000, datetime(2026, 1, 1, tzinfo=UTC))

    assert main(["reconcile"]) == 0
    assert "1 accounts: 0 mismatched" in capsys.readouterr().out


def test_reconcile_reports_a_balance_that_drifted(capsys: pytest.CaptureFixture[str]) -> None:
    account = account_with_credit("drift@example.com", 20_000_000, datetime(2026, 1, 1, tzinfo=UTC))
    Account(account.account_id).update(actions=[Account.balance_micros.add(1)])

    assert main(["reconcile"]) == 1
    output = capsys.readouterr().out
    assert f"MISMATCH {account.account_id}: balance 20000001, ledger 20000000" in output


@pytest.mark.parametrize("hour", ["garbage", "2026-12-05T25", "2026-12-05"])
def test_bill_with_malformed_hour_explains_the_format(hour: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bill", "--hour", hour]) == 2

    assert "YYYY-MM-DDTHH" in capsys.readouterr().err
