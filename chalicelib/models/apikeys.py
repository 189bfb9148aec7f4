"""The API keys table: one item per key, holding the SHA-256 of its secret, never the secret.

A key may be limited to action names and to client address ranges; both lists are empty
for a key without that limit. Keys are listed per account through `account_index`.
"""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class ApiKeyAccountIndex(GlobalSecondaryIndex["ApiKey"]):
    class Meta:
        index_name = "account-index"
        projection = AllProjection()

    account_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ApiKey(Model):
    class Meta(BaseMeta):
        table_name = table_name("api-keys")

    key_id = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute()
    label = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    actions = ListAttribute(of=UnicodeAttribute, default=list)
    allowed_cidrs = ListAttribute(of=UnicodeAttribute, default=list)
    created_at = UnicodeAttribute()
    last_used_at = UnicodeAttribute(null=True)
    last_used_ip = UnicodeAttribute(null=True)

    account_index = ApiKeyAccountIndex()
