"""The idempotency table, written by Powertools' DynamoDB persistence layer.

The attribute names are that layer's defaults; `expiration` is the TTL attribute, in epoch
seconds. This model exists so that table creation, the stack template and tests know the table.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class IdempotencyRecord(Model):
    class Meta(BaseMeta):
        table_name = table_name("idempotency")

    id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    expiration = NumberAttribute()
    in_progress_expiration = NumberAttribute(null=True)
    data = UnicodeAttribute(null=True)
    validation = UnicodeAttribute(null=True)
