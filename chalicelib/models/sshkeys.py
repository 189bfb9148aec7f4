"""The SSH keys table: public keys a customer stores to install on new or reimaged VMs.

Keys are addressed by account, so one customer's keys are one query and a key id from
another account is never found.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class SshKey(Model):
    class Meta(BaseMeta):
        table_name = table_name("ssh-keys")

    account_id = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    # One line in authorized_keys form: "<type> <base64 blob> [comment]".
    public_key = UnicodeAttribute()
    key_type = UnicodeAttribute()
    bits = NumberAttribute()
    # OpenSSH's SHA256 fingerprint of the key blob, as `ssh-keygen -l` prints it.
    fingerprint = UnicodeAttribute()
    created_at = UnicodeAttribute()
