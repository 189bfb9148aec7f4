"""Support tickets: a customer opens one, both sides add messages, either side closes it.

A message and the ticket's new status and count are written in one transaction, so the
thread and the ticket never disagree. Customers reach only their own tickets, through
the account key; staff reach any ticket by id through `add_staff_reply` and friends.
A staff reply e-mails the ticket's owner.
"""

from __future__ import annotations

import re
import secrets

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.clock import iso, now
from chalicelib.errors import Conflict, InvalidRequest, LimitReached, NotFound
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.base import transact_write
from chalicelib.models.support import Ticket, TicketMessage
from chalicelib.notify.sender import send_notice

TICKET_ID_BYTES = 6
TICKET_ID_PATTERN = re.compile(r"^tkt_[0-9a-f]{12}$")
MAX_SUBJECT_LENGTH = 256
MAX_MESSAGE_BYTES = 16384
MAX_OPEN_TICKETS = 10
MAX_MESSAGES_PER_TICKET = 200
STATUSES = ("open", "answered", "closed")
# Characters a message may hold besides printable ones: line breaks and tabs.
_MESSAGE_WHITESPACE = frozenset("\n\r\t")


def validate_subject(subject: str) -> str:
    subject = subject.strip()
    if not subject or len(subject) > MAX_SUBJECT_LENGTH or not subject.isprintable():
        raise InvalidRequest(
            f"subject must be 1 to {MAX_SUBJECT_LENGTH} characters on one line", field="subject"
        )
    return subject


def validate_message(message: str) -> str:
    if not message.strip():
        raise InvalidRequest("message must not be empty", field="message")
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise InvalidRequest(f"message must be at most {MAX_MESSAGE_BYTES} bytes in UTF-8", field="message")
    if any(not character.isprintable() and character not in _MESSAGE_WHITESPACE for character in message):
        raise InvalidRequest("message must not contain control characters other than line breaks and tabs", field="message")
    return message.strip()


def open_ticket(account_id: str, subject: str, message: str) -> Ticket:
    """Open a ticket with its first message."""
    subject = validate_subject(subject)
    message = validate_message(message)
    open_count = sum(1 for ticket in Ticket.query(account_id, consistent_read=True) if ticket.status != "closed")
    if open_count >= MAX_OPEN_TICKETS:
        raise LimitReached(f"an account may have at most {MAX_OPEN_TICKETS} tickets open; close one first")

    created = iso(now())
    ticket = Ticket(
        account_id,
        "tkt_" + secrets.token_hex(TICKET_ID_BYTES),
        subject=subject,
        status="open",
        created_at=created,
        updated_at=created,
        message_count=1,
    )
    first = _new_message(ticket.ticket_id, 1, "customer", account_id, message)
    with transact_write() as transaction:
        transaction.save(ticket, condition=Ticket.ticket_id.does_not_exist())
        transaction.save(first, condition=TicketMessage.message_key.does_not_exist())
    logger.info("ticket_opened", extra={"account_id": account_id, "ticket_id": ticket.ticket_id})
    return ticket


def list_tickets(account_id: str) -> list[Ticket]:
    """Return the account's tickets, most recently active first."""
    tickets = Ticket.query(account_id, consistent_read=True)
    return sorted(tickets, key=lambda ticket: (ticket.updated_at, ticket.ticket_id), reverse=True)


def get_ticket(account_id: str, ticket_id: str) -> Ticket:
    if not TICKET_ID_PATTERN.match(ticket_id):
        raise NotFound(f"ticket {ticket_id[:64]!r} not found", field="ticket_id")
    try:
        return Ticket.get(account_id, ticket_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"ticket {ticket_id!r} not found", field="ticket_id") from None


def list_messages(ticket_id: str) -> list[TicketMessage]:
    """Return the ticket's thread, oldest first."""
    return list(TicketMessage.query(ticket_id, consistent_read=True))


def add_customer_message(ticket: Ticket, message: str) -> TicketMessage:
    """Add the owner's message; the ticket waits for staff again. A closed ticket takes none."""
    message = validate_message(message)
    if ticket.status == "closed":
        raise Conflict(f"ticket {ticket.ticket_id} is closed; open a new ticket instead", field="ticket_id")
    return _append(ticket, "customer", ticket.account_id, message, new_status="open", allow_closed=False)


def add_staff_reply(ticket_id: str, staff_account_id: str, message: str) -> TicketMessage:
    """Add a staff reply to any ticket, mark it answered and e-mail the ticket's owner.

    A reply to a closed ticket opens it again as answered.
    """
    message = validate_message(message)
    ticket = find_ticket(ticket_id)
    reply = _append(ticket, "staff", staff_account_id, message, new_status="answered", allow_closed=True)

    owner = Account.get(ticket.account_id, consistent_read=True)
    send_notice(
        owner.email,
        "ticket_reply",
        {"ticket_id": ticket.ticket_id, "subject": ticket.subject, "message": message},
    )
    logger.info("ticket_staff_reply", extra={"ticket_id": ticket.ticket_id, "staff_account_id": staff_account_id})
    return reply


def close_ticket(ticket: Ticket) -> Ticket:
    """Close a ticket; closing a closed ticket changes nothing."""
    if ticket.status == "closed":
        return ticket
    moment = iso(now())
    ticket.update(
        actions=[Ticket.status.set("closed"), Ticket.closed_at.set(moment), Ticket.updated_at.set(moment)]
    )
    logger.info("ticket_closed", extra={"account_id": ticket.account_id, "ticket_id": ticket.ticket_id})
    return ticket


def find_ticket(ticket_id: str) -> Ticket:
    """Find any account's ticket by id, for staff."""
    if not TICKET_ID_PATTERN.match(ticket_id):
        raise NotFound(f"ticket {ticket_id[:64]!r} not found", field="ticket_id")
    for entry in Ticket.ticket_id_index.query(ticket_id):
        return Ticket.get(entry.account_id, entry.ticket_id, consistent_read=True)
    raise NotFound(f"ticket {ticket_id!r} not found", field="ticket_id")


def list_tickets_by_status(status: str) -> list[Ticket]:
    """List every account's tickets with `status`, most recently active first, for staff."""
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", field="status")
    return list(Ticket.status_index.query(status, scan_index_forward=False))


def _append(ticket: Ticket, author: str, author_account_id: str, body: str, *, new_status: str, allow_closed: bool) -> TicketMessage:
    """Write a message and the ticket's new status and count in one transaction."""
    if int(ticket.message_count) >= MAX_MESSAGES_PER_TICKET:
        raise LimitReached(f"a ticket can have at most {MAX_MESSAGES_PER_TICKET} messages; open a new ticket to go on")

    entry = _new_message(ticket.ticket_id, int(ticket.message_count) + 1, author, author_account_id, body)
    condition = Ticket.message_count == ticket.message_count
    if not allow_closed:
        condition &= Ticket.status != "closed"
    actions: list[Action] = [
        Ticket.status.set(new_status),
        Ticket.updated_at.set(entry.created_at),
        Ticket.message_count.add(1),
        Ticket.closed_at.remove(),
    ]
    try:
        with transact_write() as transaction:
            transaction.update(ticket, actions=actions, condition=condition)
            transaction.save(entry, condition=TicketMessage.message_key.does_not_exist())
    except TransactWriteError:
        raise Conflict(f"ticket {ticket.ticket_id} changed at the same time; reload it and try again") from None
    ticket.refresh(consistent_read=True)
    return entry


def _new_message(ticket_id: str, number: int, author: str, author_account_id: str, body: str) -> TicketMessage:
    created = iso(now())
    return TicketMessage(
        ticket_id,
        f"{number:05d}",
        author=author,
        author_account_id=author_account_id,
        body=body,
        created_at=created,
    )


def ticket_json(ticket: Ticket) -> dict[str, object]:
    return {
        "id": ticket.ticket_id,
        "subject": ticket.subject,
        "status": ticket.status,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
        "message_count": int(ticket.message_count),
    }


def message_json(message: TicketMessage) -> dict[str, object]:
    """Render a message for its customer. Staff replies do not name the staff member."""
    return {"author": message.author, "message": message.body, "created_at": message.created_at}
