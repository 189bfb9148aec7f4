"""DynamoDB item sizes and capacity units, computed by AWS's published rules. Pure functions, no IO.

Sources: "DynamoDB item sizes and formats"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
and "DynamoDB read and write operations" (read-write-operations.html in the same guide).
Items are in the wire format of the DynamoDB JSON API: {"name": {"S": "text"}, ...}.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024  # one write unit per started 1 KB of item
READ_UNIT_BYTES = 4096  # one strongly consistent read unit per started 4 KB
EVENTUAL_READ_FACTOR = 0.5  # an eventually consistent read costs half a strongly consistent one
TRANSACTION_FACTOR = 2  # a transaction reads or writes every item twice: prepare and commit
LIST_OR_MAP_OVERHEAD = 3  # bytes per List or Map, whatever it contains
ELEMENT_OVERHEAD = 1  # bytes per element of a List or Map
NULL_OR_BOOLEAN_BYTES = 1

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]


def item_size(item: Item) -> int:
    """Return the size in bytes of an item: the sum of its attributes' names and values."""
    return sum(attribute_size(name, value) for name, value in item.items())


def attribute_size(name: str, value: AttributeValue) -> int:
    return len(name.encode()) + value_size(value)


def value_size(value: AttributeValue) -> int:
    """Return the size in bytes of one attribute value, without its name."""
    if len(value) != 1:
        raise ValueError(f"an attribute value has exactly one type key, got {sorted(value)}")
    kind, content = next(iter(value.items()))

    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return binary_size(content)
    if kind in ("BOOL", "NULL"):
        return NULL_OR_BOOLEAN_BYTES
    if kind == "L":
        return LIST_OR_MAP_OVERHEAD + sum(ELEMENT_OVERHEAD + value_size(element) for element in content)
    if kind == "M":
        return LIST_OR_MAP_OVERHEAD + sum(
            ELEMENT_OVERHEAD + attribute_size(key, element) for key, element in content.items()
        )
    # NOTE: the size page does not cover sets; each element is counted like a scalar of its
    # type, with no overhead for the set itself.
    if kind == "SS":
        return sum(len(element.encode()) for element in content)
    if kind == "NS":
        return sum(number_size(element) for element in content)
    if kind == "BS":
        return sum(binary_size(element) for element in content)
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def number_size(text: str) -> int:
    """Return the approximate size of a Number: 1 byte per two significant digits, plus 1.

    Leading and trailing zeros are not significant, so "7500" has two significant digits.
    """
    digits = Decimal(text).as_tuple().digits
    significant = "".join(str(digit) for digit in digits).strip("0")
    return math.ceil(len(significant) / 2) + 1


def binary_size(content: str | bytes) -> int:
    """Return the raw length of a Binary value; the wire format carries it as base64 text."""
    if isinstance(content, str):
        return len(base64.b64decode(content))
    return len(content)


def write_units(size: int) -> int:
    """Return the write units of one item write: one per started 1 KB, at least one."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """Return the read units of reading `size` bytes: one per started 4 KB, at least one.

    A read of a missing item (size 0) still costs one unit, halved when eventually consistent.
    """
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units * EVENTUAL_READ_FACTOR


def query_read_units(sizes: Iterable[int], consistent: bool) -> float:
    """Return the read units of one Query or Scan page: its items' total size, rounded up once.

    NOTE: an empty page is charged one unit like a read of a missing item. The guide does not
    state this case, and DynamoDB Local reports 0 for it.
    """
    return read_units(sum(sizes), consistent)


def batch_get_read_units(sizes: Iterable[int], consistent: bool) -> float:
    """Return the read units of BatchGetItem: every item is rounded up to 4 KB on its own."""
    return sum(read_units(size, consistent) for size in sizes)


def batch_write_units(sizes: Iterable[int]) -> int:
    """Return the write units of BatchWriteItem: every item is rounded up to 1 KB on its own."""
    return sum(write_units(size) for size in sizes)
