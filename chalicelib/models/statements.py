"""Conditional single-item writes sent together as PartiQL statements in BatchExecuteStatement.

Owns the statement text and each statement's outcome. Invariant: every statement writes one
item under its own condition, so a batch has the same effect as sending its statements one
by one, in any order. A statement that DynamoDB throttles is sent again, and one that still
fails is returned as failed, never dropped.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.models import Model

from chalicelib.models.base import connection

MAX_STATEMENTS = 25  # BatchExecuteStatement's limit per call
MAX_ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.05
# Statement error codes worth sending again. A resent statement that had run already fails its
# own condition and changes nothing.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)
# INSERT reports an existing key as DuplicateItem, and UPDATE a false WHERE as ConditionalCheckFailed.
CONDITION_CODES = frozenset({"ConditionalCheckFailed", "DuplicateItem"})

AttributeValue = dict[str, Any]


class Result(Enum):
    APPLIED = "applied"
    CONDITION_FAILED = "condition_failed"
    FAILED = "failed"


@dataclass(frozen=True)
class Statement:
    text: str
    parameters: tuple[AttributeValue, ...]


@dataclass(frozen=True)
class Outcome:
    result: Result
    item: AttributeValue | None = None  # the attributes an UPDATE changed, as they are after it
    error: str | None = None  # code and message when the statement failed
    retryable: bool = False


def insert(item: Model) -> Statement:
    """Build an INSERT of `item` that DynamoDB rejects with DuplicateItem when its key exists."""
    values = item.serialize()
    names = list(values)
    fields = ", ".join(f"'{name}': ?" for name in names)
    return Statement(f'INSERT INTO "{item.Meta.table_name}" VALUE {{{fields}}}', tuple(values[name] for name in names))


def update(
    model: type[Model],
    key: dict[str, Any],
    assignments: dict[str, Any],
    increments: dict[str, int],
    expected: dict[str, Any],
) -> Statement:
    """Build an UPDATE of one item that sets `assignments` and adds `increments` only where
    every `expected` attribute has its value. DynamoDB returns the attributes it changed."""
    attributes = model.get_attributes()
    clauses, parameters = [], []
    for name, value in assignments.items():
        clauses.append(f'SET "{attributes[name].attr_name}" = ?')
        parameters.append(_value(attributes[name], value))
    for name, amount in increments.items():
        stored = attributes[name].attr_name
        clauses.append(f'SET "{stored}" = "{stored}" + ?')
        parameters.append(_value(attributes[name], amount))
    conditions = []
    for name, value in {**key, **expected}.items():
        conditions.append(f'"{attributes[name].attr_name}" = ?')
        parameters.append(_value(attributes[name], value))
    text = f'UPDATE "{model.Meta.table_name}" {" ".join(clauses)} WHERE {" AND ".join(conditions)} RETURNING MODIFIED NEW *'
    return Statement(text, tuple(parameters))


def _value(attribute: Attribute[Any], value: Any) -> AttributeValue:
    return {attribute.attr_type: attribute.serialize(value)}


def execute(statements: list[Statement]) -> list[Outcome]:
    """Send write statements in batches of MAX_STATEMENTS and return one outcome per statement.

    Statements whose error code is in RETRYABLE_CODES are sent again, after a growing random
    wait, up to MAX_ATTEMPTS times. An error of the whole request, such as a network failure or
    a missing table, propagates, and the statements of earlier batches keep their effect.
    """
    outcomes: list[Outcome] = []
    for offset in range(0, len(statements), MAX_STATEMENTS):
        part = range(offset, min(offset + MAX_STATEMENTS, len(statements)))
        done = _execute_batch({index: statements[index] for index in part})
        outcomes.extend(done[index] for index in part)
    return outcomes


def _execute_batch(pending: dict[int, Statement]) -> dict[int, Outcome]:
    done: dict[int, Outcome] = {}
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, FIRST_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - spreads retries, not a secret
        positions = list(pending)
        response = connection().client.batch_execute_statement(
            Statements=[{"Statement": pending[p].text, "Parameters": list(pending[p].parameters)} for p in positions]
        )
        for position, statement_response in zip(positions, response["Responses"], strict=True):
            done[position] = _outcome(statement_response)
        pending = {p: pending[p] for p in positions if done[p].retryable}
        if not pending:
            break
    return done


def _outcome(response: dict[str, Any]) -> Outcome:
    error = response.get("Error")
    if error is None:
        return Outcome(Result.APPLIED, item=response.get("Item"))
    code = error.get("Code", "")
    if code in CONDITION_CODES:
        return Outcome(Result.CONDITION_FAILED)
    return Outcome(Result.FAILED, error=f"{code}: {error.get('Message', '')}", retryable=code in RETRYABLE_CODES)
