"""`make bench`: the hourly billing run's DynamoDB cost and wall time, on DynamoDB Local.

Starts its own DynamoDB Local on a free 127.0.0.1 port with its own table prefix. Each scenario
writes a fleet of active VMs (bench.fleet) and runs the real hourly billing for one hour with the
clock frozen, while bench.recorder records every request and bench.capacity prices it. The wall
time is compared with a floor measured on the same server in the same process: one conditional
PutItem per VM-hour of a ledger-line-sized item through PynamoDB, sent by as many threads as
the run bills accounts on.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench.capacity import OK, Accountant, schema_from_description
from bench.recorder import Recording, record_requests
from bench.report import Charged, ScenarioResult, figure_lines, format_scenario
from tools import dynamodb_local

if TYPE_CHECKING:
    from chalicelib.models.ledger import LedgerLine

DEFAULT_VM_COUNTS = (1000, 10000)
DEFAULT_VMS_PER_ACCOUNT = (5, 1)
WARM_UP_VMS = 2000  # VMs of a billing run and floor that are not reported, so the JVM's JIT is warm
WARM_UP_VMS_PER_ACCOUNT = 2


def main(argv: list[str] | None = None) -> int:
    """Run the warm-up and every scenario, print a table per scenario and then the figures."""
    args = _parse_args(argv)
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    port = dynamodb_local.free_port()
    _configure_environment(prefix, port)
    threads = _set_account_threads(args.account_threads)

    started = time.perf_counter()
    server = dynamodb_local.start(port)
    try:
        print(machine_summary(), flush=True)
        print(f"DynamoDB Local on {server.endpoint}, table prefix {prefix}", flush=True)
        print(f"account threads {threads}, for the billing run and for the floor", end="\n\n", flush=True)
        if args.warm_up_vms:
            _run_scenario(args.warm_up_vms, WARM_UP_VMS_PER_ACCOUNT, prefix, args.stale_meters, threads)
        results = []
        for vm_count in args.vm_counts:
            for vms_per_account in args.vms_per_account:
                result = _run_scenario(vm_count, vms_per_account, prefix, args.stale_meters, threads)
                print(format_scenario(result), end="\n\n", flush=True)
                results.append(result)
    finally:
        server.stop()

    print(f"bench finished in {time.perf_counter() - started:.0f} s")
    print("\n".join(figure_lines(results)))
    return 0


def machine_summary() -> str:
    """Describe what the figures were measured on: date, cores, memory and versions."""
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    return "\n".join(
        [
            f"date           {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"machine        {os.cpu_count()} cores, {_memory_gib():.0f} GiB memory, {platform.platform()}",
            f"Python         {platform.python_version()}",
            f"Java           {java[0] if java else 'unknown'}",
            f"DynamoDB Local {_dynamodb_local_version()}",
        ]
    )


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def _dynamodb_local_version() -> str:
    """Return the newest release in the jar's release notes, such as "3.3.1 (2026-05-28)"."""
    notes = dynamodb_local.find_distribution() / "README.txt"
    for line in notes.read_text().splitlines():
        match = re.match(r"^\s*(\d{4}-\d{2}-\d{2}) \(([^)]+)\)", line)
        if match:
            return f"{match.group(2)} ({match.group(1)})"
    return "unknown"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.billing", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vm-counts", type=_counts, default=DEFAULT_VM_COUNTS, help="comma-separated VM counts (default: 1000,10000)"
    )
    parser.add_argument(
        "--vms-per-account",
        type=_counts,
        default=DEFAULT_VMS_PER_ACCOUNT,
        help="comma-separated VMs per account (default: 5,1)",
    )
    parser.add_argument(
        "--stale-meters",
        type=int,
        default=0,
        help="traffic readings of deleted VMs stored in every account (default: 0)",
    )
    parser.add_argument(
        "--account-threads",
        type=int,
        default=None,
        help="threads that bill a shard's accounts, and that send the floor's writes (default: the worker's ACCOUNT_THREADS)",
    )
    parser.add_argument(
        "--warm-up-vms",
        type=int,
        default=WARM_UP_VMS,
        help=f"VMs of the unreported first run (default: {WARM_UP_VMS}; 0 skips it)",
    )
    args = parser.parse_args(argv)
    if args.account_threads is not None and args.account_threads < 1:
        parser.error(f"--account-threads must be at least 1, got {args.account_threads}")
    for vm_count in args.vm_counts:
        for vms_per_account in args.vms_per_account:
            if vm_count % vms_per_account:
                parser.error(
                    f"VM count {vm_count} is not a multiple of {vms_per_account} VMs per account; choose counts that divide evenly"
                )
    return args


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(","))
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"counts must be positive integers, got {text!r}")
    return counts


def _configure_environment(prefix: str, port: int) -> None:
    """Point the application at a server of its own; models read this once, at import."""
    os.environ.update(
        {
            "LOBSTER_STAGE": "local",
            "LOBSTER_TABLE_PREFIX": prefix,
            "LOBSTER_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    os.environ.pop("LOBSTER_BILLING_QUEUE_URL", None)  # bill shards inline, as the local stage does


def _set_account_threads(threads: int | None) -> int:
    """Set the worker's account thread count when `threads` is given; return the count in use."""
    from chalicelib.billing import worker

    if threads is not None:
        worker.ACCOUNT_THREADS = threads
    return worker.ACCOUNT_THREADS


def _run_scenario(
    vm_count: int, vms_per_account: int, prefix: str, stale_meters: int = 0, threads: int = 1
) -> ScenarioResult:
    """Build a fleet, time the floor before and after the billing run, and price every request."""
    from bench.fleet import BILLED_HOUR, RUN_AT, build_fleet, floor_lines
    from chalicelib import clock
    from chalicelib.billing.planner import plan_hour
    from chalicelib.catalog import invalidate
    from chalicelib.log import metrics
    from chalicelib.models.demo import DemoMachine

    _reset_tables()
    label = f"{vm_count}-{vms_per_account}-{stale_meters}"
    fleet = build_fleet(vm_count, vms_per_account, label, stale_meters)
    before, after = floor_lines(fleet, f"{label}-floor-before"), floor_lines(fleet, f"{label}-floor-after")

    load_before = os.getloadavg()[0]
    floor_before, floor_before_recording = _time_floor(before, threads)
    invalidate()  # the run loads the catalog itself, as a fresh Lambda invocation does
    clock.set_time(RUN_AT)
    with _quiet_output(), record_requests() as recording:
        started = time.perf_counter()
        plan_hour(BILLED_HOUR)
        run_seconds = time.perf_counter() - started
    clock.set_time(None)
    metrics.clear_metrics()  # drop the run's buffered metrics, so no scenario carries them into the next
    floor_after, floor_after_recording = _time_floor(after, threads)
    load_after = os.getloadavg()[0]

    result = ScenarioResult(
        vm_count=vm_count,
        vms_per_account=vms_per_account,
        accounts=len(fleet.accounts),
        vm_hours=fleet.vm_hours,
        run_seconds=run_seconds,
        floor_seconds=(floor_before, floor_after),
        charged=_price(recording),
        floor_charged=_price(floor_before_recording) + _price(floor_after_recording),
        retries=recording.retries,
        table_prefix=prefix,
        demo_table=DemoMachine.Meta.table_name,
        stale_meters=stale_meters,
        load_averages=(load_before, load_after),
        account_threads=threads,
    )
    _check_run(result)
    return result


def _reset_tables() -> None:
    """Start every scenario from empty tables and the demo catalog."""
    from chalicelib.catalog import invalidate
    from tools.seed import seed_demo
    from tools.tables import create_tables, delete_tables

    delete_tables()
    create_tables()
    seed_demo()
    invalidate()


def _time_floor(lines: list[LedgerLine], threads: int) -> tuple[float, Recording]:
    """Write `lines` with the ledger's condition, each of `threads` threads one slice after the
    other; return the seconds and the recording."""
    from chalicelib.models.ledger import LedgerLine

    condition = LedgerLine.line_key.does_not_exist()

    def write(part: list[LedgerLine]) -> None:
        for line in part:
            line.save(condition=condition)

    parts = [lines[offset::threads] for offset in range(threads)]
    with record_requests() as recording, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="floor") as pool:
        started = time.perf_counter()
        for future in [pool.submit(write, part) for part in parts]:
            future.result()
        seconds = time.perf_counter() - started
    return seconds, recording


def _price(recording: Recording) -> Charged:
    """Price a recording's requests in order, because a write's cost needs the item images read before it."""
    from chalicelib.models import ALL_MODELS

    accountant = Accountant(schema_from_description(model.describe_table()) for model in ALL_MODELS)
    return [(record, accountant.charge(record)) for record in recording.records()]


@contextlib.contextmanager
def _quiet_output() -> Iterator[None]:
    """Send the run's JSON logs and metrics to /dev/null; they are still formatted, as on Lambda."""
    from chalicelib.log import logger

    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        raise RuntimeError(f"the application logs through {handler!r}, not a stream the bench can silence")
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        previous = handler.setStream(devnull)
        try:
            yield
        finally:
            handler.setStream(previous or sys.stdout)


def _check_run(result: ScenarioResult) -> None:
    """Raise RuntimeError unless the run wrote one ledger line per VM-hour and moved every cursor."""
    written = _count(result, "ledger", "PutItem") + _count(result, "ledger", "BatchExecuteStatement INSERT")
    cursors = _count(result, "accounts", "UpdateItem") + _count(result, "accounts", "BatchExecuteStatement UPDATE")
    if written != result.vm_hours or cursors != result.accounts:
        raise RuntimeError(
            f"the billing run wrote {written} ledger lines for {result.vm_hours} VM-hours and moved "
            f"{cursors} cursors for {result.accounts} accounts; the fleet is not in the expected state"
        )
    failed = [charge for _, charges in result.charged for charge in charges if charge.outcome != OK]
    if failed:
        result.notes.append(f"{len(failed)} requests failed; see the outcome column")


def _count(result: ScenarioResult, table: str, operation: str) -> int:
    """Count the items that successful `operation` calls wrote to `table`: one per single-item
    request and one per statement of a batch."""
    name = result.table_prefix + table
    return sum(
        charge.statements or 1
        for _, charges in result.charged
        for charge in charges
        if charge.table == name and charge.operation == operation and charge.outcome == OK
    )


if __name__ == "__main__":
    sys.exit(main())
