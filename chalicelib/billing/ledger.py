"""Ledger lines and the balance, kept equal.

Two ways move money, and both keep balance == sum(ledger):
- the hourly batch writes its lines first, then applies their sum with one compare-and-set
  update of the account's `billed_through` cursor (see billing.worker);
- every other batch (deletion, payment, adjustment) writes its lines and the balance
  change in one DynamoDB transaction, each line guarded by `attribute_not_exists`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.clock import iso, next_month_start, now, parse_month_key
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.base import transact_write
from chalicelib.models.ledger import LedgerLine

BATCH_HOURLY = "hourly"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit on items in one TransactWriteItems call
MAX_TRANSACTION_ATTEMPTS = 5


def line_key(moment: datetime, kind: str, reference: str) -> str:
    """Build a ledger sort key: the line's own UTC time, its kind and what it is for."""
    return f"{iso(moment)}#{kind}#{reference}"


def new_line(
    account_id: str,
    *,
    moment: datetime,
    kind: str,
    reference: str,
    amount_micros: int,
    description: str,
    batch: str,
    **extra: object,
) -> LedgerLine:
    return LedgerLine(
        account_id,
        line_key(moment, kind, reference),
        amount_micros=amount_micros,
        kind=kind,
        description=description,
        created_at=iso(now()),
        batch=batch,
        **extra,
    )


@dataclass(frozen=True)
class PostResult:
    posted: list[LedgerLine]
    already_present: list[str]

    @property
    def amount_micros(self) -> int:
        return sum(line.amount_micros for line in self.posted)


# Adds one more write (a guard record such as a payment) to a ledger transaction.
ExtraWrite = Callable[[TransactWrite], None]


def post_lines(
    account_id: str,
    lines: Iterable[LedgerLine],
    extra_write: ExtraWrite | None = None,
    account_actions: Sequence[Action] = (),
    account_condition: Condition | None = None,
) -> PostResult:
    """Write `lines` and add their sum to the balance in one transaction.

    Lines whose key already exists were posted before (a retry, or another batch owns
    them); they are left alone and reported in `already_present`. `extra_write` adds a
    write to another item, `account_actions` and `account_condition` extend the account
    update; when one of their conditions fails, TransactWriteError propagates and
    nothing is written.
    """
    pending = {line.line_key: line for line in lines}
    present: list[str] = []
    if len(pending) + 1 > MAX_TRANSACTION_ITEMS:
        raise ValueError(f"a ledger transaction accepts at most {MAX_TRANSACTION_ITEMS - 1} lines; split the batch")

    for _attempt in range(MAX_TRANSACTION_ATTEMPTS):
        if not pending:
            return PostResult([], present)
        try:
            _write_transaction(account_id, list(pending.values()), extra_write, account_actions, account_condition)
        except TransactWriteError:
            existing = _existing_keys(account_id, pending)
            if not existing:
                raise
            logger.debug("ledger_lines_already_present", extra={"account_id": account_id, "keys": existing})
            for key in existing:
                present.append(pending.pop(key).line_key)
            continue
        return PostResult(list(pending.values()), present)

    raise RuntimeError(f"ledger transaction for account {account_id} kept conflicting")


def _write_transaction(
    account_id: str,
    lines: list[LedgerLine],
    extra_write: ExtraWrite | None,
    account_actions: Sequence[Action],
    account_condition: Condition | None,
) -> None:
    total = sum(line.amount_micros for line in lines)
    condition = Account.account_id.exists()
    if account_condition is not None:
        condition = condition & account_condition
    with transact_write() as transaction:
        if extra_write is not None:
            extra_write(transaction)
        for line in lines:
            transaction.save(line, condition=LedgerLine.line_key.does_not_exist())
        transaction.update(
            Account(account_id),
            actions=[Account.balance_micros.add(total), *account_actions],
            condition=condition,
        )


def _existing_keys(account_id: str, lines: dict[str, LedgerLine]) -> list[str]:
    keys = [(account_id, key) for key in lines]
    return [line.line_key for line in LedgerLine.batch_get(keys, consistent_read=True)]


def month_lines(account_id: str, month: str) -> Iterator[LedgerLine]:
    """Yield an account's ledger lines of one UTC month ("YYYY-MM"), oldest first."""
    start = parse_month_key(month)
    end = next_month_start(start)
    return LedgerLine.query(account_id, LedgerLine.line_key.between(iso(start), iso(end)))


def applied_sum(account: Account) -> tuple[int, int]:
    """Return (sum of applied lines, sum of hourly lines still waiting for their batch).

    A worker that stopped after writing hourly lines and before moving the cursor leaves
    lines whose period is after `billed_through`; its retry applies them.
    """
    applied = pending = 0
    for line in LedgerLine.query(account.account_id, consistent_read=True):
        if line.batch == BATCH_HOURLY and (line.period or "") > account.billed_through:
            pending += line.amount_micros
        else:
            applied += line.amount_micros
    return applied, pending
