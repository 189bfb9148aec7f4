"""Customer images: URL checks against loopback, private and metadata addresses, fetching
and snapshots through the fake Vultr API, the pending-to-active refresh, deletion, and
storage billing that starts with the reported size and stops after the deleted hour."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from chalicelib import clock
from chalicelib.billing.planner import plan_hour
from chalicelib.clock import HOUR
from chalicelib.errors import InvalidRequest
from chalicelib.images.service import image_backend_id, refresh_pending_images
from chalicelib.images.urls import blocked_reason, check_addresses, check_image_url
from chalicelib.models.images import Image
from tests.customer_api import VULTR_IMAGE, VULTR_REGION, call, customer, item_count, vultr_region
from tests.fakes.vultr import FakeVultr
from tests.helpers import assert_balance_matches_ledger, charges

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
PUBLIC_URL = "http://93.184.215.14/images/debian.qcow2"
SNAPSHOT_BYTES = 25 * 10**9  # the fake Vultr plan's 25 GB disk
SNAPSHOT_MICROS_PER_HOUR = 1_388  # 25 GB at 0.0000555 per GB-hour = 1387.5, rounded half up

# URLs no provider may be asked to fetch.
BLOCKED_URLS = [
    "http://127.0.0.1/disk.qcow2",
    "http://localhost/disk.qcow2",
    "http://localhost./disk.qcow2",
    "http://10.1.2.3/disk.qcow2",
    "http://172.16.0.1/disk.qcow2",
    "http://192.168.1.10/disk.qcow2",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/disk.qcow2",
    "http://[fe80::1]/disk.qcow2",
    "http://[::ffff:127.0.0.1]/disk.qcow2",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://2130706433/disk.qcow2",
    "http://0x7f.1/disk.qcow2",
    "file:///etc/passwd",
    "ftp://93.184.215.14/disk.qcow2",
    "gopher://93.184.215.14/",
    "http://user:secret@93.184.215.14/disk.qcow2",
    "http:///disk.qcow2",
    "http://93.184.215.14:99999/disk.qcow2",
    "http://93.184.215.14\\@127.0.0.1/disk.qcow2",
    "http://93.184.215.14/disk .qcow2",
    "http://[::1/disk.qcow2",
    "http://" + "a" * 2050 + ".com/",
]

with_tables = pytest.mark.usefixtures("demo_catalog", "clock")


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_catalog: None) -> Iterator[FakeVultr]:
    with vultr_region(tmp_path, monkeypatch) as server:
        yield server


def fetch_requests(fake: FakeVultr) -> list[dict[str, str]]:
    return [json.loads(r.body) for r in fake.requests if r.method == "POST" and r.path == "/v2/snapshots/create-from-url"]


def running_vultr_vm(client: Client, fake: FakeVultr, token: str) -> dict:
    body = {"name": "web1", "region": VULTR_REGION, "plan": "s1", "image": VULTR_IMAGE}
    status, vm = call(client, "POST", "/v1/vms", body, token)
    assert status == 201, vm
    (instance_id,) = fake.instances
    fake.make_active(instance_id)
    status, vm = call(client, "GET", f"/v1/vms/{vm['id']}", token=token)
    assert vm["state"] == "active"
    return vm


def bill_hour(hour: datetime) -> None:
    """Run the hourly billing for `hour` at the time the schedule would: 5 minutes after it ends."""
    clock.set_time(hour + HOUR + timedelta(minutes=5))
    plan_hour(hour)


# URL checks, without IO beyond resolving "localhost" and literal addresses.


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_blocked_url_is_rejected(url: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_image_url(url)

    assert raised.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        PUBLIC_URL,
        "https://93.184.215.14:8443/images/debian.raw?version=12#latest",
        "https://[2606:4700:4700::1111]/debian.qcow2",
        "HTTPS://93.184.215.14/DEBIAN.QCOW2",
    ],
)
def test_public_url_is_accepted(url: str) -> None:
    assert check_image_url(url) == url


def test_name_resolving_to_loopback_names_the_address() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_image_url("http://localhost/disk.qcow2")

    assert "localhost resolves to 127.0.0.1, a loopback address" in raised.value.message


def test_every_resolved_address_must_be_public() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_addresses("mirror.example.com", ["93.184.215.14", "2606:4700:4700::1111", "10.0.0.7"])

    assert "10.0.0.7" in raised.value.message


def test_empty_resolution_is_rejected() -> None:
    with pytest.raises(InvalidRequest):
        check_addresses("mirror.example.com", [])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "cloud metadata or protocol"),
        ("169.254.170.2", "cloud metadata or protocol"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200", "cloud metadata or protocol"),
        ("100.64.0.1", "non-public"),
        ("192.0.0.192", "cloud metadata or protocol"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "cloud metadata or protocol"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback (embedded in IPv6)"),
        ("::ffff:10.0.0.1", "private (embedded in IPv6)"),
        ("::ffff:169.254.169.254", "cloud metadata or protocol (embedded in IPv6)"),
        ("2002:a00:1::1", "private (embedded in IPv6)"),
        ("2002:7f00:1::1", "loopback (embedded in IPv6)"),
        ("64:ff9b::a00:1", "reserved"),
        ("64:ff9b:1::1", "cloud metadata or protocol"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:93.184.215.14", "reserved"),
    ],
)
def test_blocked_reason_by_address(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


# Fetching through the API.


@with_tables
def test_fetch_from_public_url_is_pending_then_active(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "fetch@example.com", 20_000_000, T0)

    status, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)

    assert status == 202, image
    assert image["state"] == "pending"
    assert image["size_bytes"] == 0
    assert fetch_requests(fake) == [{"url": PUBLIC_URL, "description": "debian"}]

    for snapshot in fake.snapshots.values():
        snapshot.update(status="complete", size=3 * 10**9)
    status, listed = call(client, "GET", "/v1/images", token=token)

    assert status == 200
    assert [(item["id"], item["state"], item["size_bytes"]) for item in listed["images"]] == [
        (image["id"], "active", 3 * 10**9)
    ]
    assert listed["images"][0]["price_hourly"]["micros"] == 167  # 3 GB at 0.0000555 = 166.5


def test_vm_created_from_own_image(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "own-image@example.com", 20_000_000, T0)
    status, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "golden", "url": PUBLIC_URL}, token)
    assert status == 202, image
    for snapshot in fake.snapshots.values():
        snapshot.update(status="complete", size=3 * 10**9)
    call(client, "GET", "/v1/images", token=token)
    (snapshot_id,) = fake.snapshots

    body = {"name": "web1", "region": VULTR_REGION, "plan": "s1", "image": image["id"]}
    status, vm = call(client, "POST", "/v1/vms", body, token)

    assert status == 201, vm
    assert vm["image"] == image["id"]
    created = [json.loads(r.body) for r in fake.requests if r.method == "POST" and r.path == "/v2/instances"]
    assert created[0]["snapshot_id"] == snapshot_id


def test_vm_from_another_customers_image_is_refused(client: Client, fake: FakeVultr) -> None:
    _, owner = customer(client, "owner@example.com", 20_000_000, T0)
    _, other = customer(client, "other@example.com", 20_000_000, T0)
    status, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "golden", "url": PUBLIC_URL}, owner)
    for snapshot in fake.snapshots.values():
        snapshot.update(status="complete", size=3 * 10**9)
    call(client, "GET", "/v1/images", token=owner)

    body = {"name": "web1", "region": VULTR_REGION, "plan": "s1", "image": image["id"]}
    status, error = call(client, "POST", "/v1/vms", body, other)

    assert status == 400
    assert error["error"]["field"] == "image"
    assert fake.instances == {}


@with_tables
def test_blocked_urls_write_nothing_and_reach_no_provider(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "ssrf@example.com", 20_000_000, T0)
    before = item_count()

    for url in BLOCKED_URLS:
        status, error = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "x", "url": url}, token)

        assert status == 400, url
        assert error["error"]["field"] == "url", url
    assert item_count() == before
    assert fetch_requests(fake) == []


@with_tables
def test_fetch_needs_minimum_credit(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "poor@example.com", 500_000, T0)
    before = item_count()

    status, error = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)

    assert status == 402
    assert error["error"]["code"] == "insufficient_credit"
    assert item_count() == before
    assert fetch_requests(fake) == []


@with_tables
def test_fetch_without_capability_not_supported(client: Client) -> None:
    _, token = customer(client, "demo@example.com", 20_000_000, T0)
    before = item_count()

    status, error = call(client, "POST", "/v1/images", {"region": "demo", "name": "debian", "url": PUBLIC_URL}, token)

    assert status == 400
    assert error["error"]["code"] == "not_supported"
    assert "fetching an image" in error["error"]["message"]
    assert item_count() == before


@with_tables
def test_fetch_bad_input_names_field_and_writes_nothing(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "badimage@example.com", 20_000_000, T0)
    before = item_count()
    cases = [
        ({"region": "mars", "name": "debian", "url": PUBLIC_URL}, "region"),
        ({"region": VULTR_REGION, "name": " ", "url": PUBLIC_URL}, "name"),
        ({"region": VULTR_REGION, "name": "line\nbreak", "url": PUBLIC_URL}, "name"),
        ({"region": VULTR_REGION, "name": "debian"}, "url"),
        ({"region": VULTR_REGION, "name": "debian", "url": ["http://a"]}, "url"),
        ({"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL, "format": "qcow2"}, "format"),
    ]

    for body, field in cases:
        status, error = call(client, "POST", "/v1/images", body, token)

        assert status == 400, body
        assert error["error"]["field"] == field, body
    assert item_count() == before
    assert fetch_requests(fake) == []


@with_tables
def test_provider_refusal_leaves_no_image(client: Client, fake: FakeVultr) -> None:
    _, token = customer(client, "refused@example.com", 20_000_000, T0)
    before = item_count()
    fake.fail_next(400, b'{"error": "Snapshot quota reached.", "status": 400}', path="/v2/snapshots/create-from-url")

    status, error = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)

    assert status == 502
    assert "Snapshot quota reached" in error["error"]["message"]
    assert item_count() == before


@with_tables
def test_provider_error_fails_pending_image(client: Client, fake: FakeVultr) -> None:
    account, token = customer(client, "broken@example.com", 20_000_000, T0)
    _, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)
    for snapshot in fake.snapshots.values():
        snapshot["status"] = "failed"

    _, shown = call(client, "GET", f"/v1/images/{image['id']}", token=token)

    assert shown["state"] == "error"
    stored = Image.get(account.account_id, image["id"], consistent_read=True)
    assert stored.billing_shard is None


@with_tables
def test_other_customer_cannot_see_or_delete_image(client: Client, fake: FakeVultr) -> None:
    _, owner = customer(client, "imgowner@example.com", 20_000_000, T0)
    _, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, owner)
    _, intruder = customer(client, "imgintruder@example.com", 20_000_000, T0)

    assert call(client, "GET", f"/v1/images/{image['id']}", token=intruder)[0] == 404
    assert call(client, "DELETE", f"/v1/images/{image['id']}", token=intruder)[0] == 404
    assert call(client, "GET", "/v1/images", token=intruder)[1] == {"images": []}
    assert call(client, "GET", "/v1/images/not-an-id", token=owner)[0] == 404
    assert call(client, "GET", f"/v1/images/{image['id']}", token=owner)[1]["state"] == "pending"


# Snapshots, storage billing and deletion.


@with_tables
def test_snapshot_storage_billed_until_deleted(client: Client, fake: FakeVultr) -> None:
    account, token = customer(client, "storage@example.com", 20_000_000, T0)
    vm = running_vultr_vm(client, fake, token)

    clock.set_time(datetime(2026, 5, 4, 9, 40, tzinfo=UTC))
    status, image = call(client, "POST", f"/v1/vms/{vm['id']}/snapshots", {"name": "before upgrade"}, token)
    assert status == 202, image
    assert image["source_vm"] == vm["id"]

    bill_hour(datetime(2026, 5, 4, 9, tzinfo=UTC))
    assert charges(account.account_id, "storage") == []

    fake.finish_snapshots()
    clock.set_time(datetime(2026, 5, 4, 10, 10, tzinfo=UTC))
    _, shown = call(client, "GET", f"/v1/images/{image['id']}", token=token)
    assert (shown["state"], shown["size_bytes"]) == ("active", SNAPSHOT_BYTES)
    bill_hour(datetime(2026, 5, 4, 10, tzinfo=UTC))

    clock.set_time(datetime(2026, 5, 4, 11, 20, tzinfo=UTC))
    status, deleted = call(client, "DELETE", f"/v1/images/{image['id']}", token=token)
    assert status == 200
    assert deleted["state"] == "deleted"
    assert fake.snapshots == {}
    bill_hour(datetime(2026, 5, 4, 11, tzinfo=UTC))
    bill_hour(datetime(2026, 5, 4, 12, tzinfo=UTC))

    storage = charges(account.account_id, "storage")
    assert [line.amount_micros for line in storage] == [-SNAPSHOT_MICROS_PER_HOUR, -SNAPSHOT_MICROS_PER_HOUR]
    assert [line.period for line in storage] == ["2026-05-04T10", "2026-05-04T11"]
    assert call(client, "GET", "/v1/images", token=token)[1] == {"images": []}
    assert_balance_matches_ledger(account.account_id)


@with_tables
def test_failed_provider_delete_is_retried_by_refresh(client: Client, fake: FakeVultr) -> None:
    account, token = customer(client, "retry@example.com", 20_000_000, T0)
    _, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)
    fake.finish_snapshots()
    fake.fail_next(400, b'{"error": "Snapshot is busy.", "status": 400}', method="DELETE")

    status, deleting = call(client, "DELETE", f"/v1/images/{image['id']}", token=token)

    assert status == 202
    assert deleting["state"] == "deleting"
    assert deleting["deleted_at"] is not None
    assert len(fake.snapshots) == 1

    refresh_pending_images(account.account_id)

    assert Image.get(account.account_id, image["id"], consistent_read=True).state == "deleted"
    assert fake.snapshots == {}
    assert call(client, "DELETE", f"/v1/images/{image['id']}", token=token)[0] == 200


@with_tables
def test_refresh_updates_given_images_in_place(client: Client, fake: FakeVultr) -> None:
    account, token = customer(client, "inplace@example.com", 20_000_000, T0)
    call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "debian", "url": PUBLIC_URL}, token)
    copies = list(Image.query(account.account_id))
    for snapshot in fake.snapshots.values():
        snapshot.update(status="complete", size=7 * 10**9)

    refresh_pending_images(account.account_id, copies)

    assert [(copy.state, copy.size_bytes) for copy in copies] == [("active", 7 * 10**9)]


@with_tables
def test_own_image_usable_in_own_region(client: Client, fake: FakeVultr) -> None:
    account, token = customer(client, "reuse@example.com", 20_000_000, T0)
    _, image = call(client, "POST", "/v1/images", {"region": VULTR_REGION, "name": "golden", "url": PUBLIC_URL}, token)
    with pytest.raises(InvalidRequest):
        image_backend_id(account.account_id, VULTR_REGION, image["id"])

    fake.finish_snapshots()
    refresh_pending_images(account.account_id)

    (snapshot_id,) = fake.snapshots
    assert image_backend_id(account.account_id, VULTR_REGION, image["id"]) == snapshot_id
    assert image_backend_id(account.account_id, VULTR_REGION, VULTR_IMAGE) == "2136"
    with pytest.raises(InvalidRequest):
        image_backend_id(account.account_id, "demo", image["id"])
