"""The payments table: one item per gateway payment or checkout, keyed "<gateway>#<id>".

`applied` lists the money-moving transitions already applied (credit, refund, reversal,
reversal_cancelled), so each moves money at most once whatever order deliveries take.
Every whole-item write is conditional on `version`, so a writer that read an older item
retries instead of overwriting what another writer stored.
"""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, IntMapAttribute, JsonAttribute, MicrosAttribute, table_name


class AccountIndex(GlobalSecondaryIndex["Payment"]):
    """An account's payments and checkouts by creation time; items without an account are left out."""

    class Meta:
        index_name = "account-index"
        projection = AllProjection()

    account_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


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
    # The amount received that was credited, cumulative over later top-ups of the payment.
    received_micros = MicrosAttribute(default=0)
    # The gateway's checkout (PayPal order, Stripe Checkout Session) this payment belongs to;
    # its item, keyed on the checkout id, contains the account and the amount we asked for.
    checkout_id = UnicodeAttribute(null=True)
    # On a checkout item: the key of the payment item that took it over, which stands for it
    # in the customer's list of payments.
    replaced_by = UnicodeAttribute(null=True)
    applied = UnicodeSetAttribute(default=set)
    # Signed micro-units moved by each applied transition key.
    amounts = IntMapAttribute(default=dict)
    # Transitions that arrived before the one they depend on (a refund before the credit, a
    # cancelled reversal before the reversal): signed micro-units by transition key, applied
    # in the same transaction as the transition they wait for.
    deferred = IntMapAttribute(default=dict)
    # Credit transition keys whose "payment received" notice was claimed for sending.
    notified = UnicodeSetAttribute(default=set)
    flags = JsonAttribute(default=list)
    # The latest events that changed this item, oldest first, for the operator.
    events = JsonAttribute(default=list)
    version = VersionAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()

    account_index = AccountIndex()
