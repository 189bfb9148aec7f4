"""Request schemas: the single description used to validate bodies and query strings
and to document them. Unknown fields are rejected, so a typo never passes silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024
_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: type = str
    required: bool = True
    max_length: int = 256
    description: str = ""


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

    def parse_body(self, raw_body: bytes | None) -> dict[str, Any]:
        return self.parse(decode_json(raw_body))

    def to_openapi(self) -> dict[str, Any]:
        properties = {
            field.name: {"type": _TYPE_NAMES[field.kind], "description": field.description}
            | ({"maxLength": field.max_length} if field.kind is str else {})
            for field in self.fields
        }
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
            "required": [field.name for field in self.fields if field.required],
        }


def _check_value(field: Field, value: Any) -> Any:
    if field.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"{field.name} must be an integer", field=field.name)
    if field.kind is bool and not isinstance(value, bool):
        raise InvalidRequest(f"{field.name} must be true or false", field=field.name)
    if field.kind is str:
        if not isinstance(value, str):
            raise InvalidRequest(f"{field.name} must be a string", field=field.name)
        if len(value) > field.max_length:
            raise InvalidRequest(f"{field.name} must have at most {field.max_length} characters", field=field.name)
    return value


def decode_json(raw_body: bytes | None) -> Any:
    if not raw_body:
        raise InvalidRequest("request body is missing; send a JSON object")
    if len(raw_body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None


def query_param(params: Mapping[str, str] | None, name: str) -> str | None:
    return (params or {}).get(name)
