"""The hourly billing worker: bills every account of one shard up to a given hour.

Invariant: each (VM, VM-hour) and each (account, storage hour) is one ledger line with a
deterministic key, written once with `attribute_not_exists`. An account's hourly lines
reach its balance through one compare-and-set on `billed_through`, so retries, duplicate
messages, concurrent runs and accounts billed in parallel threads charge every hour once.
The lines and cursor moves of a group of accounts travel together as PartiQL statements,
each under the same condition as its single-item write, so batching changes no outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import TypeVar

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.billing.bandwidth import settle
from chalicelib.billing.hours import hour_start, hours_ending_in, plan_at
from chalicelib.billing.ledger import BATCH_HOURLY, new_line
from chalicelib.billing.lifecycle import review
from chalicelib.billing.meter import traffic_delta
from chalicelib.billing.prefetch import Readings, read_accounts, read_traffic_batches, read_vm_traffic
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.clock import HOUR, hour_key, iso, month_key, now, parse_hour_key, parse_iso, previous_month_start
from chalicelib.config import settings
from chalicelib.errors import LobsterError
from chalicelib.images.service import refresh_pending_images
from chalicelib.log import logger, metrics
from chalicelib.models import statements
from chalicelib.models.accounts import Account
from chalicelib.models.images import Image
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.statements import MAX_STATEMENTS, Outcome, Result
from chalicelib.models.vms import Vm
from chalicelib.money import round_half_up
from chalicelib.vms.service import refresh_vm, retry_backend_delete

MAX_CURSOR_ATTEMPTS = 5
BYTES_PER_GB = 10**9
# Accounts of one shard billed at the same time. Each thread waits on its own DynamoDB and
# provider requests; boto3 clients are thread-safe and PynamoDB keeps a session per thread.
ACCOUNT_THREADS = 4

KeyT = TypeVar("KeyT")
ResultT = TypeVar("ResultT")


@dataclass
class AccountWork:
    vms: list[Vm] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


@dataclass
class ShardResult:
    accounts_billed: int = 0
    accounts_skipped: int = 0
    lines_applied: int = 0
    amount_micros: int = 0


@dataclass(frozen=True)
class _Reading:
    vm_id: str
    usage_key: str  # "region|YYYY-MM" of the month the sample ends in
    counter: int


@dataclass
class _Batch:
    """The hourly lines of one account for one cursor move, and the traffic readings they carry,
    oldest first."""

    lines: list[LedgerLine] = field(default_factory=list)
    readings: list[_Reading] = field(default_factory=list)

    @property
    def amount_micros(self) -> int:
        return sum(line.amount_micros for line in self.lines)


class ShardIncomplete(LobsterError):
    """Some accounts of a shard failed; the others were billed and the message is retried."""


def bill_shard(shard: str, through_hour: datetime, threads: int | None = None) -> ShardResult:
    """Bill every account with billable VMs or images in `shard` through `through_hour`.

    The shard's VMs, images, accounts and traffic counters are read first (see `_read_shard`).
    The accounts are then billed in groups, `threads` groups at once (ACCOUNT_THREADS by
    default), each group
    sending its ledger lines and its cursor moves in batches of statements. One account's
    failure does not stop the others: it is logged, the rest are billed, and ShardIncomplete
    makes the queue deliver the message again for the failed accounts.
    """
    result = ShardResult()
    catalog = load_catalog()
    failed: list[str] = []

    work_by_account, accounts, readings = _read_shard(shard)
    run = _Run(work_by_account, accounts, readings, through_hour, catalog)

    threads = threads or ACCOUNT_THREADS
    groups = _groups(list(work_by_account), threads)
    for group, outcome in run_isolated(groups, run.bill_group, threads).items():
        outcomes = outcome if isinstance(outcome, dict) else dict.fromkeys(group, outcome)
        for account_id, account_outcome in outcomes.items():
            if isinstance(account_outcome, Exception):
                logger.error(
                    "account_billing_failed",
                    exc_info=account_outcome,
                    extra={"account_id": account_id, "shard": shard, "error": str(account_outcome)},
                )
                metrics.add_metric(name="AccountBillingFailures", unit="Count", value=1)
                failed.append(account_id)
            elif account_outcome is None:
                result.accounts_skipped += 1
            else:
                result.accounts_billed += 1
                result.lines_applied += len(account_outcome.lines)
                result.amount_micros += account_outcome.amount_micros

    logger.info(
        "billing_shard_done",
        extra={"shard": shard, "hour": hour_key(through_hour), "failed": len(failed), **result.__dict__},
    )
    if failed:
        raise ShardIncomplete(f"shard {shard}: {len(failed)} accounts failed and will be retried")
    return result


def _groups(account_ids: list[str], threads: int) -> list[tuple[str, ...]]:
    """Split accounts into one group per thread, each of at most MAX_STATEMENTS accounts."""
    size = max(1, min(MAX_STATEMENTS, -(-len(account_ids) // max(1, threads))))
    return [tuple(account_ids[offset : offset + size]) for offset in range(0, len(account_ids), size)]


def run_isolated(keys: list[KeyT], work: Callable[[KeyT], ResultT], threads: int) -> dict[KeyT, ResultT | Exception]:
    """Call `work` for each key on up to `threads` threads; return each result or error.

    An Exception fails only its own key and is returned as its result. Anything else, such
    as KeyboardInterrupt, cancels the keys not yet started and propagates once the running
    ones finish.
    """

    def isolate(key: KeyT) -> ResultT | Exception:
        try:
            return work(key)
        except Exception as error:  # noqa: BLE001 - isolate one account's failure from the shard
            return error

    if threads <= 1 or len(keys) <= 1:
        return {key: isolate(key) for key in keys}

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="billing-account")
    try:
        futures = {key: pool.submit(isolate, key) for key in keys}
        return {key: future.result() for key, future in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def collect_shard(shard: str) -> dict[str, AccountWork]:
    return _by_account(list(Vm.billing_index.query(shard)), list(Image.billing_index.query(shard)))


def _read_shard(shard: str) -> tuple[dict[str, AccountWork], dict[str, Account], Readings]:
    """Read what billing a shard needs, two requests at a time: the images while the VMs are
    queried, then the traffic counters of live VMs while their accounts are read."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="billing-read") as pool:
        images = pool.submit(lambda: list(Image.billing_index.query(shard)))
        vms = list(Vm.billing_index.query(shard))
        live = [vm for vm in vms if vm.deleted_at is None and vm.plan_history]
        traffic = pool.submit(read_traffic_batches, live)
        work_by_account = _by_account(vms, images.result())
        accounts = read_accounts(work_by_account)
        return work_by_account, accounts, traffic.result()


def _by_account(vms: list[Vm], images: list[Image]) -> dict[str, AccountWork]:
    work: dict[str, AccountWork] = defaultdict(AccountWork)
    for vm in vms:
        work[vm.account_id].vms.append(vm)
    for image in images:
        work[image.account_id].images.append(image)
    return work


def bill_account(
    account_id: str,
    work: AccountWork,
    through_hour: datetime,
    catalog: Catalog,
    *,
    account: Account | None = None,
    readings: Readings | None = None,
) -> _Batch | None:
    """Move one account's cursor to `through_hour`, charging everything in between.

    `account` is a copy read earlier, such as by BatchGetItem, and `readings` holds traffic
    counters read earlier by VM id; VMs missing from it are read here. The first attempt
    uses the copy, and each attempt after a failed compare-and-set reads the account again.
    Returns the applied batch, or None when the cursor was already there. The steps after
    billing run either way, because a run that moved the cursor may have stopped before them,
    and each of them takes effect once.
    """
    _refresh_images(account_id, work)

    for _attempt in range(MAX_CURSOR_ATTEMPTS):
        if account is None:
            account = Account.get(account_id, consistent_read=True)
        cursor = parse_hour_key(account.billed_through)
        if cursor >= through_hour:
            _after_batch(account, work, catalog)
            return None

        batch = _claim_each(_candidate_lines(account, work, cursor, through_hour, catalog, readings or {}))
        if _apply_batch(account, batch, through_hour, work.vms):
            _finish(account, batch, work, through_hour, catalog)
            return batch
        account = None

    raise RuntimeError(f"account {account_id}: billing cursor kept moving under the worker")


@dataclass
class _Run:
    """One shard's billing run: what it read up front, and how it bills a group of accounts."""

    work_by_account: dict[str, AccountWork]
    accounts: dict[str, Account]
    readings: Readings
    through_hour: datetime
    catalog: Catalog

    def bill_group(self, account_ids: tuple[str, ...]) -> dict[str, _Batch | None | Exception]:
        """Bill a group of accounts: their lines in INSERT batches, then their cursor moves in
        one UPDATE batch. An account whose line or cursor move did not apply, or every account
        when the batched path raises, is billed alone by `bill_account` after a fresh read."""
        outcomes: dict[str, _Batch | None | Exception] = {}
        candidates: dict[str, list[LedgerLine]] = {}
        for account_id in account_ids:
            prepared = self._prepare(account_id)
            if isinstance(prepared, list):
                candidates[account_id] = prepared
            else:
                outcomes[account_id] = prepared

        try:
            batches = _claim_together(candidates)
            moved = _move_cursors_together(batches, self)
        except Exception as error:  # noqa: BLE001 - each account is then billed alone, where its error stays its own
            logger.warning("billing_batch_failed", extra={"account_ids": list(candidates), "error": str(error)})
            batches, moved = {}, {}

        for account_id in candidates:
            outcomes[account_id] = self._conclude(account_id, batches.get(account_id), moved.get(account_id))
        return outcomes

    def _prepare(self, account_id: str) -> list[LedgerLine] | _Batch | None | Exception:
        """Return the account's candidate lines. Return None when the cursor is already there,
        the billed batch when the account had to be billed alone, or the error that failed it."""
        work, account = self.work_by_account[account_id], self.accounts.get(account_id)
        try:
            if account is None:
                return self._bill_alone(account_id)
            _refresh_images(account_id, work)
            cursor = parse_hour_key(account.billed_through)
            if cursor >= self.through_hour:
                _after_batch(account, work, self.catalog)
                return None
            return _candidate_lines(account, work, cursor, self.through_hour, self.catalog, self.readings)
        except Exception as error:  # noqa: BLE001 - isolate one account's failure from its group
            return error

    def _conclude(self, account_id: str, batch: _Batch | None, moved: Account | None) -> _Batch | None | Exception:
        try:
            if batch is None or moved is None:
                return self._bill_alone(account_id)
            _finish(moved, batch, self.work_by_account[account_id], self.through_hour, self.catalog)
            return batch
        except Exception as error:  # noqa: BLE001 - isolate one account's failure from its group
            return error

    def _bill_alone(self, account_id: str) -> _Batch | None:
        work = self.work_by_account[account_id]
        return bill_account(account_id, work, self.through_hour, self.catalog, readings=self.readings)


def _refresh_images(account_id: str, work: AccountWork) -> None:
    if any(image.state in ("pending", "deleting") for image in work.images):
        refresh_pending_images(account_id, work.images)


def _finish(account: Account, batch: _Batch, work: AccountWork, through_hour: datetime, catalog: Catalog) -> None:
    _log_batch(account.account_id, batch, through_hour)
    _after_batch(account, work, catalog)


def _candidate_lines(
    account: Account, work: AccountWork, cursor: datetime, through_hour: datetime, catalog: Catalog, readings: Readings
) -> list[LedgerLine]:
    """Return the hourly lines that move the cursor to `through_hour`, oldest first per VM."""
    lines: list[LedgerLine] = []
    window_start, window_end = cursor + HOUR, through_hour + HOUR

    for vm in work.vms:
        lines.extend(_vm_lines(account, vm, window_start, window_end, catalog, readings))
    for period in _hours(cursor + HOUR, through_hour):
        line = _storage_line(account.account_id, work.images, period)
        if line is not None:
            lines.append(line)
    return lines


def _after_batch(account: Account, work: AccountWork, catalog: Catalog) -> None:
    """Retry pending backend deletes, settle bandwidth, and take the next credit step.

    `account` is the item as the cursor move returned it, or a consistent read when the cursor
    was already there. Deleted VMs stay in the billing index until the monthly rollover, because their time
    counts towards the month's bandwidth pool.
    """
    for vm in work.vms:
        if vm.state == "deleting":
            retry_backend_delete(vm)
        elif vm.state == "error" and not vm.plan_history:
            vm.update(actions=[Vm.billing_shard.remove(), Vm.billing_sort.remove()])

    settle(account.account_id, work.vms, catalog, account=account)
    review(account.account_id, current_hourly_cost(work, catalog), account=account)


def current_hourly_cost(work: AccountWork, catalog: Catalog) -> int:
    """Return what the account's live VMs and images cost per hour at today's prices."""
    moment = now()
    total = 0
    for vm in work.vms:
        if vm.plan_history and vm.deleted_at is None and vm.state == "active":
            total += catalog.plan_price_at(plan_at(vm.plan_history, moment), moment)
    stored = sum(image.size_bytes for image in work.images if image.deleted_at is None)
    return total + round_half_up(settings().storage_micros_per_gb_hour * stored / BYTES_PER_GB)


def _hours(first: datetime, last: datetime) -> list[datetime]:
    hours, moment = [], first
    while moment <= last:
        hours.append(moment)
        moment += HOUR
    return hours


def _billable_hours(vm: Vm, window_start: datetime, window_end: datetime) -> range:
    """Return the indexes of the VM's hours that end in (window_start, window_end]."""
    if not vm.plan_history or vm.started_at is None:
        return range(0)
    started = parse_iso(vm.started_at)
    deleted = parse_iso(vm.deleted_at) if vm.deleted_at else None
    if vm.hourly_from:
        window_start = max(window_start, parse_iso(vm.hourly_from))
    return hours_ending_in(started, window_start, window_end, deleted, settings().minimum_billed_hours)


def _vm_lines(
    account: Account, vm: Vm, window_start: datetime, window_end: datetime, catalog: Catalog, readings: Readings
) -> list[LedgerLine]:
    if vm.state == "provisioning":
        refresh_vm(vm)
    indexes = _billable_hours(vm, window_start, window_end)
    if not indexes:
        return []

    started = parse_iso(vm.started_at or "")
    reading = None
    if vm.deleted_at is None:
        reading = readings[vm.vm_id] if vm.vm_id in readings else read_vm_traffic(vm)
    lines = []
    for index in indexes:
        start = hour_start(started, index)
        plan_id = plan_at(vm.plan_history, start)
        is_last = index == indexes[-1]
        line = new_line(
            account.account_id,
            moment=start,
            kind="vm",
            reference=vm.vm_id,
            amount_micros=-catalog.plan_price_at(plan_id, start),
            description=f"VM {vm.name}, plan {catalog.any_plan(plan_id).name}, hour from {iso(start)}",
            batch=BATCH_HOURLY,
            period=hour_key(start + HOUR - _EPSILON),
            vm_id=vm.vm_id,
            region=vm.region,
        )
        if is_last and reading is not None:
            delta = traffic_delta(account.meters.get(vm.vm_id), reading)
            line.bandwidth_reading = reading
            line.bandwidth_delta = delta
            line.bandwidth_month = month_key(now())
        lines.append(line)
    return lines


_EPSILON = HOUR / 3600  # one second: an hour ending exactly at HH:00 belongs to run HH-1


def _storage_line(account_id: str, images: list[Image], period: datetime) -> LedgerLine | None:
    stored_bytes = sum(image.size_bytes for image in images if _image_exists_during(image, period))
    if stored_bytes == 0:
        return None

    rate: Fraction = settings().storage_micros_per_gb_hour
    amount = round_half_up(rate * stored_bytes / BYTES_PER_GB)
    if amount == 0:
        return None
    return new_line(
        account_id,
        moment=period,
        kind="storage",
        reference="images",
        amount_micros=-amount,
        description=f"Image storage, {stored_bytes} bytes for the hour from {iso(period)}",
        batch=BATCH_HOURLY,
        period=hour_key(period),
    )


def _image_exists_during(image: Image, period: datetime) -> bool:
    created = parse_iso(image.created_at)
    deleted = parse_iso(image.deleted_at) if image.deleted_at else None
    return created < period + HOUR and (deleted is None or deleted > period) and image.state != "error"


def _claim_each(lines: list[LedgerLine]) -> _Batch:
    """Write each line with its own PutItem and return the lines the hourly batch owns."""
    batch = _Batch()
    for line in lines:
        owned = _claim(line)
        if owned is not None:
            _include(batch, owned)
    return batch


def _claim(line: LedgerLine) -> LedgerLine | None:
    """Write an hourly line and return the stored line if the hourly batch owns it.

    A line that an earlier attempt of the hourly batch wrote is adopted as stored. A line
    that a deletion already charged belongs to that deletion, so None is returned.
    """
    try:
        line.save(condition=LedgerLine.line_key.does_not_exist())
        return line
    except PutError as error:
        if not _is_conditional_failure(error):
            raise
    stored = LedgerLine.get(line.account_id, line.line_key, consistent_read=True)
    return stored if stored.batch == BATCH_HOURLY else None


def _claim_together(candidates: dict[str, list[LedgerLine]]) -> dict[str, _Batch]:
    """Write the lines of many accounts in INSERT batches, each line under the same rule as
    `_claim`. Returns the owned lines of each account whose lines were all written or
    already stored. An account with a line that failed for another reason is left out."""
    lines = [line for account_lines in candidates.values() for line in account_lines]
    outcomes = statements.execute([statements.insert(line) for line in lines])
    conflicting = [line for line, outcome in zip(lines, outcomes, strict=True) if outcome.result is Result.CONDITION_FAILED]
    stored = _stored_lines(conflicting)

    batches = {account_id: _Batch() for account_id in candidates}
    for line, outcome in zip(lines, outcomes, strict=True):
        if line.account_id not in batches:
            continue  # an earlier line of the account failed, so the account is billed alone
        owned = line if outcome.result is Result.APPLIED else stored.get((line.account_id, line.line_key))
        if outcome.result is Result.FAILED or owned is None:
            _log_statement_failure(line.account_id, "ledger line", outcome)
            del batches[line.account_id]
        elif owned.batch == BATCH_HOURLY:
            _include(batches[line.account_id], owned)
    return batches


def _stored_lines(lines: list[LedgerLine]) -> dict[tuple[str, str], LedgerLine]:
    if not lines:
        return {}
    keys = [(line.account_id, line.line_key) for line in lines]
    return {(line.account_id, line.line_key): line for line in LedgerLine.batch_get(keys, consistent_read=True)}


def _include(batch: _Batch, line: LedgerLine) -> None:
    batch.lines.append(line)
    if line.bandwidth_reading is not None and line.vm_id is not None:
        usage_key = f"{line.region}|{line.bandwidth_month}"
        batch.readings.append(_Reading(line.vm_id, usage_key, int(line.bandwidth_reading)))


def _meter_changes(meters: dict[str, int], readings: list[_Reading]) -> tuple[dict[str, int], dict[str, int]]:
    """Return the meters after `readings` and the bytes they add per "region|YYYY-MM".

    Each delta is taken from the previous reading of the same VM, starting from `meters`,
    which the cursor's compare-and-set guards. The delta stored on a line is not used,
    because a line written by an attempt whose cursor then moved can be based on older meters.
    """
    latest = dict(meters)
    usage: dict[str, int] = defaultdict(int)
    for reading in readings:
        usage[reading.usage_key] += traffic_delta(latest.get(reading.vm_id), reading.counter)
        latest[reading.vm_id] = reading.counter
    return latest, usage


@dataclass(frozen=True)
class _CursorMove:
    """The changes a batch makes to the account besides adding its amount to the balance."""

    assignments: dict[str, object]
    amount_micros: int


def _cursor_move(account: Account, batch: _Batch, through_hour: datetime, vms: list[Vm]) -> _CursorMove:
    latest, added = _meter_changes(account.meters, batch.readings)
    # Keep readings only for VMs that still report traffic, so the account item stays
    # under 1 KB and its cursor update costs one write unit.
    metered = {vm.vm_id for vm in vms if vm.deleted_at is None}
    meters = {vm_id: reading for vm_id, reading in latest.items() if vm_id in metered}
    usage = recent_months(account.bandwidth_used)
    for key, delta in added.items():
        usage[key] = usage.get(key, 0) + delta

    assignments: dict[str, object] = {"billed_through": hour_key(through_hour)}
    if batch.readings or meters != account.meters:
        assignments["meters"] = meters
    if added:
        assignments["bandwidth_used"] = usage
    return _CursorMove(assignments, batch.amount_micros)


def _apply_batch(account: Account, batch: _Batch, through_hour: datetime, vms: list[Vm]) -> bool:
    """Apply the batch with a compare-and-set on the cursor; False if another run moved it."""
    move = _cursor_move(account, batch, through_hour, vms)
    actions = [getattr(Account, name).set(value) for name, value in move.assignments.items()]
    actions.append(Account.balance_micros.set(Account.balance_micros + move.amount_micros))
    try:
        account.update(actions=actions, condition=Account.billed_through == account.billed_through)
    except UpdateError as error:
        if _is_conditional_failure(error):
            return False
        raise
    return True


def _move_cursors_together(batches: dict[str, _Batch], run: _Run) -> dict[str, Account]:
    """Apply many accounts' batches in UPDATE batches, each a compare-and-set on the cursor
    like `_apply_batch`. Returns the updated account of each batch that applied."""
    account_ids = list(batches)
    updates = []
    for account_id in account_ids:
        account = run.accounts[account_id]
        move = _cursor_move(account, batches[account_id], run.through_hour, run.work_by_account[account_id].vms)
        updates.append(
            statements.update(
                Account,
                key={"account_id": account_id},
                assignments=move.assignments,
                increments={"balance_micros": move.amount_micros},
                expected={"billed_through": account.billed_through},
            )
        )
    moved = {}
    for account_id, outcome in zip(account_ids, statements.execute(updates), strict=True):
        if outcome.result is Result.APPLIED:
            moved[account_id] = _account_after(run.accounts[account_id], outcome)
        elif outcome.result is Result.FAILED:
            _log_statement_failure(account_id, "cursor move", outcome)
    return moved


def _account_after(account: Account, outcome: Outcome) -> Account:
    """Return the account as the applied cursor move left it: the copy read before it with the
    changed attributes that the move returned, or a fresh read if the response carried none."""
    if outcome.item is None:
        return Account.get(account.account_id, consistent_read=True)
    for name, attribute in Account.get_attributes().items():
        if attribute.attr_name in outcome.item:
            setattr(account, name, attribute.deserialize(attribute.get_value(outcome.item[attribute.attr_name])))
    return account


def _log_statement_failure(account_id: str, statement: str, outcome: Outcome) -> None:
    """Log a statement that did not apply; its account is then billed alone."""
    logger.warning(
        "billing_statement_failed",
        extra={"account_id": account_id, "statement": statement, "error": outcome.error or outcome.result.value},
    )


def recent_months(per_month: dict[str, int]) -> dict[str, int]:
    """Keep "region|YYYY-MM" keys of this month and the last; older months are settled."""
    oldest = month_key(previous_month_start(now()))
    return {key: value for key, value in per_month.items() if key.rpartition("|")[2] >= oldest}


def _log_batch(account_id: str, batch: _Batch, through_hour: datetime) -> None:
    if not batch.lines:
        return
    logger.info(
        "charge_applied",
        extra={
            "account_id": account_id,
            "through_hour": hour_key(through_hour),
            "lines": len(batch.lines),
            "amount_micros": batch.amount_micros,
        },
    )
    metrics.add_metric(name="VmHoursBilled", unit="Count", value=sum(1 for line in batch.lines if line.kind == "vm"))


def _is_conditional_failure(error: Exception) -> bool:
    cause = getattr(error, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"
