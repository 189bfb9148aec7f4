"""Support tickets and announcements: the customer routes, the size limits, staff replies
that e-mail the ticket's owner, and which announcements are shown when."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.notify.sender import outbox
from chalicelib.support.announcements import create_announcement, list_announcements, withdraw_announcement
from chalicelib.support.tickets import MAX_OPEN_TICKETS, add_staff_reply, list_tickets_by_status
from tests.customer_api import call, customer, item_count

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
STAFF_ID = "acct_staff0000000000"


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def open_ticket(client: Client, token: str, subject: str = "VM will not boot", message: str = "web1 hangs at GRUB.") -> dict:
    status, ticket = call(client, "POST", "/v1/tickets", {"subject": subject, "message": message}, token)
    assert status == 201, ticket
    return ticket


# Tickets.


def test_ticket_thread_from_open_to_close(client: Client) -> None:
    _, token = customer(client, "ann@example.com", 0, T0)

    ticket = open_ticket(client, token)
    assert ticket["status"] == "open"
    assert ticket["messages"] == [{"author": "customer", "message": "web1 hangs at GRUB.", "created_at": "2026-07-01T12:00:00Z"}]

    clock.set_time(T0 + timedelta(minutes=5))
    status, replied = call(client, "POST", f"/v1/tickets/{ticket['id']}/messages", {"message": "It is VM vm_1."}, token)
    assert status == 201
    assert [message["message"] for message in replied["messages"]] == ["web1 hangs at GRUB.", "It is VM vm_1."]
    assert replied["message_count"] == 2

    status, listed = call(client, "GET", "/v1/tickets", token=token)
    assert [(item["id"], item["status"]) for item in listed["tickets"]] == [(ticket["id"], "open")]

    status, closed = call(client, "POST", f"/v1/tickets/{ticket['id']}/close", token=token)
    assert status == 200
    assert closed["status"] == "closed"
    assert closed["closed_at"] == "2026-07-01T12:05:00Z"


def test_staff_reply_mails_owner_and_marks_answered(client: Client) -> None:
    _, token = customer(client, "owner@example.com", 0, T0)
    ticket = open_ticket(client, token)
    outbox.clear()

    add_staff_reply(ticket["id"], STAFF_ID, "Boot it from the rescue image, then run fsck.")

    (notice,) = outbox
    assert notice.to == "owner@example.com"
    assert notice.template == "ticket_reply"
    assert ticket["id"] in notice.subject
    assert "VM will not boot" in notice.subject
    assert "run fsck" in notice.body
    _, shown = call(client, "GET", f"/v1/tickets/{ticket['id']}", token=token)
    assert shown["status"] == "answered"
    assert shown["messages"][-1] == {
        "author": "staff",
        "message": "Boot it from the rescue image, then run fsck.",
        "created_at": "2026-07-01T12:00:00Z",
    }
    assert [item.ticket_id for item in list_tickets_by_status("answered")] == [ticket["id"]]
    assert list_tickets_by_status("open") == []


def test_closed_ticket_takes_no_customer_message(client: Client) -> None:
    _, token = customer(client, "closed@example.com", 0, T0)
    ticket = open_ticket(client, token)
    call(client, "POST", f"/v1/tickets/{ticket['id']}/close", token=token)
    before = item_count()

    status, error = call(client, "POST", f"/v1/tickets/{ticket['id']}/messages", {"message": "One more thing"}, token)

    assert status == 409
    assert "open a new ticket" in error["error"]["message"]
    assert item_count() == before


def test_staff_reply_reopens_closed_ticket_as_answered(client: Client) -> None:
    _, token = customer(client, "reopen@example.com", 0, T0)
    ticket = open_ticket(client, token)
    call(client, "POST", f"/v1/tickets/{ticket['id']}/close", token=token)

    add_staff_reply(ticket["id"], STAFF_ID, "We found the cause.")

    _, shown = call(client, "GET", f"/v1/tickets/{ticket['id']}", token=token)
    assert shown["status"] == "answered"
    assert shown["closed_at"] is None


def test_staff_reply_to_unknown_ticket_is_not_found() -> None:
    with pytest.raises(NotFound):
        add_staff_reply("tkt_000000000000", STAFF_ID, "Hello")
    with pytest.raises(NotFound):
        add_staff_reply("../etc", STAFF_ID, "Hello")


def test_ticket_size_limits(client: Client) -> None:
    _, token = customer(client, "limits@example.com", 0, T0)
    before = item_count()
    euro_limit = "€" * (16384 // 3)  # 16,383 bytes in UTF-8
    cases = [
        ({"subject": "s" * 257, "message": "hello"}, "subject"),
        ({"subject": "two\nlines", "message": "hello"}, "subject"),
        ({"subject": "   ", "message": "hello"}, "subject"),
        ({"subject": "Help", "message": "m" * 16385}, "message"),
        ({"subject": "Help", "message": euro_limit + "€"}, "message"),
        ({"subject": "Help", "message": " \n "}, "message"),
        ({"subject": "Help", "message": "bell\x07"}, "message"),
        ({"subject": "Help"}, "message"),
        ({"subject": "Help", "message": "hello", "priority": "urgent"}, "priority"),
    ]

    for body, field in cases:
        status, error = call(client, "POST", "/v1/tickets", body, token)

        assert status == 400, body
        assert error["error"]["field"] == field, body
    assert item_count() == before

    assert open_ticket(client, token, "s" * 256, "m" * 16384)["subject"] == "s" * 256
    assert open_ticket(client, token, "Euro", euro_limit[:-1] + "\n\tok")["message_count"] == 1


def test_message_bad_input_names_field_and_writes_nothing(client: Client) -> None:
    _, token = customer(client, "badmessage@example.com", 0, T0)
    ticket = open_ticket(client, token)
    before = item_count()

    for body in ({}, {"message": ""}, {"message": 7}, {"message": "x" * 16385}):
        status, error = call(client, "POST", f"/v1/tickets/{ticket['id']}/messages", body, token)

        assert status == 400, body
        assert error["error"]["field"] == "message", body
    assert item_count() == before


def test_open_ticket_limit(client: Client) -> None:
    _, token = customer(client, "many@example.com", 0, T0)
    first = open_ticket(client, token, "Ticket 0")
    for number in range(1, MAX_OPEN_TICKETS):
        open_ticket(client, token, f"Ticket {number}")

    status, error = call(client, "POST", "/v1/tickets", {"subject": "One too many", "message": "hi"}, token)
    assert status == 409
    assert error["error"]["code"] == "limit_reached"

    call(client, "POST", f"/v1/tickets/{first['id']}/close", token=token)
    assert call(client, "POST", "/v1/tickets", {"subject": "Now it fits", "message": "hi"}, token)[0] == 201


def test_other_customer_cannot_see_or_touch_ticket(client: Client) -> None:
    _, owner = customer(client, "tickets@example.com", 0, T0)
    ticket = open_ticket(client, owner)
    _, intruder = customer(client, "snoop@example.com", 0, T0)

    assert call(client, "GET", f"/v1/tickets/{ticket['id']}", token=intruder)[0] == 404
    assert call(client, "POST", f"/v1/tickets/{ticket['id']}/messages", {"message": "hi"}, intruder)[0] == 404
    assert call(client, "POST", f"/v1/tickets/{ticket['id']}/close", token=intruder)[0] == 404
    assert call(client, "GET", "/v1/tickets", token=intruder)[1] == {"tickets": []}
    _, shown = call(client, "GET", f"/v1/tickets/{ticket['id']}", token=owner)
    assert (shown["status"], shown["message_count"]) == ("open", 1)


def test_tickets_need_authentication(client: Client) -> None:
    assert call(client, "GET", "/v1/tickets")[0] == 401
    assert call(client, "POST", "/v1/tickets", {"subject": "Help", "message": "hi"})[0] == 401


# Announcements.


def test_only_active_announcements_are_shown_without_login(client: Client) -> None:
    clock.set_time(T0)
    shown = create_announcement("Network maintenance", "Expect 5 minutes of packet loss.", STAFF_ID, level="maintenance")
    create_announcement("Next week", "New region opens.", STAFF_ID, starts_at=T0 + timedelta(days=7))
    create_announcement("Over", "Old news.", STAFF_ID, starts_at=T0 - timedelta(days=2), ends_at=T0 - timedelta(days=1))
    withdrawn = create_announcement("Mistake", "Ignore this.", STAFF_ID)
    withdraw_announcement(withdrawn.announcement_id)

    status, listed = call(client, "GET", "/v1/announcements")

    assert status == 200
    assert listed["announcements"] == [
        {
            "id": shown.announcement_id,
            "title": "Network maintenance",
            "body": "Expect 5 minutes of packet loss.",
            "level": "maintenance",
            "starts_at": "2026-07-01T12:00:00Z",
            "ends_at": None,
        }
    ]
    assert len(list_announcements()) == 4

    clock.set_time(T0 + timedelta(days=8))
    assert [item["title"] for item in call(client, "GET", "/v1/announcements")[1]["announcements"]] == [
        "Next week",
        "Network maintenance",
    ]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"title": "", "body": "x"}, "title"),
        ({"title": "t" * 201, "body": "x"}, "title"),
        ({"title": "Title", "body": ""}, "body"),
        ({"title": "Title", "body": "x", "level": "panic"}, "level"),
        ({"title": "Title", "body": "x", "starts_at": T0, "ends_at": T0}, "ends_at"),
    ],
)
def test_announcement_bad_input_names_field(arguments: dict, field: str) -> None:
    clock.set_time(T0)
    title, body = arguments.pop("title"), arguments.pop("body")

    with pytest.raises(InvalidRequest) as raised:
        create_announcement(title, body, STAFF_ID, **arguments)

    assert raised.value.field == field
    assert list_announcements() == []
