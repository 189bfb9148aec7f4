"""SSH keys: the accepted key types and sizes, the rejected private keys and garbage, the
routes, and a key installed on a new VM through the fake Vultr API."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from chalicelib.errors import InvalidRequest
from chalicelib.sshkeys.keyformat import parse_public_key
from tests.customer_api import VULTR_IMAGE, VULTR_REGION, call, customer, item_count, vultr_region
from tests.fakes.vultr import FakeVultr

# Route tests need tables; the parsing tests run without them.
with_tables = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)

# Public keys made with OpenSSH 9.2 `ssh-keygen`, and the fingerprints `ssh-keygen -l` printed.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIWKQ0nsKQpp6o0RGPzmnK7EZepwqFDN0TWhKpek+wzo ed25519@example"
ED25519_FINGERPRINT = "SHA256:4s8bYHXu3AaewGMiZ1lL+KPAY1gX7L5J0/zk/kW9oc8"
ECDSA_256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJ5Jp9Cd1x4vSqtP7N4nCOrjhWTgX8OzbQupWomt83L5"
    "ounHU1io5BiQjv8w45rEbjrHnQHmYu/vM6z/ptroF/o= ecdsab256@example"
)
ECDSA_384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBP1g41UmBLmpre1/lgYrODtuUPJ056IU82eRO3lKup81"
    "/pVTxGJnZa23S2woN2TNTCxgNaA/MMgQd1CUvmj4QDQ2RQvAb7oKeD2CR8BoCzv74dzbDggT4yMzv1TVOxxXwQ== ecdsab384@example"
)
ECDSA_521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAC4P/Lcp+H8rv1rw7Y7O4szA5U2yoD1i+cptMsqjHZz"
    "UJoiNneQR/cG1Qyon1b/IK/GARPGohhon+YeKtIQU4GKlgBuY6v+IHDRDbpRyxXNXsY4gJENjs8dcv7rWF52Rqa7Izk3jU7IKrGQUhNXmi0/My5I/sY6"
    "G39YGh3mNx7C+PZi8Q== ecdsab521@example"
)
RSA_2048 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC3u5Qmf+XOasxJRz8NUhs94VGTt1SAL1v8ZycPPbLKldrgrqocjgx6OHLkRGphLq/uv5rouU3TqsOn"
    "gEAJIczlywMCG/xmm5zpnGzsiz8APTbyVSn+plyMjLoCicnPda7eTymuHONbJXtzqMT6nnMlANY77rapq3HNRhctyjrbdrEb7dr+HqVIMLsT+KW4VceN"
    "ORHz4EVLWGZIVLkOyHQmO9DYdAtZRd8Z9Pbwum7gZTYqBLqbvtfoBwyWQAI7bTgNV1mC0d3291UqTTxff5r76/cNZ8e2na7+vE6gZStotHuFMbUdlwsz"
    "aIS4cFOSNsNHAlBLWFT5+39H5GJcnSKx rsab2048@example"
)
RSA_2048_FINGERPRINT = "SHA256:86mn/AN7z+bmaHWgqdgA3tSIu+y+e7+KWwZamhWiRW8"
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8DFISZ9YAdVn53LMSNqxTItcgz98+pbm/x4Kw/m8q/j4IVubomHCMvNK5w4gX9KITN7+zMgQkRBfo"
    "/XUS6FISIQeER4RhKCx5GjODLS3xcrQ6+8P2z59bHvrC+89Hxr6ZFZvuVpnmACAkzvAmvrkUiwRAgcK9x+gLZNmVQemVcQ== rsab1024@example"
)
# The shape of a private key file; the body is random bytes, not a key.
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def wire_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def key_line(key_type: str, *fields: bytes) -> str:
    blob = wire_string(key_type.encode()) + b"".join(wire_string(field) for field in fields)
    return f"{key_type} {base64.b64encode(blob).decode()}"


# Parsing, without IO.


@pytest.mark.parametrize(
    ("text", "key_type", "bits"),
    [
        (ED25519, "ssh-ed25519", 256),
        (ECDSA_256, "ecdsa-sha2-nistp256", 256),
        (ECDSA_384, "ecdsa-sha2-nistp384", 384),
        (ECDSA_521, "ecdsa-sha2-nistp521", 521),
        (RSA_2048, "ssh-rsa", 2048),
    ],
)
def test_openssh_key_types_are_accepted(text: str, key_type: str, bits: int) -> None:
    parsed = parse_public_key(text)

    assert parsed.key_type == key_type
    assert parsed.bits == bits
    assert parsed.authorized_keys_line() == text


def test_fingerprint_matches_ssh_keygen() -> None:
    assert parse_public_key(ED25519).fingerprint == ED25519_FINGERPRINT
    assert parse_public_key(RSA_2048).fingerprint == RSA_2048_FINGERPRINT


def test_key_without_comment_is_accepted() -> None:
    text = " ".join(ED25519.split()[:2])

    assert parse_public_key(text + "\n").authorized_keys_line() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PRIVATE_KEY, "private key"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n", "private key"),
        ("---- BEGIN SSH2 PUBLIC KEY ----\nAAAAC3NzaC1lZDI1NTE5\n---- END SSH2 PUBLIC KEY ----", "ssh-keygen -i"),
        (RSA_1024, "1024 bits"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP1 old@example", "not supported"),
        ("ssh-ed25519", "one line"),
        ("hello world", "not supported"),
        ("ssh-ed25519 not*base64", "not base64"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIWKQ0nsKQpp6o0RGPzmnK7EZepwqFDN0TWhKpek+wz", "not valid base64"),
        (ED25519 + "\n" + RSA_2048, "single line"),
        (ED25519.replace("ssh-ed25519 ", "ssh-rsa ", 1), "type 'ssh-ed25519' but the line starts with 'ssh-rsa'"),
        (key_line("ssh-ed25519", b"\x01" * 31), "32 bytes"),
        (key_line("ssh-ed25519", b"\x01" * 32, b"extra"), "extra bytes"),
        (key_line("ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"\x01" * 64), "curve"),
        (key_line("ecdsa-sha2-nistp256", b"nistp256", b"\x02" + b"\x01" * 32), "uncompressed"),
        (key_line("ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 256)[:60], "ends too early"),
        (key_line("ssh-rsa", b"\x02", b"\x00" + b"\xff" * 256), "odd number"),
        (key_line("ssh-rsa", b"\x01\x00\x01", b"\xff" * 256), "negative"),
        (key_line("ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 2049), "at most 16384"),
        (ED25519 + " \x07bell", "printable"),
    ],
)
def test_bad_key_text_is_rejected_with_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_public_key(text)

    assert raised.value.field == "public_key"
    assert message in raised.value.message


def test_private_key_is_never_echoed() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_public_key(PRIVATE_KEY)

    assert "b3BlbnNzaC1rZXkt" not in raised.value.message


# Routes.


@with_tables
def test_key_add_list_delete(client: Client) -> None:
    _, token = customer(client, "keys@example.com", 0, T0)

    status, added = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519}, token)
    assert status == 201
    assert added["name"] == "laptop"
    assert added["type"] == "ssh-ed25519"
    assert added["fingerprint"] == ED25519_FINGERPRINT

    status, listed = call(client, "GET", "/v1/ssh-keys", token=token)
    assert status == 200
    assert [key["id"] for key in listed["ssh_keys"]] == [added["id"]]

    assert call(client, "DELETE", f"/v1/ssh-keys/{added['id']}", token=token)[0] == 200
    assert call(client, "GET", "/v1/ssh-keys", token=token)[1] == {"ssh_keys": []}
    assert call(client, "DELETE", f"/v1/ssh-keys/{added['id']}", token=token)[0] == 404


@with_tables
def test_same_key_twice_is_conflict(client: Client) -> None:
    _, token = customer(client, "twice@example.com", 0, T0)
    _, first = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": RSA_2048}, token)

    other_comment = RSA_2048.rsplit(" ", 1)[0] + " desktop@example"
    status, error = call(client, "POST", "/v1/ssh-keys", {"name": "again", "public_key": other_comment}, token)

    assert status == 409
    assert error["error"]["field"] == "public_key"
    assert first["id"] in error["error"]["message"]


@with_tables
def test_key_bad_input_names_field_and_writes_nothing(client: Client) -> None:
    _, token = customer(client, "bad@example.com", 0, T0)
    before = item_count()
    cases = [
        ({"name": "laptop"}, "public_key"),
        ({"name": "", "public_key": ED25519}, "name"),
        ({"name": "x" * 65, "public_key": ED25519}, "name"),
        ({"name": "tab\there", "public_key": ED25519}, "name"),
        ({"name": "laptop", "public_key": PRIVATE_KEY}, "public_key"),
        ({"name": "laptop", "public_key": RSA_1024}, "public_key"),
        ({"name": "laptop", "public_key": 42}, "public_key"),
        ({"name": "laptop", "public_key": ED25519, "admin": True}, "admin"),
    ]

    for body, field in cases:
        status, error = call(client, "POST", "/v1/ssh-keys", body, token)

        assert status == 400, body
        assert error["error"]["field"] == field, body
    assert item_count() == before


@with_tables
def test_other_customer_cannot_see_or_delete_key(client: Client) -> None:
    _, owner = customer(client, "owner@example.com", 0, T0)
    _, key = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519}, owner)
    _, intruder = customer(client, "intruder@example.com", 0, T0)

    assert call(client, "GET", f"/v1/ssh-keys/{key['id']}", token=intruder)[0] == 404
    assert call(client, "DELETE", f"/v1/ssh-keys/{key['id']}", token=intruder)[0] == 404
    assert call(client, "GET", "/v1/ssh-keys", token=intruder)[1] == {"ssh_keys": []}
    assert call(client, "GET", f"/v1/ssh-keys/{key['id']}", token=owner)[0] == 200


@with_tables
def test_keys_need_authentication(client: Client) -> None:
    assert call(client, "GET", "/v1/ssh-keys")[0] == 401
    assert call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519})[0] == 401


# Keys on VMs.


@with_tables
def test_vm_create_installs_stored_key(client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = customer(client, "install@example.com", 20_000_000, T0)
    _, key = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519}, token)

    with vultr_region(tmp_path, monkeypatch) as fake:
        body = {"name": "web1", "region": VULTR_REGION, "plan": "s1", "image": VULTR_IMAGE, "ssh_key": key["id"]}
        status, vm = call(client, "POST", "/v1/vms", body, token)

        assert status == 201, vm
        assert vm["state"] == "provisioning"
        assert ED25519 in fake.user_data[fake_instance_id(fake)]


def fake_instance_id(fake: FakeVultr) -> str:
    (instance_id,) = fake.instances
    return instance_id


@with_tables
def test_vm_create_with_other_customers_key_writes_nothing(client: Client) -> None:
    _, owner = customer(client, "keyowner@example.com", 0, T0)
    _, key = call(client, "POST", "/v1/ssh-keys", {"name": "laptop", "public_key": ED25519}, owner)
    _, token = customer(client, "borrower@example.com", 20_000_000, T0)
    before = item_count()

    body = {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12", "ssh_key": key["id"]}
    status, error = call(client, "POST", "/v1/vms", body, token)

    assert status == 400
    assert error["error"]["field"] == "ssh_key"
    assert item_count() == before
