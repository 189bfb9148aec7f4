"""Request schemas: the single description used to validate bodies and query strings
and to document them in the OpenAPI document (chalicelib.api.openapi). Unknown fields and
query parameters are rejected, so a typo never passes silently.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024
ALLOWED_CONTROLS = frozenset("\t\n\r")
# Embedding, override and isolate controls (U+202A to U+202E, U+2066 to U+2069).
BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}


@dataclass(frozen=True)
class Field:
    """One body field or query parameter. A `list` field contains strings of at most
    `max_length` characters, and at most `max_items` of them. A `dict` field is a JSON object
    that the route checks itself. A query parameter is always a `str` field."""

    name: str
    kind: type = str
    required: bool = True
    max_length: int = 256
    description: str = ""
    max_items: int = 50


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[Field, ...]

    def parse(self, data: Any) -> dict[str, Any]:
        """Validate a decoded body; return the known fields, raising InvalidRequest otherwise."""
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        known = {field.name: field for field in self.fields}
        for name in data:
            if name not in known:
                raise InvalidRequest(f"unknown field {name!r}; expected {', '.join(sorted(known))}", field=str(name)[:64])

        values: dict[str, Any] = {}
        for field in self.fields:
            if field.name not in data or data[field.name] is None:
                if field.required:
                    raise InvalidRequest(f"{field.name} is required", field=field.name)
                continue
            values[field.name] = _check_value(field, data[field.name])
        return values

    def parse_body(self, raw_body: str | bytes | None) -> dict[str, Any]:
        return self.parse(decode_json(raw_body))

    def parse_query(self, params: Mapping[str, str] | None) -> dict[str, str]:
        """Validate query parameters: known names, each given once; return their values."""
        params = params or {}
        known = {field.name: field for field in self.fields}
        values: dict[str, str] = {}
        for name in params:
            field = known.get(name)
            if field is None:
                expected = ", ".join(sorted(known)) or "none"
                raise InvalidRequest(f"unknown query parameter {name!r}; expected {expected}", field=str(name)[:64])
            repeated = getattr(params, "getlist", None)
            if repeated is not None and len(repeated(name)) > 1:
                raise InvalidRequest(f"query parameter {name} may be given only once", field=name)
            values[name] = _check_value(field, params[name])

        for field in self.fields:
            if field.required and field.name not in values:
                raise InvalidRequest(f"query parameter {field.name} is required", field=field.name)
        return values

    def to_openapi(self) -> dict[str, Any]:
        properties = {field.name: _field_openapi(field) for field in self.fields}
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
            "required": [field.name for field in self.fields if field.required],
        }


def _field_openapi(field: Field) -> dict[str, Any]:
    # `parse` reads a null optional field as left out, so the document allows null there.
    kind = _TYPE_NAMES[field.kind]
    document: dict[str, Any] = {"type": kind if field.required else [kind, "null"], "description": field.description}
    if field.kind is str:
        document["maxLength"] = field.max_length
    if field.kind is list:
        document["items"] = {"type": "string", "maxLength": field.max_length}
        document["maxItems"] = field.max_items
    return document


def _check_value(field: Field, value: Any) -> Any:
    if field.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"{field.name} must be an integer", field=field.name)
    if field.kind is bool and not isinstance(value, bool):
        raise InvalidRequest(f"{field.name} must be true or false", field=field.name)
    if field.kind is dict and not isinstance(value, dict):
        raise InvalidRequest(f"{field.name} must be a JSON object", field=field.name)
    if field.kind is str:
        if not isinstance(value, str):
            raise InvalidRequest(f"{field.name} must be a string", field=field.name)
        if len(value) > field.max_length:
            raise InvalidRequest(f"{field.name} must have at most {field.max_length} characters", field=field.name)
        _check_characters(field.name, value)
    if field.kind is list:
        _check_string_list(field, value)
    return value


def _check_string_list(field: Field, value: Any) -> None:
    if not isinstance(value, list):
        raise InvalidRequest(f"{field.name} must be a list of strings", field=field.name)
    if len(value) > field.max_items:
        raise InvalidRequest(f"{field.name} may have at most {field.max_items} entries", field=field.name)
    for item in value:
        if not isinstance(item, str):
            raise InvalidRequest(f"{field.name} must be a list of strings", field=field.name)
        if len(item) > field.max_length:
            raise InvalidRequest(f"each {field.name} entry must have at most {field.max_length} characters", field=field.name)
        _check_characters(field.name, item)


def _check_characters(name: str, text: str) -> None:
    """Reject control characters other than tab and line breaks, and bidirectional overrides,
    because they make stored text display differently from its content."""
    for character in text:
        if character in ALLOWED_CONTROLS:
            continue
        if unicodedata.category(character) == "Cc" or character in BIDI_CONTROLS:
            raise InvalidRequest(f"{name} contains the control character U+{ord(character):04X}", field=name)


def decode_json(raw_body: str | bytes | None) -> Any:
    if not raw_body:
        raise InvalidRequest("request body is missing; send a JSON object")
    if isinstance(raw_body, str):
        raw_body = raw_body.encode()
    if len(raw_body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest("request body nests JSON too deeply") from None


def query_param(params: Mapping[str, str] | None, name: str) -> str | None:
    return (params or {}).get(name)
