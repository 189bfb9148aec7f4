"""Traffic counter arithmetic. Pure functions, no IO.

A backend reports a cumulative counter in bytes. The delta since the last stored reading
is what the VM used; a reading lower than the last one means the provider reset the
counter, and then the new reading itself is the delta, never a negative or wrapped value.
"""

from __future__ import annotations


def traffic_delta(previous: int | None, reading: int) -> int:
    if reading < 0:
        raise ValueError(f"traffic counter reading {reading} is negative")
    if previous is None or reading < previous:
        return reading
    return reading - previous
