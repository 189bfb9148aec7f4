"""The audit log: who did what to which target, from where, for every admin call and
every money movement.

Events are never updated. An event with a deterministic id is stored at most once, so a
retried request or a redelivered payment cannot add a second record. Hourly charges are
not audited one by one: the ledger is their record.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.clock import iso, now
from chalicelib.errors import InvalidRequest
from chalicelib.log import logger
from chalicelib.models.audit import AuditEvent
from chalicelib.models.base import transact_write

# The actor of events that no person started: scheduled jobs, gateway callbacks, tools.
SYSTEM_ACTOR = "system"
EVENT_ID_BYTES = 12
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# Read events (an admin viewing or listing) are access records, kept for about 13 months;
# actions and money movements never expire.
READ_EVENT_RETENTION = timedelta(days=400)
MAX_DETAILS_BYTES = 4096
MAX_CURSOR_LENGTH = 2048


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    cursor: str | None


def new_event(
    actor_account_id: str,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    *,
    event_id: str | None = None,
    read_only: bool = False,
) -> AuditEvent:
    """Build an event; `event_id` makes it unique per request, otherwise a random id is used."""
    moment = now()
    event_id = event_id or "evt_" + secrets.token_hex(EVENT_ID_BYTES)
    details = details or {}
    if len(json.dumps(details)) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details of {action} are larger than {MAX_DETAILS_BYTES} bytes")

    return AuditEvent(
        event_id,
        day=moment.strftime("%Y-%m-%d"),
        event_sort=f"{iso(moment)}#{event_id}",
        created_at=iso(moment),
        actor_account_id=actor_account_id,
        action=action,
        target=target,
        details=details,
        ip=ip,
        expires_epoch=int((moment + READ_EVENT_RETENTION).timestamp()) if read_only else None,
    )


def record(
    actor_account_id: str,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    *,
    event_id: str | None = None,
    read_only: bool = False,
) -> bool:
    """Store one event; return False when an event with this id was stored before."""
    return save_event(new_event(actor_account_id, action, target, details, ip, event_id=event_id, read_only=read_only))


def save_event(event: AuditEvent) -> bool:
    """Store a built event; return False when an event with its id was stored before."""
    try:
        event.save(condition=AuditEvent.event_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        logger.info("audit_event_repeated", extra={"event_id": event.event_id, "action": event.action})
        return False

    logger.info("audit_event", extra={"event_id": event.event_id, "action": event.action, "target": event.target, "actor": event.actor_account_id})
    return True


def add_to_transaction(transaction: TransactWrite, event: AuditEvent) -> None:
    """Write `event` as part of `transaction`; the transaction fails if the id exists."""
    transaction.save(event, condition=AuditEvent.event_id.does_not_exist())


def write_with_event(event: AuditEvent, add_writes: Callable[[TransactWrite], None]) -> bool:
    """Run `add_writes` and store `event` in one transaction.

    Returns False, having written nothing, when the event was stored before: the request
    that carried this event id already made the change. Any other failed condition
    raises TransactWriteError for the caller to translate.
    """
    try:
        with transact_write() as transaction:
            add_writes(transaction)
            add_to_transaction(transaction, event)
    except TransactWriteError:
        if get_event(event.event_id) is None:
            raise
        logger.info("audit_event_repeated", extra={"event_id": event.event_id, "action": event.action})
        return False

    logger.info("audit_event", extra={"event_id": event.event_id, "action": event.action, "target": event.target, "actor": event.actor_account_id})
    return True


def add_payment_event(transaction: TransactWrite, payment_key: str, transition: str, account_id: str, amount_micros: int) -> None:
    """Record a payment transition that moves money, in the transaction that moves it.

    The id is the payment and transition, the same key that guards the money movement,
    so a redelivered callback never adds a second record.
    """
    event = new_event(
        SYSTEM_ACTOR,
        "payment.credited" if amount_micros > 0 else "payment.debited",
        f"account:{account_id}",
        {"payment": payment_key, "transition": transition, "amount_micros": amount_micros},
        event_id=f"payment#{payment_key}#{transition}",
    )
    add_to_transaction(transaction, event)


def add_payment_events(transaction: TransactWrite, payment_key: str, account_id: str, amounts: dict[str, int]) -> None:
    """Record several transitions of one payment, by transition key, in one transaction."""
    for transition, amount_micros in sorted(amounts.items()):
        add_payment_event(transaction, payment_key, transition, account_id, amount_micros)


def get_event(event_id: str) -> AuditEvent | None:
    try:
        return AuditEvent.get(event_id, consistent_read=True)
    except DoesNotExist:
        return None


def list_day(day: datetime, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> AuditPage:
    """Return one UTC day's events, newest first."""
    day_key = day.strftime("%Y-%m-%d")
    results = AuditEvent.day_index.query(
        day_key,
        scan_index_forward=False,
        limit=_page_size(limit),
        last_evaluated_key=decode_cursor(cursor, {"day": day_key}, INDEX_KEY_NAMES),
    )
    events = list(results)
    return AuditPage(events, encode_cursor(results.last_evaluated_key))


def list_target(target: str, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> AuditPage:
    """Return the events about one target ("account:acct_…", "vm:vm_…"), newest first."""
    results = AuditEvent.target_index.query(
        target,
        scan_index_forward=False,
        limit=_page_size(limit),
        last_evaluated_key=decode_cursor(cursor, {"target": target}, INDEX_KEY_NAMES),
    )
    events = list(results)
    return AuditPage(events, encode_cursor(results.last_evaluated_key))


# A page of an index query ends at a key holding the table key and the index keys.
INDEX_KEY_NAMES = frozenset({"event_id", "event_sort"})


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    return limit


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """Turn DynamoDB's LastEvaluatedKey into opaque text for the next page's `cursor`."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":"), sort_keys=True).encode()).decode()


def decode_cursor(cursor: str | None, fixed: dict[str, str], other_names: frozenset[str]) -> dict[str, Any] | None:
    """Parse a `cursor` from a previous page of the same listing.

    `fixed` contains the key attributes the listing queries for, which the cursor must repeat,
    and `other_names` the rest of its key attributes. Anything else raises InvalidRequest
    naming `cursor`, so a forged or stale cursor never reaches DynamoDB.
    """
    if not cursor:
        return None
    invalid = InvalidRequest("cursor is not a value returned by a previous page of this listing", field="cursor")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None

    if not isinstance(key, dict) or set(key) != set(fixed) | other_names:
        raise invalid
    if not all(_is_key_attribute(value) for value in key.values()):
        raise invalid
    if any(key[name] != {"S": value} for name, value in fixed.items()):
        raise invalid
    return key


def _is_key_attribute(value: Any) -> bool:
    """Return whether `value` is a key attribute in DynamoDB's JSON form, {"S": "…"} or {"N": "…"}."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    kind, text = next(iter(value.items()))
    return kind in ("S", "N") and isinstance(text, str)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "time": event.created_at,
        "actor": event.actor_account_id,
        "action": event.action,
        "target": event.target,
        "details": event.details,
        "ip": event.ip,
    }
