"""Customer support routes: tickets and their messages, and the active announcements."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_body, route
from chalicelib.api.schema import Field, Schema
from chalicelib.models.support import Ticket
from chalicelib.support import tickets
from chalicelib.support.announcements import active_announcements, announcement_json

blueprint = Blueprint(__name__)

OPEN_TICKET = Schema(
    "OpenTicket",
    (
        Field("subject", max_length=tickets.MAX_SUBJECT_LENGTH, description="One line saying what the ticket is about"),
        Field("message", max_length=tickets.MAX_MESSAGE_BYTES, description=f"At most {tickets.MAX_MESSAGE_BYTES} bytes of UTF-8"),
    ),
)
ADD_MESSAGE = Schema(
    "AddTicketMessage",
    (Field("message", max_length=tickets.MAX_MESSAGE_BYTES, description=f"At most {tickets.MAX_MESSAGE_BYTES} bytes of UTF-8"),),
)


@route(blueprint, "/v1/tickets", ["POST"], body=OPEN_TICKET, status=201)
def open_ticket() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    ticket = tickets.open_ticket(account.account_id, body["subject"], body["message"])
    return json_response(_ticket_with_messages(ticket), 201)


@route(blueprint, "/v1/tickets", ["GET"])
def list_tickets() -> object:
    account = current_account(blueprint.current_request)
    return json_response({"tickets": [tickets.ticket_json(ticket) for ticket in tickets.list_tickets(account.account_id)]})


@route(blueprint, "/v1/tickets/{ticket_id}", ["GET"])
def get_ticket(ticket_id: str) -> object:
    account = current_account(blueprint.current_request)
    return json_response(_ticket_with_messages(tickets.get_ticket(account.account_id, ticket_id)))


@route(blueprint, "/v1/tickets/{ticket_id}/messages", ["POST"], body=ADD_MESSAGE, status=201)
def add_message(ticket_id: str) -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    ticket = tickets.get_ticket(account.account_id, ticket_id)
    tickets.add_customer_message(ticket, body["message"])
    return json_response(_ticket_with_messages(ticket), 201)


@route(blueprint, "/v1/tickets/{ticket_id}/close", ["POST"])
def close_ticket(ticket_id: str) -> object:
    account = current_account(blueprint.current_request)
    ticket = tickets.close_ticket(tickets.get_ticket(account.account_id, ticket_id))
    return json_response(tickets.ticket_json(ticket))


@route(blueprint, "/v1/announcements", ["GET"], public=True)
def list_announcements() -> object:
    """Active announcements; public, like the catalog, so status pages can show them."""
    return json_response({"announcements": [announcement_json(item) for item in active_announcements()]})


def _ticket_with_messages(ticket: Ticket) -> dict[str, object]:
    messages = [tickets.message_json(message) for message in tickets.list_messages(ticket.ticket_id)]
    return {**tickets.ticket_json(ticket), "messages": messages}
