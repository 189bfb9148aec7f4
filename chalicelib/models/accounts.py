"""The accounts table: one item per customer, holding the balance and the hourly
billing cursor. The balance changes only together with ledger lines (see billing.ledger),
so it always equals the sum of the account's ledger once pending batches are applied.
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, IntMapAttribute, MicrosAttribute, table_name


class Account(Model):
    class Meta(BaseMeta):
        table_name = table_name("accounts")

    account_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    created_at = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | disabled
    role = UnicodeAttribute(default="customer")  # customer | admin
    email_verified = BooleanAttribute(default=False)
    balance_micros = MicrosAttribute(default=0)
    vm_limit = NumberAttribute()
    billing_shard = UnicodeAttribute()
    # Hourly cursor: every VM-hour ending at or before this hour's end is charged.
    billed_through = UnicodeAttribute()
    # Last traffic counter reading per VM id, in bytes.
    meters = IntMapAttribute(default=dict)
    # Per "region|YYYY-MM": bytes used, GiB already charged, last notice percent, and the
    # GiB-seconds of allocation from VMs that no longer take part in billing.
    bandwidth_used = IntMapAttribute(default=dict)
    bandwidth_billed_gib = IntMapAttribute(default=dict)
    bandwidth_notified = IntMapAttribute(default=dict)
    closed_allocation = IntMapAttribute(default=dict)
    low_credit_notices = NumberAttribute(default=0)
    last_notice_at = UnicodeAttribute(null=True)
