"""Paged scans for admin listings that have no index to query.

A page reads at most MAX_SCAN_PAGES DynamoDB pages of SCAN_PAGE_ITEMS items, so a listing
whose filter rarely matches still returns quickly. Its cursor continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from chalicelib.audit import decode_cursor, encode_cursor

ModelT = TypeVar("ModelT", bound=Model)

SCAN_PAGE_ITEMS = 200
MAX_SCAN_PAGES = 10


@dataclass(frozen=True)
class Page(Generic[ModelT]):
    items: list[ModelT]
    cursor: str | None


def scan_page(
    model: type[ModelT],
    key_names: frozenset[str],
    *,
    limit: int,
    cursor: str | None = None,
    filter_condition: Condition | None = None,
) -> Page[ModelT]:
    """Scan `model` from `cursor` until `limit` items matched or MAX_SCAN_PAGES were read.

    The last page read may add more than `limit` items; `cursor` is None at the table's end.
    """
    start = decode_cursor(cursor, {}, key_names)
    results = model.scan(filter_condition=filter_condition, page_size=SCAN_PAGE_ITEMS, last_evaluated_key=start)
    pages = results.page_iter
    items: list[ModelT] = []

    for _ in range(MAX_SCAN_PAGES):
        page: dict[str, Any] = next(pages)
        items += [model.from_raw_data(raw) for raw in page.get("Items", [])]
        if pages.last_evaluated_key is None or len(items) >= limit:
            break
    return Page(items, encode_cursor(pages.last_evaluated_key))
