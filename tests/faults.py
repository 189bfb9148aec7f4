"""Fault injection at the DynamoDB wire: make the Nth write fail before it is sent, or
after the server applied it (a client that timed out after the commit).

Handlers are registered on the botocore clients that the models and transactions use, so
the product code runs unchanged against the real DynamoDB Local server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.models import ALL_MODELS
from chalicelib.models.base import connection

WRITE_NUMBER = "lobster_write_number"
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem", "BatchExecuteStatement"}
)


class InjectedCrash(BaseException):
    """The process died at this point, so nothing after it ran.

    It derives from BaseException, like KeyboardInterrupt, so handlers that isolate
    ordinary errors do not catch it, just as they could not catch a killed process.
    """


@dataclass
class WriteCounter:
    """Writes numbered in the order they start, across threads. Each write keeps its number in
    botocore's per-call context, so its commit matches it even when other threads start
    writes in between."""

    crash_at: int | None = None  # 1-based index of the write that crashes
    after_commit: bool = True
    writes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, model: Any, params: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name not in WRITE_OPERATIONS:
            return
        with self.lock:
            self.writes.append(model.name)
            number = len(self.writes)
        context[WRITE_NUMBER] = number
        self._maybe_crash(model.name, number, committed=False)

    def after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            self._maybe_crash(model.name, context[WRITE_NUMBER], committed=True)

    def _maybe_crash(self, name: str, number: int, committed: bool) -> None:
        if committed != self.after_commit:
            return
        with self.lock:
            if self.crash_at != number:
                return
            self.crash_at = None
        raise InjectedCrash(f"crash at write {number} ({name}, committed={committed})")


def _clients() -> list[Any]:
    clients = [model._get_connection().connection.client for model in ALL_MODELS]
    clients.append(connection().client)
    unique: dict[int, Any] = {id(client): client for client in clients}
    return list(unique.values())


@contextmanager
def count_writes(crash_at: int | None = None, after_commit: bool = True) -> Iterator[WriteCounter]:
    counter = WriteCounter(crash_at=crash_at, after_commit=after_commit)
    clients = _clients()
    for client in clients:
        client.meta.events.register("before-call.dynamodb", counter.before)
        client.meta.events.register("after-call.dynamodb", counter.after)
    try:
        yield counter
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", counter.before)
            client.meta.events.unregister("after-call.dynamodb", counter.after)


@dataclass
class StatementFaults:
    """A fault for the first `count` write statements sent in BatchExecuteStatement calls: each
    gets the error `code` in place of DynamoDB's response. With `executed` False the statements
    are removed from the request first, because DynamoDB does not run a throttled statement.
    With `executed` True they run and only their response is lost."""

    count: int
    code: str = "ThrottlingError"
    executed: bool = False
    verb: str = ""  # only statements that start with it, such as "UPDATE", or all when empty
    faulted: list[str] = field(default_factory=list)  # the faulted statements, in the order sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        request = json.loads(params["body"])
        chosen = self._choose(request["Statements"])
        context[FAULTED_POSITIONS] = chosen
        if self.executed or not chosen:
            return None
        request["Statements"] = [
            statement for position, statement in enumerate(request["Statements"]) if position not in chosen
        ]
        if not request["Statements"]:
            return _EmptyResponse(), {"Responses": [], "ResponseMetadata": {"HTTPStatusCode": 200}}
        params["body"] = json.dumps(request).encode()
        return None

    def after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        chosen = context.get(FAULTED_POSITIONS, [])
        if not chosen or "Responses" not in parsed:
            return
        responses = list(parsed["Responses"])
        for position in sorted(chosen):
            fault = {"Error": {"Code": self.code, "Message": "injected by the test"}}
            if self.executed:
                responses[position] = fault
            else:
                responses.insert(position, fault)
        parsed["Responses"] = responses

    def _choose(self, statements: list[dict[str, Any]]) -> list[int]:
        with self.lock:
            eligible = [position for position, statement in enumerate(statements) if statement["Statement"].startswith(self.verb)]
            chosen = eligible[: max(0, self.count - len(self.faulted))]
            self.faulted.extend(statements[position]["Statement"] for position in chosen)
        return chosen


FAULTED_POSITIONS = "lobster_faulted_statements"


class _EmptyResponse:
    """The HTTP response botocore receives when every statement of a request was removed."""

    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only


@contextmanager
def fault_statements(
    count: int, code: str = "ThrottlingError", executed: bool = False, verb: str = ""
) -> Iterator[StatementFaults]:
    faults = StatementFaults(count, code, executed, verb)
    client = connection().client
    client.meta.events.register("before-call.dynamodb.BatchExecuteStatement", faults.before)
    client.meta.events.register("after-call.dynamodb.BatchExecuteStatement", faults.after)
    try:
        yield faults
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchExecuteStatement", faults.before)
        client.meta.events.unregister("after-call.dynamodb.BatchExecuteStatement", faults.after)
