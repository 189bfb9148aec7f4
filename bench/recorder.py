"""Record every DynamoDB request the application sends, from botocore events on its clients.

Hooks run on `before-call`, `before-send` and `after-call` of the "dynamodb" service, so the
product code runs unchanged, on any number of threads. While recording they only keep references
and timestamps; the request bodies are decoded afterwards, so the timed run pays little for them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.capacity import RequestRecord

_STARTED = "bench_started"
_BODY = "bench_body"


@dataclass
class _RawCall:
    operation: str
    body: bytes | str
    response: dict[str, Any]
    status: int
    started: float
    seconds: float


@dataclass
class Recording:
    """The calls seen while recording, in the order they finished; `attempts` counts HTTP sends,
    so retries show as extra."""

    calls: list[_RawCall] = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_STARTED] = time.perf_counter()
        context[_BODY] = params.get("body", b"")

    def before_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    def after_call(self, model: Any, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        finished = time.perf_counter()
        started = context.pop(_STARTED, finished)
        call = _RawCall(model.name, context.pop(_BODY, b""), parsed, http_response.status_code, started, finished - started)
        with self._lock:
            self.calls.append(call)

    @property
    def retries(self) -> int:
        return self.attempts - len(self.calls)

    def records(self) -> list[RequestRecord]:
        """Decode the recorded calls into wire-format parameters and responses."""
        return [_decode(call) for call in self.calls]


def _decode(call: _RawCall) -> RequestRecord:
    body = call.body.decode() if isinstance(call.body, bytes) else call.body
    params = json.loads(body) if body else {}
    error_code = None
    if call.status >= 300:
        error_code = call.response.get("Error", {}).get("Code", f"HTTP {call.status}")
    return RequestRecord(call.operation, params, call.response, error_code, call.seconds, call.started)


def dynamodb_clients() -> list[Any]:
    """Return the distinct botocore clients of every table model and of transactions."""
    from chalicelib.models import ALL_MODELS
    from chalicelib.models.base import connection

    clients = [model._get_connection().connection.client for model in ALL_MODELS]
    clients.append(connection().client)
    return list({id(client): client for client in clients}.values())


@contextmanager
def record_requests() -> Iterator[Recording]:
    """Record every DynamoDB call made inside the block.

    Raises RuntimeError afterwards if PynamoDB replaced a client meanwhile, because calls on
    the new client would have gone unrecorded.
    """
    recording = Recording()
    clients = dynamodb_clients()
    events = (
        ("before-call.dynamodb", recording.before_call),
        ("before-send.dynamodb", recording.before_send),
        ("after-call.dynamodb", recording.after_call),
    )
    for client in clients:
        for event, handler in events:
            client.meta.events.register(event, handler)
    try:
        yield recording
    finally:
        for client in clients:
            for event, handler in events:
                client.meta.events.unregister(event, handler)

    if {id(client) for client in dynamodb_clients()} != {id(client) for client in clients}:
        raise RuntimeError("a DynamoDB client was replaced while recording; some requests were not recorded")
