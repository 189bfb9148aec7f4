"""Request validation against a provider's OpenAPI 3.0 document, for fake provider servers.

Each spec file is parsed once per process and shared by every fake that uses it, because
the provider documents are megabytes of YAML. Relative `$ref`s to other local files are
followed and remote ones are rejected, so validation never touches the network. Each
loaded document first goes through `merge_closed_all_of`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema_path import SchemaPath
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.testing import MockRequest
from openapi_core.validation.request.exceptions import MissingRequestBody, ParameterValidationError
from openapi_core.validation.request.validators import V30RequestBodyValidator, V30RequestParametersValidator

# The provider documents live in shared/provider-specs beside the repository checkout,
# unless LOBSTER_PROVIDER_SPECS names another folder.
DEFAULT_SPECS_DIR = Path(__file__).resolve().parents[3] / "shared" / "provider-specs"

# Tag of the YAML 1.1 timestamp resolver, which would turn example dates into datetime
# objects that JSON Schema cannot compare with strings.
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _SpecLoader(yaml.CSafeLoader):
    """The libyaml safe loader, leaving timestamps as the strings JSON would carry."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class RequestCheck:
    """The outcome of checking one request against the document."""

    errors: tuple[str, ...] = ()
    unknown_path: bool = False
    method_not_allowed: bool = False

    @property
    def ok(self) -> bool:
        return not (self.errors or self.unknown_path or self.method_not_allowed)


class OpenApiRequestValidator:
    """Checks path, method, parameters and JSON body of requests against one document.

    `server_url` is the server the document's paths are relative to, by default the
    first entry of `servers`. Security requirements are not checked here: each fake
    enforces its provider's authentication itself, with the provider's error body.
    """

    def __init__(self, spec_path: str | Path, server_url: str | None = None) -> None:
        path = Path(spec_path).resolve()
        loader = _DocumentLoader()
        document = loader.load(path.as_uri())
        handlers = {"file": loader.load, "http": _refuse_remote, "https": _refuse_remote}
        self.spec = SchemaPath.from_dict(document, base_uri=path.as_uri(), handlers=handlers)
        self.server_url = server_url or document["servers"][0]["url"]
        self._parameters = V30RequestParametersValidator(self.spec)
        self._body = V30RequestBodyValidator(self.spec)
        # Lazily resolved references are cached inside the spec objects, and the fakes
        # serve requests from several threads, so checks run one at a time.
        self._lock = threading.Lock()

    def check(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
    ) -> RequestCheck:
        """Check one request. `path` is the URL path as sent, `query` is what parse_qs returns."""
        request = MockRequest(
            self.server_url,
            method,
            path,
            args=dict(query or {}),
            headers=dict(headers or {}),
            data=body,
            content_type=content_type if body else "",
        )

        with self._lock:
            problems = list(self._parameters.iter_errors(request)) + list(self._body.iter_errors(request))

        return _summarize(problems)


def _summarize(problems: Iterable[Exception]) -> RequestCheck:
    errors: list[str] = []
    for problem in problems:
        if isinstance(problem, OperationNotFound):
            return RequestCheck(method_not_allowed=True, errors=(str(problem),))
        if isinstance(problem, PathError):
            return RequestCheck(unknown_path=True, errors=(str(problem),))
        if isinstance(problem, MissingRequestBody):
            continue
        errors.extend(_describe(problem))
    return RequestCheck(errors=tuple(dict.fromkeys(errors)))


def _describe(problem: Exception) -> list[str]:
    """Turn an openapi-core error into messages that name the offending field."""
    if isinstance(problem, ParameterValidationError):
        where = f"{problem.location} parameter {problem.name}"
    else:
        where = "body"

    cause = problem.__cause__
    schema_errors = list(getattr(cause, "schema_errors", ()) or getattr(problem, "schema_errors", ()))
    if not schema_errors:
        return [str(problem) if where == "body" else f"{where}: {cause or problem}"]
    return [message for error in schema_errors for message in _describe_schema_error(where, error)]


def _describe_schema_error(where: str, error: SchemaError) -> list[str]:
    # A failed oneOf/anyOf only reports "not valid under any of the given schemas", so the
    # messages come from the branches that came closest (fewest errors).
    if not error.context:
        return [f"{_location(where, error)}: {error.message}"]

    by_branch: dict[Any, list[SchemaError]] = {}
    for branch_error in error.context:
        by_branch.setdefault(branch_error.relative_schema_path[0], []).append(branch_error)
    fewest = min(len(errors) for errors in by_branch.values())
    closest = [errors for errors in by_branch.values() if len(errors) == fewest]
    return [" or ".join(f"{_location(where, e)}: {e.message}" for branch in closest for e in branch)]


def _location(where: str, error: SchemaError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return f"{where}.{path}" if path else where


class _DocumentLoader:
    """Loads local YAML or JSON documents by file URI, each once."""

    def __init__(self) -> None:
        self._documents: dict[str, Any] = {}
        self._lock = threading.Lock()

    def load(self, uri: str) -> Any:
        with self._lock:
            if uri not in self._documents:
                path = url2pathname(urlsplit(uri).path)
                with open(path, encoding="utf-8") as handle:
                    document = yaml.load(handle, Loader=_SpecLoader)
                self._documents[uri] = merge_closed_all_of(document)
            return self._documents[uri]


def _refuse_remote(uri: str) -> Any:
    raise ValueError(f"remote $ref {uri} is not followed because validation uses local files only")


def merge_closed_all_of(node: Any) -> Any:
    """Merge `allOf` lists of inline object schemas when a member is closed, in place.

    Some provider documents combine a closed object (`additionalProperties: false`) with
    another object in `allOf`, meaning "any property of either part". JSON Schema reads it
    as "only the closed part's properties", so every real request would fail. The members
    are merged into one closed object with the union of their properties. An `allOf`
    with a `$ref` member is left alone, because its target may sit in another file.
    """
    if isinstance(node, list):
        for item in node:
            merge_closed_all_of(item)
        return node
    if not isinstance(node, dict):
        return node

    for value in node.values():
        merge_closed_all_of(value)

    members = node.get("allOf")
    if isinstance(members, list) and _is_mergeable(members):
        del node["allOf"]
        _merge_into(node, members)
    return node


def _is_mergeable(members: list[Any]) -> bool:
    if not all(isinstance(member, dict) and "$ref" not in member for member in members):
        return False
    if not all("properties" in member or member.get("type") == "object" for member in members):
        return False
    return any(member.get("additionalProperties") is False for member in members)


def _merge_into(node: dict[str, Any], members: list[dict[str, Any]]) -> None:
    properties: dict[str, Any] = dict(node.get("properties", {}))
    required: list[str] = list(node.get("required", []))

    for member in members:
        for name, schema in member.get("properties", {}).items():
            properties[name] = {"allOf": [properties[name], schema]} if name in properties else schema
        required.extend(name for name in member.get("required", []) if name not in required)
        for keyword, value in member.items():
            if keyword not in ("properties", "required", "additionalProperties"):
                node.setdefault(keyword, value)

    node["type"] = "object"
    node["properties"] = properties
    node["additionalProperties"] = False
    if required:
        node["required"] = required


def provider_spec_path(*parts: str) -> Path:
    """Return the path of a provider document, such as ("linode", "openapi.yaml")."""
    return Path(os.environ.get("LOBSTER_PROVIDER_SPECS") or DEFAULT_SPECS_DIR).joinpath(*parts)


@functools.cache
def load_validator(spec_path: str, server_url: str | None = None) -> OpenApiRequestValidator:
    """Return the process-wide validator for `spec_path`, parsing the document on first use."""
    return OpenApiRequestValidator(spec_path, server_url)
