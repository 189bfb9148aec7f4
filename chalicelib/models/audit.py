"""The audit table: one item per admin action or money movement, never updated.

The key is the event id, so an event with a deterministic id (an adjustment id, a
payment transition) can be written at most once: a retry hits `attribute_not_exists`.
Listing by UTC day or by target is a query on `day-index` or `target-index`.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, table_name


class AuditDayIndex(GlobalSecondaryIndex["AuditEvent"]):
    class Meta:
        index_name = "day-index"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    event_sort = UnicodeAttribute(range_key=True)


class AuditTargetIndex(GlobalSecondaryIndex["AuditEvent"]):
    class Meta:
        index_name = "target-index"
        projection = AllProjection()

    target = UnicodeAttribute(hash_key=True)
    event_sort = UnicodeAttribute(range_key=True)


class AuditEvent(Model):
    class Meta(BaseMeta):
        table_name = table_name("audit")

    event_id = UnicodeAttribute(hash_key=True)
    # "YYYY-MM-DD" (UTC) of `created_at`.
    day = UnicodeAttribute()
    # "<created_at>#<event_id>": orders events by time inside a day or a target.
    event_sort = UnicodeAttribute()
    created_at = UnicodeAttribute()
    # The account that acted: an admin, the customer, or "system" for jobs and gateways.
    actor_account_id = UnicodeAttribute()
    action = UnicodeAttribute()
    # What the action was on, "<kind>:<id>", for example "account:acct_1f2e" or "plan:s1".
    target = UnicodeAttribute()
    details = JsonAttribute(default=dict)
    ip = UnicodeAttribute(null=True)
    # Only read events (views and listings) expire; actions and money movements are kept.
    expires_epoch = NumberAttribute(null=True)

    day_index = AuditDayIndex()
    target_index = AuditTargetIndex()
