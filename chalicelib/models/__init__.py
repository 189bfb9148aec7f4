"""DynamoDB tables, declared as PynamoDB models. `ALL_MODELS` lists every table."""

from chalicelib.models.accounts import Account
from chalicelib.models.auth import AuthItem
from chalicelib.models.catalog import CatalogItem
from chalicelib.models.demo import DemoMachine
from chalicelib.models.images import Image
from chalicelib.models.jobs import JobRecord
from chalicelib.models.ledger import LedgerLine
from chalicelib.models.payments import Payment
from chalicelib.models.vms import Vm

ALL_MODELS = (Account, AuthItem, CatalogItem, DemoMachine, Image, JobRecord, LedgerLine, Payment, Vm)

__all__ = ["ALL_MODELS", "Account", "AuthItem", "CatalogItem", "DemoMachine", "Image",
           "JobRecord", "LedgerLine", "Payment", "Vm"]
