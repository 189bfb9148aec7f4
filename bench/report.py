"""The billing bench's results: per-scenario figures, a readable table and `name=value` lines.

Figures per VM-hour count requests to Lobster's own tables. The demo backend keeps its VMs in
a DynamoDB table too, but on AWS a provider's HTTP API takes its place, so its reads are shown
on their own lines and only the wall time includes them. Request times are wall-clock spans in
which at least one request was in flight, so they stay below the run's time on any thread count.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.capacity import OK, Charge, RequestRecord

WRITE_UNIT_TARGETS = {5: 1.3, 1: 2.1}  # maximum write units per VM-hour, by VMs per account
WALL_TIME_RATIO_TARGET = 1.5
WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "BatchExecuteStatement INSERT",
        "BatchExecuteStatement UPDATE",
    }
)

Charged = list[tuple[RequestRecord, list[Charge]]]


@dataclass
class ScenarioResult:
    vm_count: int
    vms_per_account: int
    accounts: int
    vm_hours: int
    run_seconds: float
    floor_seconds: tuple[float, float]  # measured before and after the billing run
    charged: Charged
    floor_charged: Charged
    retries: int
    table_prefix: str
    demo_table: str
    stale_meters: int = 0
    load_averages: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    account_threads: int = 1  # threads of the run's account pool, and of the floor's writers
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        stale = f"_{self.stale_meters}_stale_meters" if self.stale_meters else ""
        return f"{self.vm_count}_vms_{self.vms_per_account}_per_account{stale}"

    @property
    def floor(self) -> float:
        return sum(self.floor_seconds) / len(self.floor_seconds)

    def lobster_charges(self) -> list[Charge]:
        return [charge for _, charges in self.charged for charge in charges if charge.table != self.demo_table]

    def requests(self, demo: bool) -> int:
        return sum(
            1 for _, charges in self.charged if any((charge.table == self.demo_table) == demo for charge in charges)
        )

    def write_units(self) -> float:
        return sum(charge.write_units + charge.index_write_units for charge in self.lobster_charges())

    def read_units(self) -> float:
        return sum(charge.read_units for charge in self.lobster_charges())

    def demo_seconds(self) -> float:
        """Return the seconds in which demo backend requests, and no others, were in flight."""
        return self.request_seconds() - self.lobster_request_seconds()

    def lobster_request_seconds(self) -> float:
        """Return the seconds in which at least one request to Lobster's tables was in flight."""
        return busy_seconds(
            record for record, charges in self.charged if not charges or charges[0].table != self.demo_table
        )

    def request_seconds(self) -> float:
        """Return the seconds in which at least one request was in flight."""
        return busy_seconds(record for record, _ in self.charged)

    def per_vm_hour(self, value: float) -> float:
        return value / self.vm_hours

    def figures(self) -> dict[str, float]:
        """Return this scenario's figures, keyed by name without the scenario suffix."""
        return {
            "write_units_per_vm_hour": self.per_vm_hour(self.write_units()),
            "read_units_per_vm_hour": self.per_vm_hour(self.read_units()),
            "requests_per_vm_hour": self.per_vm_hour(self.requests(demo=False)),
            "demo_backend_requests_per_vm_hour": self.per_vm_hour(self.requests(demo=True)),
            "dynamodb_local_write_units_per_vm_hour": self.per_vm_hour(self.reported_write_units()),
            "wall_time_ratio": self.run_seconds / self.floor,
            "wall_time_ratio_without_demo_backend": (self.run_seconds - self.demo_seconds()) / self.floor,
        }

    def reported_write_units(self) -> float:
        """Write units DynamoDB Local reported in its ConsumedCapacity (successful writes only)."""
        return sum(
            charge.reported_units or 0.0
            for charge in self.lobster_charges()
            if charge.operation in WRITE_OPERATIONS and charge.outcome == OK
        )


def busy_seconds(records: Iterable[RequestRecord]) -> float:
    """Return the length of the union of the records' time spans, so overlapping requests on
    several threads count once."""
    total = 0.0
    span_start = span_end = None
    for record in sorted(records, key=lambda record: record.started):
        end = record.started + record.seconds
        if span_end is None or record.started > span_end:
            if span_start is not None and span_end is not None:
                total += span_end - span_start
            span_start, span_end = record.started, end
            continue
        span_end = max(span_end, end)
    if span_start is not None and span_end is not None:
        total += span_end - span_start
    return total


@dataclass
class _Row:
    requests: int = 0
    write_units: float = 0.0
    read_units: float = 0.0
    item_bytes: int = 0
    seconds: float = 0.0
    reported: float = 0.0
    estimated: int = 0


def format_scenario(result: ScenarioResult) -> str:
    """Render one scenario: requests grouped by table, operation and outcome, then the totals."""
    stale = f", {result.stale_meters} stale meter readings per account" if result.stale_meters else ""
    lines = [
        f"== {result.vm_count} VMs, {result.vms_per_account} per account ({result.accounts} accounts, "
        f"{result.vm_hours} VM-hours billed{stale})",
        f"{'table':<16} {'operation':<28} {'outcome':<17} {'requests':>8} {'/VM-h':>6} {'WCU':>8} {'RCU':>8} "
        f"{'bytes/req':>9} {'ms/req':>7} {'total s':>8} {'reported':>9}",
    ]
    for (table, operation, outcome), row in sorted(_rows(result.charged, result.table_prefix).items()):
        lines.append(
            f"{table:<16} {operation:<28} {outcome:<17} {row.requests:>8} {row.requests / result.vm_hours:>6.3f} "
            f"{row.write_units:>8.1f} {row.read_units:>8.1f} {row.item_bytes / row.requests:>9.0f} "
            f"{row.seconds / row.requests * 1000:>7.2f} {row.seconds:>8.2f} {row.reported:>9.1f}"
            + (f"  ({row.estimated} estimated)" if row.estimated else "")
        )
    lines.extend(_totals(result))
    return "\n".join(lines)


def _rows(charged: Charged, prefix: str) -> dict[tuple[str, str, str], _Row]:
    rows: dict[tuple[str, str, str], _Row] = defaultdict(_Row)
    for record, charges in charged:
        for charge in charges:
            row = rows[(charge.table.removeprefix(prefix), charge.operation, charge.outcome)]
            row.requests += 1
            row.write_units += charge.write_units + charge.index_write_units
            row.read_units += charge.read_units
            row.item_bytes += charge.item_bytes
            row.seconds += record.seconds / len(charges)
            row.reported += charge.reported_units or 0.0
            row.estimated += int(charge.estimated)
    return rows


def _totals(result: ScenarioResult) -> list[str]:
    figures = result.figures()
    target = WRITE_UNIT_TARGETS.get(result.vms_per_account)
    floor_before, floor_after = result.floor_seconds
    python_seconds = result.run_seconds - result.request_seconds()
    lines = [
        f"write units per VM-hour   {figures['write_units_per_vm_hour']:.3f}"
        + _verdict(figures["write_units_per_vm_hour"], target),
        f"  (DynamoDB Local's own ConsumedCapacity for the successful writes: "
        f"{figures['dynamodb_local_write_units_per_vm_hour']:.3f})",
        f"read units per VM-hour    {figures['read_units_per_vm_hour']:.3f}",
        f"requests per VM-hour      {figures['requests_per_vm_hour']:.3f} to Lobster's tables, "
        f"{figures['demo_backend_requests_per_vm_hour']:.3f} to the demo backend's table",
        f"billing run               {result.run_seconds:.2f} s on {_threads(result.account_threads)}: "
        f"{result.lobster_request_seconds():.2f} s with a request to Lobster's tables in flight, "
        f"{result.demo_seconds():.2f} s with only demo backend requests, {python_seconds:.2f} s with none",
        f"floor                     {result.floor:.2f} s (before {floor_before:.2f} s, after {floor_after:.2f} s): "
        f"{result.vm_hours} conditional PutItems on {_threads(result.account_threads)}, "
        f"{_floor_bytes(result):.0f} bytes each on average",
        f"wall-time ratio           {figures['wall_time_ratio']:.2f}"
        + _verdict(figures["wall_time_ratio"], WALL_TIME_RATIO_TARGET)
        + f"; {figures['wall_time_ratio_without_demo_backend']:.2f} without the demo backend's requests",
    ]
    lines.append(
        f"load average              {result.load_averages[0]:.2f} before the floor, {result.load_averages[1]:.2f} after "
        f"(1 minute, {os.cpu_count()} cores)"
    )
    if result.retries:
        lines.append(f"retries                   {result.retries} HTTP attempts were retries")
    lines.extend(result.notes)
    return lines


def _threads(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


def _floor_bytes(result: ScenarioResult) -> float:
    sizes = [charge.item_bytes for _, charges in result.floor_charged for charge in charges]
    return sum(sizes) / len(sizes) if sizes else 0.0


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f" (target at most {target}: {'met' if value <= target else 'MISSED'})"


def figure_lines(results: list[ScenarioResult]) -> list[str]:
    """Format one `name=value` line per figure and scenario, in a stable order, after the
    thread count that the runs and floors shared."""
    lines = [f"account_threads={results[0].account_threads}"] if results else []
    for result in results:
        for name, value in result.figures().items():
            lines.append(f"{name}_{result.name}={value:.3f}")
    return lines
