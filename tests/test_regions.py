"""Region set-up by operators on DynamoDB Local: settings checks, enabling, plan and image
imports from the Vultr fake, the CLI commands, and a VM in an imported region whose
login details come from the create call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib import config, regions
from chalicelib.catalog import invalidate, load_catalog
from chalicelib.errors import Conflict, InvalidRequest, NotFound, NotSupported
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.models.vms import Vm
from chalicelib.secrets import SecretUnavailable, clear_cache
from chalicelib.vms import service
from tests.fakes.vultr import API_KEY, FakeVultr
from tests.helpers import account_with_credit
from tools import cli

T0 = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
REGION = "vultr-ewr"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0cZfJxN0s1bEJ4pD3zhDRYyHTdJrpXbJ3Gn4rxYVe user@example"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVultr]:
    fake = FakeVultr()
    fake.base_url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def vultr(
    server: FakeVultr, demo_catalog: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeVultr]:
    """The Vultr fake, with its API key in a local secrets file under `file:vultr`."""
    server.reset()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"vultr": {"api_key": API_KEY}}))
    monkeypatch.setenv("LOBSTER_SECRETS_FILE", str(secrets_file))
    config.reload()
    clear_cache()
    yield server
    monkeypatch.delenv("LOBSTER_SECRETS_FILE")
    config.reload()
    clear_cache()


def vultr_settings(fake: FakeVultr) -> dict[str, object]:
    return {"api_url": f"{fake.base_url}/v2", "region": "ewr", "timeout_seconds": 2}


def add_vultr_region(fake: FakeVultr) -> CatalogItem:
    return regions.add_region(REGION, "New Jersey", "vultr", vultr_settings(fake), "file:vultr")


def catalog_item(kind: str, item_id: str) -> CatalogItem:
    return CatalogItem.get(kind, item_id, consistent_read=True)


# Settings checks, without tables.


@pytest.mark.parametrize(
    "key",
    ["password", "api_token", "secretKey", "api-key", "client_secret", "private_key", "apikey", "credentials"],
)
def test_settings_with_credential_key_rejected(key: str) -> None:
    with pytest.raises(InvalidRequest, match="looks like a credential") as raised:
        regions.check_settings({"region": "ewr", key: "x"})

    assert raised.value.field == "settings"


def test_nested_credential_key_rejected() -> None:
    with pytest.raises(InvalidRequest, match="settings.driver_kwargs.secret"):
        regions.check_settings({"driver_kwargs": {"host": "127.0.0.1", "secret": "x"}})


@pytest.mark.parametrize(
    "value",
    [
        "https://admin:hunter2@cloud.example.com:5000/v3",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    ],
)
def test_settings_value_that_holds_credential_rejected(value: str) -> None:
    with pytest.raises(InvalidRequest, match="settings.endpoint"):
        regions.check_settings({"endpoint": value})


@pytest.mark.parametrize("value", [2.5, None, ["a"], {"a": {"b": "c"}}])
def test_settings_value_of_other_type_rejected(value: object) -> None:
    with pytest.raises(InvalidRequest, match="settings.option"):
        regions.check_settings({"option": value})


def test_settings_of_strings_numbers_booleans_and_objects_accepted() -> None:
    settings = {
        "api_url": "https://api.example.com/v2",
        "auth_url": "https://user@keystone.example.com/v3",
        "timeout_seconds": 20,
        "expunge": False,
        "driver_kwargs": {"host": "127.0.0.1", "port": 8443, "secure": True},
    }

    assert regions.check_settings(settings) == settings


def test_settings_must_be_object() -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        regions.check_settings(["region", "ewr"])


@pytest.mark.parametrize("reference", ["file:vultr", "ssm:/lobster/regions/ewr", "secretsmanager:lobster/ewr"])
def test_secret_ref_schemes_accepted(reference: str) -> None:
    assert regions.check_secret_ref(reference) == reference


@pytest.mark.parametrize("reference", ["vault:lobster/ewr", "file:", "ssm", "https://example.com/secret"])
def test_secret_ref_other_schemes_rejected(reference: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        regions.check_secret_ref(reference)

    assert raised.value.field == "secret_ref"


def test_empty_secret_ref_means_no_secret() -> None:
    assert regions.check_secret_ref(None) is None
    assert regions.check_secret_ref("  ") is None


@pytest.mark.parametrize("region_id", ["", "EWR", "ewr_1", "-ewr", "x" * 65])
def test_invalid_region_id_rejected(region_id: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        regions.check_id(region_id, "region_id")

    assert raised.value.field == "region_id"


# Adding, enabling and disabling regions.


def test_added_region_is_stored_disabled(db: None) -> None:
    regions.add_region("demo-2", "Second demo", "demo", {}, None)

    region = catalog_item(KIND_REGION, "demo-2")
    assert region.enabled is False
    assert region.backend == "demo"
    assert region.secret_ref is None
    with pytest.raises(InvalidRequest):
        load_catalog(fresh=True).region("demo-2")


def test_unknown_backend_type_rejected(db: None) -> None:
    with pytest.raises(InvalidRequest, match="unknown backend type") as raised:
        regions.add_region("aws-1", "AWS", "ec2", {}, None)

    assert raised.value.field == "backend"
    assert list(CatalogItem.query(KIND_REGION)) == []


def test_demo_backend_rejected_in_prod(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOBSTER_STAGE", "prod")
    config.reload()
    try:
        with pytest.raises(InvalidRequest, match="local and test stages"):
            regions.add_region("demo-2", "Demo", "demo", {}, None)
    finally:
        monkeypatch.setenv("LOBSTER_STAGE", "test")
        config.reload()


def test_region_with_credential_setting_is_not_stored(db: None) -> None:
    with pytest.raises(InvalidRequest):
        regions.add_region("vultr-ewr", "New Jersey", "vultr", {"region": "ewr", "api_key": "x"}, None)

    assert list(CatalogItem.query(KIND_REGION)) == []


def test_existing_region_id_conflicts(demo_catalog: None) -> None:
    with pytest.raises(Conflict):
        regions.add_region("demo", "Another demo", "demo", {}, None)

    assert catalog_item(KIND_REGION, "demo").name == "Demo region (local)"


def test_enable_then_disable_region(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)

    regions.set_region_enabled(REGION, True)
    enabled = load_catalog().region(REGION)
    regions.set_region_enabled(REGION, False)

    assert enabled.enabled is True
    assert catalog_item(KIND_REGION, REGION).enabled is False
    assert vultr.requests == []


def test_enable_with_unreadable_secret_keeps_region_disabled(vultr: FakeVultr) -> None:
    regions.add_region(REGION, "New Jersey", "vultr", vultr_settings(vultr), "file:missing")

    with pytest.raises(SecretUnavailable, match="missing"):
        regions.set_region_enabled(REGION, True)

    assert catalog_item(KIND_REGION, REGION).enabled is False


def test_enable_with_incomplete_settings_keeps_region_disabled(db: None) -> None:
    regions.add_region("os-1", "OpenStack", "openstack", {"project": "lobster"}, None)

    with pytest.raises(InvalidRequest, match="auth_url"):
        regions.set_region_enabled("os-1", True)

    assert catalog_item(KIND_REGION, "os-1").enabled is False


def test_unknown_region_not_found(db: None) -> None:
    with pytest.raises(NotFound):
        regions.set_region_enabled("nowhere", True)


# Imports.


def test_import_plans_links_or_adds_disabled(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)

    result = regions.import_plans(REGION)

    # vc2-1c-1gb has the size of s1 (1 GB, 1 vCPU, 25 GB); vc2-1c-2gb matches no plan.
    assert result.linked == ["s1"]
    assert result.added == ["vultr-ewr-vc2-1c-2gb"]
    s1 = catalog_item(KIND_PLAN, "s1")
    assert s1.region_ids == {"demo": "demo-1", REGION: "vc2-1c-1gb"}
    assert s1.enabled is True
    added = catalog_item(KIND_PLAN, "vultr-ewr-vc2-1c-2gb")
    assert added.enabled is False
    assert added.prices == []
    assert added.region_ids == {REGION: "vc2-1c-2gb"}
    assert (added.ram_mb, added.vcpus, added.disk_gb, added.bandwidth_gib) == (2048, 1, 55, 1907)


def test_import_plans_again_changes_nothing(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)
    regions.import_plans(REGION)

    again = regions.import_plans(REGION)

    assert (again.added, again.linked, again.unchanged) == ([], [], 2)
    assert len(list(CatalogItem.query(KIND_PLAN))) == 4


def test_import_plans_never_enables_unpriced_plan(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)
    regions.set_region_enabled(REGION, True)

    regions.import_plans(REGION)

    catalog = load_catalog(fresh=True)
    offered = [plan.item_id for plan in catalog.plans.values() if plan.enabled and REGION in plan.region_ids]
    assert offered == ["s1"]
    assert all(plan.prices for plan in catalog.plans.values() if plan.enabled)


def test_imported_plan_id_taken_gets_number(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)
    CatalogItem(KIND_PLAN, "vultr-ewr-vc2-1c-2gb", name="Taken", enabled=False, ram_mb=1, vcpus=1, disk_gb=1).save()

    result = regions.import_plans(REGION)

    assert result.added == ["vultr-ewr-vc2-1c-2gb-2"]


def test_import_plans_of_backend_without_plan_list(db: None) -> None:
    regions.add_region("empty", "Empty", "solusvm", {"api_url": "http://127.0.0.1:9/command.php"}, None)

    with pytest.raises(NotSupported, match="plans"):
        regions.import_plans("empty")


def test_import_images_adds_stock_systems_disabled(vultr: FakeVultr) -> None:
    add_vultr_region(vultr)

    result = regions.import_images(REGION)

    assert result.added == ["vultr-ewr-debian-12-x64-bookworm", "vultr-ewr-ubuntu-24.04-lts-x64"]
    debian = catalog_item(KIND_IMAGE, "vultr-ewr-debian-12-x64-bookworm")
    assert debian.enabled is False
    assert debian.region == REGION
    assert debian.backend_id == "2136"
    assert debian.name == "Debian 12 x64 (bookworm)"
    assert regions.import_images(REGION).unchanged == 2


def test_import_for_unknown_region_not_found(db: None) -> None:
    with pytest.raises(NotFound):
        regions.import_images("nowhere")


# The operator commands.


def test_cli_region_commands(vultr: FakeVultr, capsys: pytest.CaptureFixture[str]) -> None:
    settings = json.dumps(vultr_settings(vultr))
    base = ["--name", "New Jersey", "--backend", "vultr", "--settings", settings, "--secret-ref", "file:vultr"]

    assert cli.main(["region-add", REGION, *base]) == 0
    assert cli.main(["region-import-plans", REGION]) == 0
    assert cli.main(["region-import-images", REGION]) == 0
    assert cli.main(["region-enable", REGION]) == 0
    output = capsys.readouterr().out

    assert "added region vultr-ewr (vultr), disabled" in output
    assert "added 1 disabled plans without a price: vultr-ewr-vc2-1c-2gb" in output
    assert "offered 1 existing plans in vultr-ewr: s1" in output
    assert "added 2 disabled images" in output
    assert "region vultr-ewr is enabled" in output
    assert catalog_item(KIND_REGION, REGION).enabled is True
    assert cli.main(["region-disable", REGION]) == 0
    assert catalog_item(KIND_REGION, REGION).enabled is False


def test_cli_rejects_credential_in_settings(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    settings = json.dumps({"region": "ewr", "api_key": "VULTRKEY"})

    code = cli.main(["region-add", REGION, "--name", "NJ", "--backend", "vultr", "--settings", settings])

    error = capsys.readouterr().err
    assert code == 2
    assert "settings.api_key looks like a credential" in error
    assert "VULTRKEY" not in error


def test_cli_rejects_settings_that_are_not_json(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["region-add", REGION, "--name", "NJ", "--backend", "vultr", "--settings", "{region: ewr}"])

    assert code == 2
    assert "--settings is not valid JSON" in capsys.readouterr().err


# A VM in an imported region.


@pytest.fixture
def offered_region(vultr: FakeVultr, clock: object) -> FakeVultr:
    """The Vultr region enabled, with s1 and the imported Debian image offered."""
    add_vultr_region(vultr)
    regions.import_plans(REGION)
    regions.import_images(REGION)
    for image_id in ("vultr-ewr-debian-12-x64-bookworm", "vultr-ewr-ubuntu-24.04-lts-x64"):
        catalog_item(KIND_IMAGE, image_id).update(actions=[CatalogItem.enabled.set(True)])
    regions.set_region_enabled(REGION, True)
    invalidate()
    return vultr


def test_login_details_from_create_survive_activation(offered_region: FakeVultr) -> None:
    account = account_with_credit("lee@example.com", 20_000_000, T0)

    vm = service.create_vm(account, "web1", REGION, "s1", "vultr-ewr-debian-12-x64-bookworm")
    stored = Vm.get(account.account_id, vm.vm_id, consistent_read=True)
    offered_region.make_active(vm.backend_id or "")
    active = service.refresh_vm(service.get_vm(account.account_id, vm.vm_id))

    assert stored.login_details == "username: root; password: v#8Fake9Password"
    assert active.state == "active"
    assert Vm.get(account.account_id, vm.vm_id).login_details == "username: root; password: v#8Fake9Password"


def test_reimage_installs_key_and_keeps_login_details(offered_region: FakeVultr) -> None:
    account = account_with_credit("kim@example.com", 20_000_000, T0)
    vm = service.create_vm(account, "web1", REGION, "s1", "vultr-ewr-debian-12-x64-bookworm")
    offered_region.make_active(vm.backend_id or "")
    vm = service.refresh_vm(service.get_vm(account.account_id, vm.vm_id))

    service.reimage_vm(vm, "vultr-ewr-ubuntu-24.04-lts-x64", SSH_KEY)

    stored = Vm.get(account.account_id, vm.vm_id, consistent_read=True)
    assert stored.image_id == "vultr-ewr-ubuntu-24.04-lts-x64"
    assert stored.login_details == "username: root; password: v#8Fake9Password"
    assert SSH_KEY in offered_region.user_data[vm.backend_id or ""]


def test_reimage_with_image_of_other_region_rejected(offered_region: FakeVultr) -> None:
    account = account_with_credit("max@example.com", 20_000_000, T0)
    vm = service.create_vm(account, "web1", REGION, "s1", "vultr-ewr-debian-12-x64-bookworm")
    offered_region.make_active(vm.backend_id or "")
    vm = service.refresh_vm(service.get_vm(account.account_id, vm.vm_id))

    with pytest.raises(InvalidRequest) as raised:
        service.reimage_vm(vm, "debian-12")

    assert raised.value.field == "image"
    assert [r for r in offered_region.requests if r.method == "PATCH"] == []
