"""The rate-limits table: one fixed-window counter per (action, scope, key, window).

The window start is part of the item key, so a new window starts a new counter and an
old one only waits for TTL deletion through `expires_epoch`.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class RateCounter(Model):
    class Meta(BaseMeta):
        table_name = table_name("rate-limits")

    counter_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    expires_epoch = NumberAttribute(null=True)
