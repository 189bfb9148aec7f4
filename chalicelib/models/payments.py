"""The payments table: one item per gateway payment, keyed "<gateway>#<payment id>".

`applied` lists the money-moving transitions already applied (credit, refund, reversal,
reversal_cancelled), so each moves money at most once whatever order deliveries take.
"""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, MicrosAttribute, table_name


class Payment(Model):
    class Meta(BaseMeta):
        table_name = table_name("payments")

    payment_key = UnicodeAttribute(hash_key=True)
    gateway = UnicodeAttribute()
    gateway_payment_id = UnicodeAttribute()
    account_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    currency = UnicodeAttribute()
    requested_micros = MicrosAttribute(default=0)
    received_micros = MicrosAttribute(default=0)
    applied = UnicodeSetAttribute(default=set)
    flags = JsonAttribute(default=list)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
