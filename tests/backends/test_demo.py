"""The demo backend under the shared backend contract, on DynamoDB Local.

Its traffic counter grows with the clock at a VM-specific rate, so the harness sets a
reading by resetting the counter when it must go down and moving the frozen clock forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import clock
from chalicelib.backends.demo import BYTES_PER_SECOND_SPREAD, MIN_BYTES_PER_SECOND, DemoBackend
from tests.backends.contract import BackendContract, Harness

# One second of the fastest simulated traffic: readings land within this of the target.
TRAFFIC_TOLERANCE = MIN_BYTES_PER_SECOND + BYTES_PER_SECOND_SPREAD


@pytest.fixture
def harness(db: None) -> Iterator[Harness]:
    clock.set_time(datetime(2026, 6, 1, 12, tzinfo=UTC))
    backend = DemoBackend("demo", {}, {})

    def set_traffic(backend_id: str, total_bytes: int) -> None:
        if backend.read_traffic(backend_id) > total_bytes:
            backend.reset_traffic_counter(backend_id)
        rate = DemoBackend._rate(backend_id)
        missing = total_bytes - backend.read_traffic(backend_id)
        clock.advance(timedelta(seconds=max(0, missing) // rate))

    yield Harness(
        backend=backend,
        fake=None,
        plan_backend_id="demo-1",
        image_backend_id="debian-12-x64",
        make_active=lambda backend_id: None,
        set_traffic=set_traffic,
        resize_plan_backend_id="demo-2",
        traffic_tolerance=TRAFFIC_TOLERANCE,
    )
    clock.set_time(None)


class TestDemo(BackendContract):
    pass
