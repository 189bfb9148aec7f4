"""Parse and check OpenSSH public keys ("<type> <base64 blob> [comment]"). Pure, no IO.

The blob is decoded in the SSH wire format of RFC 4253 section 6.6, RFC 5656 section 3.1
and RFC 8709 section 4. Its embedded type must match the declared one, and every field must
have the size its algorithm calls for, so a truncated or pasted-together key is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from chalicelib.errors import InvalidRequest

FIELD = "public_key"
MAX_KEY_TEXT_LENGTH = 16 * 1024
MAX_COMMENT_LENGTH = 256
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 16384
ED25519_KEY_BYTES = 32
# Curve name in the blob and the byte length of one coordinate, per ECDSA key type.
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": ("nistp256", 32, 256),
    "ecdsa-sha2-nistp384": ("nistp384", 48, 384),
    "ecdsa-sha2-nistp521": ("nistp521", 66, 521),
}
KEY_TYPES = ("ssh-ed25519", *ECDSA_CURVES, "ssh-rsa")
UNCOMPRESSED_POINT = 0x04
_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_PRIVATE_KEY_MARKERS = ("PRIVATE KEY", "PuTTY-User-Key-File")
_SSH2_PUBLIC_KEY_MARKER = "BEGIN SSH2 PUBLIC KEY"


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    bits: int
    comment: str

    @property
    def fingerprint(self) -> str:
        """The SHA256 fingerprint as `ssh-keygen -l` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def authorized_keys_line(self) -> str:
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.key_type} {encoded} {self.comment}".rstrip()


def parse_public_key(text: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise InvalidRequest naming what is wrong."""
    _reject_other_formats(text)
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise _invalid("public_key must be one line such as \"ssh-ed25519 AAAAC3Nz... you@laptop\"")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""

    if key_type not in KEY_TYPES:
        raise _invalid(f"key type {key_type[:40]!r} is not supported; use one of {', '.join(KEY_TYPES)}")
    if len(comment) > MAX_COMMENT_LENGTH or not comment.isprintable():
        raise _invalid(f"the key comment must be printable text of at most {MAX_COMMENT_LENGTH} characters")

    blob = _decode_blob(encoded)
    reader = _WireReader(blob)
    embedded = reader.read_text()
    if embedded != key_type:
        raise _invalid(f"the key data is of type {embedded[:40]!r} but the line starts with {key_type!r}")
    bits = _check_key_fields(key_type, reader)
    if not reader.at_end():
        raise _invalid("the key data has extra bytes after the key; copy the .pub file again")
    return PublicKey(key_type=key_type, blob=blob, bits=bits, comment=comment)


def _reject_other_formats(text: str) -> None:
    if len(text) > MAX_KEY_TEXT_LENGTH:
        raise _invalid(f"public_key must be at most {MAX_KEY_TEXT_LENGTH} characters")
    if any(marker in text for marker in _PRIVATE_KEY_MARKERS):
        raise _invalid("this is a private key; never share it. Paste the public key from the .pub file instead")
    if _SSH2_PUBLIC_KEY_MARKER in text:
        raise _invalid("this is an RFC 4716 (PuTTY or SSH2) public key; convert it with `ssh-keygen -i -f FILE`")
    if "\n" in text.strip() or "\r" in text.strip():
        raise _invalid("public_key must be a single line; add one key at a time")


def _decode_blob(encoded: str) -> bytes:
    if not _BASE64_TEXT.match(encoded):
        raise _invalid("the key data is not base64 text")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise _invalid("the key data is not valid base64; copy the whole .pub file line") from None


def _check_key_fields(key_type: str, reader: _WireReader) -> int:
    """Read the algorithm's fields from the blob and return the key size in bits."""
    if key_type == "ssh-ed25519":
        if len(reader.read_string()) != ED25519_KEY_BYTES:
            raise _invalid(f"an ssh-ed25519 key must contain {ED25519_KEY_BYTES} bytes of key data")
        return 256

    if key_type in ECDSA_CURVES:
        curve, coordinate_bytes, bits = ECDSA_CURVES[key_type]
        if reader.read_text() != curve:
            raise _invalid(f"the curve inside the key data does not match {key_type!r}")
        point = reader.read_string()
        if len(point) != 1 + 2 * coordinate_bytes or point[0] != UNCOMPRESSED_POINT:
            raise _invalid(f"the {key_type} key data does not contain an uncompressed {curve} point")
        return bits

    exponent = reader.read_mpint()
    modulus = reader.read_mpint()
    bits = modulus.bit_length()
    if exponent < 3 or exponent % 2 == 0:
        raise _invalid("the RSA public exponent must be an odd number of at least 3")
    if bits < RSA_MIN_BITS:
        raise _invalid(f"this RSA key has {bits} bits; use at least {RSA_MIN_BITS}, or better an ssh-ed25519 key")
    if bits > RSA_MAX_BITS:
        raise _invalid(f"this RSA key has {bits} bits; at most {RSA_MAX_BITS} are accepted")
    return bits


class _WireReader:
    """A reader of SSH wire-format fields: uint32-length-prefixed strings and mpints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read_string(self) -> bytes:
        if self.offset + 4 > len(self.data):
            raise _invalid("the key data ends too early; copy the whole .pub file line")
        length = int.from_bytes(self.data[self.offset : self.offset + 4], "big")
        start = self.offset + 4
        if start + length > len(self.data):
            raise _invalid("the key data ends too early; copy the whole .pub file line")
        self.offset = start + length
        return self.data[start : self.offset]

    def read_text(self) -> str:
        value = self.read_string()
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise _invalid("the key data does not start with a key type name") from None

    def read_mpint(self) -> int:
        value = self.read_string()
        if value and value[0] & 0x80:
            raise _invalid("the key data contains a negative RSA number; copy the whole .pub file line")
        return int.from_bytes(value, "big")

    def at_end(self) -> bool:
        return self.offset == len(self.data)


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, field=FIELD)
