"""The SolusVM backend against a fake SolusVM master speaking the admin API over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.backends.base import VmState
from chalicelib.backends.registry import create_backend
from chalicelib.backends.solusvm import SolusVmBackend, parse_fragment
from chalicelib.errors import BackendError, InvalidRequest, NotFound
from tests.backends.contract import CONTRACT_TIMEOUT_SECONDS, BackendContract, Harness
from tests.fakes.solusvm import API_ID, API_KEY, COMMAND_PATH, FakeSolusVm


def make_backend(base_url: str, **settings: object) -> SolusVmBackend:
    merged = {
        "api_url": base_url + COMMAND_PATH,
        "timeout_seconds": CONTRACT_TIMEOUT_SECONDS,
        "username_prefix": "lobster",
        **settings,
    }
    backend = create_backend("solusvm", "test", merged, {"api_id": API_ID, "api_key": API_KEY})
    assert isinstance(backend, SolusVmBackend)
    backend.http.sleep = lambda seconds: None
    return backend


@pytest.fixture
def fake() -> Iterator[FakeSolusVm]:
    server = FakeSolusVm()
    server.base_url = server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake: FakeSolusVm) -> SolusVmBackend:
    return make_backend(fake.base_url)


@pytest.fixture
def harness(fake: FakeSolusVm, backend: SolusVmBackend) -> Harness:
    return Harness(
        backend=backend,
        fake=fake,
        plan_backend_id="Lobster 1G",
        image_backend_id="ubuntu-22.04-x86_64",
        make_active=fake.make_active,
        set_traffic=fake.set_traffic,
        resize_plan_backend_id="Lobster 2G",
    )


class TestSolusVm(BackendContract):
    pass


# Authentication and error fragments.


def test_wrong_api_key_is_rejected_with_provider_message(fake: FakeSolusVm) -> None:
    backend = create_backend(
        "solusvm",
        "test",
        {"api_url": fake.base_url + COMMAND_PATH, "username_prefix": "lobster"},
        {"api_id": API_ID, "api_key": "wrong"},
    )

    with pytest.raises(BackendError) as raised:
        backend.get_vm("101")

    assert "credentials" in raised.value.message
    assert "Invalid id or key" in raised.value.message


def test_error_fragment_becomes_message(backend: SolusVmBackend, harness: Harness) -> None:
    with pytest.raises(BackendError) as raised:
        backend.create_vm(harness.spec().__class__(**{**harness.spec().__dict__, "plan_backend_id": "No Such Plan"}))

    assert raised.value.message == "SolusVM rejected vserver-create: Invalid plan"


def test_unknown_server_raises_not_found(backend: SolusVmBackend) -> None:
    with pytest.raises(NotFound):
        backend.get_vm("999")


def test_wrong_api_url_raises_backend_error(fake: FakeSolusVm) -> None:
    backend = make_backend(fake.base_url, api_url=fake.base_url + "/api/admin/wrong.php")

    with pytest.raises(BackendError) as raised:
        backend.delete_vm("101")

    assert not isinstance(raised.value, NotFound)
    assert "api_url" in raised.value.message


def test_reply_without_status_is_an_error(fake: FakeSolusVm, backend: SolusVmBackend) -> None:
    fake.raw_replies.append("<html><body>maintenance</body></html>")

    with pytest.raises(BackendError) as raised:
        backend.get_vm("101")

    assert "without a status element" in raised.value.message


def test_missing_api_url_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as raised:
        create_backend("solusvm", "test", {}, {"api_id": API_ID, "api_key": API_KEY})

    assert raised.value.field == "api_url"


def test_unknown_virtualization_type_is_rejected(fake: FakeSolusVm) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make_backend(fake.base_url, virtualization_type="bhyve")

    assert raised.value.field == "virtualization_type"


# Fragment parsing.


def test_fragment_parses_sibling_elements() -> None:
    reply = parse_fragment("<status>success</status><statusmsg></statusmsg><vserverid>42</vserverid>")

    assert reply == {"status": "success", "statusmsg": "", "vserverid": "42"}


def test_fragment_with_declaration_and_whitespace() -> None:
    reply = parse_fragment('<?xml version="1.0"?>\n  <status>success</status>\n  <state> online </state>\n')

    assert reply["status"] == "success"
    assert reply["state"] == "online"


def test_fragment_with_unescaped_ampersand_falls_back() -> None:
    reply = parse_fragment("<status>error</status><statusmsg>Node full & locked</statusmsg>")

    assert reply["status"] == "error"
    assert reply["statusmsg"] == "Node full & locked"


def test_fragment_after_php_notice_falls_back() -> None:
    text = (
        "<b>Notice</b>: Undefined index: x in /a.php on line 3<br />\n<status>success</status><vserverid>7</vserverid>"
    )

    reply = parse_fragment(text)

    assert reply["status"] == "success"
    assert reply["vserverid"] == "7"


def test_fragment_unescapes_entities() -> None:
    reply = parse_fragment("<status>error</status><statusmsg>Plan &quot;A&quot; &amp; more</statusmsg>")

    assert reply["statusmsg"] == 'Plan "A" & more'


def test_empty_reply_parses_to_nothing() -> None:
    assert parse_fragment("") == {}


def test_odd_reply_from_server_is_parsed(fake: FakeSolusVm, backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.raw_replies.append(
        "\n<status>success</status><statusmsg/><state>online</state>"
        "<mainipaddress>203.0.113.9</mainipaddress><ipaddresses>203.0.113.9,,198.51.100.4 </ipaddresses>"
        "<internalips></internalips><bandwidth>100,7,93,7</bandwidth><note>a & b</note>"
    )

    info = backend.get_vm(backend_id)

    assert info.state == VmState.RUNNING
    assert [a.ip for a in info.addresses] == ["203.0.113.9", "198.51.100.4"]


# Provider-specific behaviour.


def test_create_sends_region_client_and_plan(fake: FakeSolusVm, backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = backend.create_vm(harness.spec("web")).backend_id

    server = fake.servers[backend_id]
    assert server.client == "lobstertest"
    assert server.plan == "Lobster 1G"
    assert server.hostname == "web.localdomain"


def test_create_returns_root_password(fake: FakeSolusVm, backend: SolusVmBackend, harness: Harness) -> None:
    created = backend.create_vm(harness.spec("web"))

    sent = [r.form() for r in fake.requests if r.form().get("action") == "vserver-create"][0]
    assert created.login_details == f"username: root; password: {sent['password']}"
    assert len(sent["password"]) >= 20


def test_public_images_are_template_names(backend: SolusVmBackend) -> None:
    images = backend.list_public_images()

    assert [image.backend_id for image in images] == backend.list_template_names()
    assert all(image.name == image.backend_id for image in images)


def test_addresses_include_ipv6_and_private(backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()

    addresses = backend.list_addresses(backend_id)

    assert [(a.version, a.private) for a in addresses] == [(4, False), (6, False), (4, True)]


def test_traffic_reads_used_bytes(fake: FakeSolusVm, backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()
    fake.set_traffic(backend_id, 123_456_789)

    assert backend.read_traffic(backend_id) == 123_456_789


def test_traffic_without_counter_is_an_error(fake: FakeSolusVm, backend: SolusVmBackend) -> None:
    fake.raw_replies.append("<status>success</status><state>online</state><bandwidth></bandwidth>")

    with pytest.raises(BackendError):
        backend.read_traffic("101")


def test_rename_changes_hostname(fake: FakeSolusVm, backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()

    backend.rename_vm(backend_id, "db")

    assert fake.servers[backend_id].hostname == "db.localdomain"


def test_tuntap_action_on_openvz(fake: FakeSolusVm) -> None:
    backend = make_backend(fake.base_url, virtualization_type="openvz")
    backend_id = backend.create_vm(
        Harness(backend, fake, "Lobster CT", "ubuntu-22.04-x86_64-ct", fake.make_active, fake.set_traffic).spec()
    ).backend_id

    assert [a.action for a in backend.list_actions(backend_id)] == ["tuntap"]
    backend.run_action(backend_id, "tuntap", "enable")

    assert fake.servers[backend_id].tun is True


def test_tuntap_action_rejected_on_kvm(backend: SolusVmBackend, harness: Harness) -> None:
    backend_id = harness.running_vm()

    assert backend.list_actions(backend_id) == []
    with pytest.raises(InvalidRequest):
        backend.run_action(backend_id, "tuntap", "enable")


def test_plan_and_template_names(backend: SolusVmBackend) -> None:
    assert backend.list_plan_names() == ["Lobster 1G", "Lobster 2G"]
    assert backend.list_template_names() == ["ubuntu-22.04-x86_64", "debian-12-x86_64"]


def test_credentials_never_sent_outside_form_body(fake: FakeSolusVm, backend: SolusVmBackend) -> None:
    backend.list_plan_names()

    request = fake.requests[-1]
    assert request.query == {}
    assert request.form()["key"] == API_KEY
