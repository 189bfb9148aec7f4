"""A customer's stored SSH public keys: add, list, delete, and look up one for a VM.

Only keys that pass `keyformat.parse_public_key` are stored, so any stored key can be
handed to a backend as it is. A key's id derives from its key data, and it is written
only if absent, so an account stores each key at most once even under concurrent adds.
"""

from __future__ import annotations

import hashlib
import re

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.clock import iso, now
from chalicelib.errors import Conflict, InvalidRequest, LimitReached, NotFound
from chalicelib.log import logger
from chalicelib.models.sshkeys import SshKey
from chalicelib.sshkeys.keyformat import parse_public_key

KEY_ID_HEX_DIGITS = 12
MAX_KEYS_PER_ACCOUNT = 50
MAX_NAME_LENGTH = 64
KEY_ID_PATTERN = re.compile(r"^key_[0-9a-f]{12}$")


def add_key(account_id: str, name: str, public_key: str) -> SshKey:
    """Check and store a public key for the account."""
    name = validate_key_name(name)
    parsed = parse_public_key(public_key)
    if len(list_keys(account_id)) >= MAX_KEYS_PER_ACCOUNT:
        raise LimitReached(f"an account may store at most {MAX_KEYS_PER_ACCOUNT} SSH keys; delete one first")

    key = SshKey(
        account_id,
        "key_" + hashlib.sha256(parsed.blob).hexdigest()[:KEY_ID_HEX_DIGITS],
        name=name,
        public_key=parsed.authorized_keys_line(),
        key_type=parsed.key_type,
        bits=parsed.bits,
        fingerprint=parsed.fingerprint,
        created_at=iso(now()),
    )
    try:
        key.save(condition=SshKey.key_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        stored = get_key(account_id, key.key_id)
        raise Conflict(f"this key is already stored as {stored.key_id} ({stored.name})", field="public_key") from None
    logger.info("ssh_key_added", extra={"account_id": account_id, "key_id": key.key_id, "fingerprint": key.fingerprint})
    return key


def validate_key_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidRequest(f"name must be 1 to {MAX_NAME_LENGTH} printable characters", field="name")
    return name


def list_keys(account_id: str) -> list[SshKey]:
    return sorted(SshKey.query(account_id, consistent_read=True), key=lambda key: (key.created_at, key.key_id))


def get_key(account_id: str, key_id: str) -> SshKey:
    if not KEY_ID_PATTERN.match(key_id):
        raise NotFound(f"SSH key {key_id[:64]!r} not found", field="key_id")
    try:
        return SshKey.get(account_id, key_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"SSH key {key_id!r} not found", field="key_id") from None


def delete_key(account_id: str, key_id: str) -> None:
    """Delete a stored key. VMs that were created with it keep it installed."""
    key = get_key(account_id, key_id)
    key.delete()
    logger.info("ssh_key_deleted", extra={"account_id": account_id, "key_id": key_id})


def public_key_for(account_id: str, key_id: str, field: str = "ssh_key") -> str:
    """Return the authorized_keys line of the account's key `key_id` for a VM request.

    An unknown key, or another account's, is a bad request field rather than a 404,
    because the key is named in the request body.
    """
    try:
        return get_key(account_id, key_id).public_key
    except NotFound:
        raise InvalidRequest(f"SSH key {key_id[:64]!r} does not exist; list your keys at /v1/ssh-keys", field=field) from None


def key_json(key: SshKey) -> dict[str, object]:
    return {
        "id": key.key_id,
        "name": key.name,
        "type": key.key_type,
        "bits": key.bits,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "created_at": key.created_at,
    }
