"""The auth table: e-mail identities, sessions and other short-lived records.

Items are addressed by a typed partition key ("email#...", "session#<sha256>") and
expire through the `expires_epoch` TTL attribute where they are temporary.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, table_name


class AuthItem(Model):
    class Meta(BaseMeta):
        table_name = table_name("auth")

    pk = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute(null=True)
    expires_epoch = NumberAttribute(null=True)
    data = JsonAttribute(default=dict)
