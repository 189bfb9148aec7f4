"""The auth tables: e-mail identities with their password hash, single-use e-mail tokens,
and bearer sessions.

Secrets are never stored: tokens and sessions are kept as the SHA-256 of the random value
the customer holds. Temporary items expire through the `expires_epoch` TTL attribute, and
code checks `expires_at` too, because TTL deletion can lag by days.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, table_name


class AuthItem(Model):
    """An item addressed by a typed key: "email#<address>" (the identity and its password
    hash), "verify#<sha256>" (an e-mail verification token) or "reset#<sha256>" (a password
    reset token)."""

    class Meta(BaseMeta):
        table_name = table_name("auth")

    pk = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute(null=True)
    expires_epoch = NumberAttribute(null=True)
    # On an identity: the SHA-256 of the newest password reset token, so only that link works.
    reset_hash = UnicodeAttribute(null=True)
    data = JsonAttribute(default=dict)


class Session(Model):
    """A bearer session, stored under its account so that all of an account's sessions
    can be read with one strongly consistent query and ended together."""

    class Meta(BaseMeta):
        table_name = table_name("sessions")

    account_id = UnicodeAttribute(hash_key=True)
    token_hash = UnicodeAttribute(range_key=True)
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    expires_epoch = NumberAttribute()
