"""The support tables: tickets, their messages, and announcements.

Tickets are keyed by account, so a customer's tickets are one query. Staff find a ticket
by id through `ticket-id-index` and list tickets by status through `status-index`.
Messages are keyed by ticket and numbered in order. Announcements share one partition.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class TicketIdIndex(GlobalSecondaryIndex["Ticket"]):
    class Meta:
        index_name = "ticket-id-index"
        projection = AllProjection()

    ticket_id = UnicodeAttribute(hash_key=True)


class TicketStatusIndex(GlobalSecondaryIndex["Ticket"]):
    class Meta:
        index_name = "status-index"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class Ticket(Model):
    class Meta(BaseMeta):
        table_name = table_name("tickets")

    account_id = UnicodeAttribute(hash_key=True)
    ticket_id = UnicodeAttribute(range_key=True)
    subject = UnicodeAttribute()
    status = UnicodeAttribute()  # open | answered | closed
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    message_count = NumberAttribute(default=0)
    closed_at = UnicodeAttribute(null=True)

    ticket_id_index = TicketIdIndex()
    status_index = TicketStatusIndex()


class TicketMessage(Model):
    class Meta(BaseMeta):
        table_name = table_name("ticket-messages")

    ticket_id = UnicodeAttribute(hash_key=True)
    # The message's number in the thread, zero-padded ("00001"), so a query returns the
    # thread in order and a message number is written once.
    message_key = UnicodeAttribute(range_key=True)
    author = UnicodeAttribute()  # customer | staff
    author_account_id = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()


ANNOUNCEMENT_PARTITION = "announcements"


class Announcement(Model):
    class Meta(BaseMeta):
        table_name = table_name("announcements")

    partition = UnicodeAttribute(hash_key=True, default=ANNOUNCEMENT_PARTITION)
    announcement_id = UnicodeAttribute(range_key=True)
    title = UnicodeAttribute()
    body = UnicodeAttribute()
    level = UnicodeAttribute(default="info")  # info | maintenance | incident
    starts_at = UnicodeAttribute()
    ends_at = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    withdrawn_at = UnicodeAttribute(null=True)
