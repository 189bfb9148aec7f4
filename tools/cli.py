"""Command-line entry points for operators and developers.

    python -m tools.cli create-tables
    python -m tools.cli seed
    python -m tools.cli bill [--hour YYYY-MM-DDTHH]
    python -m tools.cli reconcile

Each talks to the DynamoDB endpoint in LOBSTER_DYNAMODB_ENDPOINT (unset: AWS).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from chalicelib import clock
from chalicelib.config import settings

BILL_EVENT_DELAY = timedelta(hours=1, minutes=5)


def bill(hour_text: str | None) -> int:
    """Run the deployed hourly handler as its schedule would for `hour_text`.

    In the local stage the clock is set to that scheduled time, so an hour that has not
    ended yet can be billed to see charges; elsewhere only ended hours are accepted.
    """
    import app
    from chalicelib.billing.jobs import scheduled_event
    from chalicelib.billing.planner import hour_to_bill

    hour = clock.parse_hour_key(hour_text) if hour_text else hour_to_bill(clock.now())
    fire_at = hour + BILL_EVENT_DELAY
    if fire_at > clock.now():
        if not settings().is_local:
            print(f"hour {clock.hour_key(hour)} has not ended yet; bill it after {clock.iso(fire_at)}", file=sys.stderr)
            return 2
        clock.set_time(fire_at)

    result = app.hourly_billing(scheduled_event(fire_at, "hourly_billing"), None)
    print(f"billed hour {clock.hour_key(hour)}: {result['shards']} shards")
    return 0


def reconcile() -> int:
    """Check that every account's balance equals the sum of its ledger; exit 1 if not."""
    from chalicelib.billing.ledger import applied_sum
    from chalicelib.models.accounts import Account

    checked = mismatched = 0
    for account in Account.scan(consistent_read=True):
        applied, pending = applied_sum(account)
        checked += 1
        if applied != account.balance_micros:
            mismatched += 1
            print(f"MISMATCH {account.account_id}: balance {account.balance_micros}, ledger {applied}, pending hourly {pending}")
    print(f"reconciled {checked} accounts: {mismatched} mismatched")
    return 1 if mismatched else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lobster", description="Lobster operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create-tables", help="create missing DynamoDB tables")
    commands.add_parser("seed", help="seed the demo region, plans and images (local stage)")
    bill_parser = commands.add_parser("bill", help="run the hourly billing for one hour")
    bill_parser.add_argument("--hour", help="UTC hour to bill, YYYY-MM-DDTHH; default: the last hour that ended")
    commands.add_parser("reconcile", help="check every balance against its ledger")
    args = parser.parse_args(argv)

    if args.command == "create-tables":
        from tools.tables import create_tables

        print("created:", ", ".join(create_tables()) or "nothing (all tables exist)")
        return 0
    if args.command == "seed":
        from tools.seed import seed_demo

        seed_demo()
        print("seeded the demo catalog")
        return 0
    if args.command == "bill":
        return bill(args.hour)
    return reconcile()


if __name__ == "__main__":
    sys.exit(main())
