"""DynamoDB tables, declared as PynamoDB models. `ALL_MODELS` lists every table."""

from chalicelib.models.accounts import Account
from chalicelib.models.apikeys import ApiKey
from chalicelib.models.audit import AuditEvent
from chalicelib.models.auth import AuthItem, Session
from chalicelib.models.catalog import CatalogItem
from chalicelib.models.demo import DemoMachine
from chalicelib.models.idempotency import IdempotencyRecord
from chalicelib.models.images import Image
from chalicelib.models.jobs import JobRecord
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.payments import Payment
from chalicelib.models.ratelimits import RateCounter
from chalicelib.models.sshkeys import SshKey
from chalicelib.models.support import Announcement, Ticket, TicketMessage
from chalicelib.models.vms import Vm

ALL_MODELS = (
    Account,
    ApiKey,
    Announcement,
    AuditEvent,
    AuthItem,
    CatalogItem,
    DemoMachine,
    IdempotencyRecord,
    Image,
    JobRecord,
    LedgerLine,
    Payment,
    RateCounter,
    Session,
    SshKey,
    Ticket,
    TicketMessage,
    Vm,
)

# Per-request bookkeeping (rate-limit counters, Idempotency-Key records), written even for a
# request that is rejected; "nothing written" checks on customer data leave these out.
REQUEST_BOOKKEEPING_MODELS = (IdempotencyRecord, RateCounter)

__all__ = ["ALL_MODELS", "REQUEST_BOOKKEEPING_MODELS", "Account", "Announcement", "ApiKey", "AuditEvent",
    "AuthItem", "CatalogItem", "DemoMachine", "IdempotencyRecord", "Image", "JobRecord", "LedgerLine",
    "Payment", "RateCounter", "Session", "SshKey", "Ticket", "TicketMessage", "Vm"]
