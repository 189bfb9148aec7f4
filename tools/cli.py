"""Command-line entry points for operators and developers.

    python -m tools.cli create-tables
    python -m tools.cli seed
    python -m tools.cli bill [--hour YYYY-MM-DDTHH]
    python -m tools.cli reconcile
    python -m tools.cli create-admin --email ADDRESS   (password from stdin or a prompt)
    python -m tools.cli region-add REGION --name NAME --backend TYPE [--settings JSON] [--secret-ref REF]
    python -m tools.cli region-enable REGION | region-disable REGION
    python -m tools.cli region-import-plans REGION | region-import-images REGION

Each talks to the DynamoDB endpoint in LOBSTER_DYNAMODB_ENDPOINT (unset: AWS).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from chalicelib import clock
from chalicelib.config import settings

BILL_EVENT_DELAY = timedelta(hours=1, minutes=5)


def bill(hour_text: str | None) -> int:
    """Run the deployed hourly handler as its schedule would for `hour_text`.

    In the local stage the clock is set to that scheduled time, so an hour that has not
    ended yet can be billed to see charges. Other stages accept only ended hours.
    """
    import app
    from chalicelib.billing.jobs import scheduled_event
    from chalicelib.billing.planner import hour_to_bill

    try:
        hour = clock.parse_hour_key(hour_text) if hour_text else hour_to_bill(clock.now())
    except ValueError:
        print(f"--hour {hour_text!r} is not a UTC hour; write it as YYYY-MM-DDTHH, for example 2026-12-04T09", file=sys.stderr)
        return 2
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


def region_command(args: argparse.Namespace) -> int:
    """Run one region-* command; a rejected request prints its message and exits 2."""
    from chalicelib import regions
    from chalicelib.errors import LobsterError

    try:
        if args.command == "region-add":
            region_settings = json.loads(args.settings)
            region = regions.add_region(args.region, args.name, args.backend, region_settings, args.secret_ref)
            print(f"added region {region.item_id} ({region.backend}), disabled; enable it with region-enable")
        elif args.command in ("region-enable", "region-disable"):
            region = regions.set_region_enabled(args.region, args.command == "region-enable")
            print(f"region {region.item_id} is {'enabled' if region.enabled else 'disabled'}")
        elif args.command == "region-import-plans":
            result = regions.import_plans(args.region)
            print(f"added {len(result.added)} disabled plans without a price: {', '.join(result.added) or '-'}")
            print(f"offered {len(result.linked)} existing plans in {args.region}: {', '.join(result.linked) or '-'}")
            print(f"already in the catalog: {result.unchanged}")
        else:
            result = regions.import_images(args.region)
            print(f"added {len(result.added)} disabled images: {', '.join(result.added) or '-'}")
            print(f"already in the catalog: {result.unchanged}")
    except json.JSONDecodeError as error:
        print(f"--settings is not valid JSON: {error}", file=sys.stderr)
        return 2
    except LobsterError as error:
        where = f" ({error.field})" if error.field else ""
        print(f"{error.message}{where}", file=sys.stderr)
        return 2
    return 0


def create_admin(email: str) -> int:
    """Create an admin account; the password is read from a prompt, or from stdin's first line."""
    import getpass

    from chalicelib.admin.users import create_admin as create_admin_account
    from chalicelib.errors import LobsterError

    password = getpass.getpass("password for the new admin: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        account = create_admin_account(email, password)
    except LobsterError as error:
        print(f"{error.message} ({error.field})" if error.field else error.message, file=sys.stderr)
        return 2
    print(f"created admin {account.account_id} <{account.email}>")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lobster", description="Lobster operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create-tables", help="create missing DynamoDB tables")
    commands.add_parser("seed", help="seed the demo region, plans and images (local stage)")
    bill_parser = commands.add_parser("bill", help="run the hourly billing for one hour")
    bill_parser.add_argument("--hour", help="UTC hour to bill, YYYY-MM-DDTHH; default: the last hour that ended")
    commands.add_parser("reconcile", help="check every balance against its ledger")
    admin_parser = commands.add_parser("create-admin", help="create an admin account; reads its password from stdin or a prompt")
    admin_parser.add_argument("--email", required=True, help="the admin's e-mail address, used to log in")
    add_parser = commands.add_parser("region-add", help="add a region, disabled, on a provider backend")
    add_parser.add_argument("region", help="region id customers choose: lower-case letters, digits and hyphens")
    add_parser.add_argument("--name", required=True, help="region name shown to customers")
    add_parser.add_argument("--backend", required=True, help="backend type, such as digitalocean or openstack")
    add_parser.add_argument("--settings", default="{}", help="non-secret backend settings, a JSON object (default {})")
    add_parser.add_argument(
        "--secret-ref", help="where the credentials are: file:NAME, ssm:PARAMETER or secretsmanager:SECRET_ID"
    )
    for command, text in (
        ("region-enable", "offer a region to customers, after checking its settings and secret"),
        ("region-disable", "stop offering a region; its VMs keep running and being billed"),
        ("region-import-plans", "import a region's provider plans; new plans are disabled and unpriced"),
        ("region-import-images", "import a region's provider stock images, disabled"),
    ):
        commands.add_parser(command, help=text).add_argument("region", help="region id")
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
    if args.command.startswith("region-"):
        return region_command(args)
    if args.command == "create-admin":
        return create_admin(args.email)
    return reconcile()


if __name__ == "__main__":
    sys.exit(main())
