"""Capacity units of recorded DynamoDB requests, by the rules in bench.itemsize and AWS's guide.

A write costs the larger of the item before and after it. Each image comes from the response
when the request asked for it (PynamoDB's UpdateItem asks for ALL_NEW). Otherwise it is the last
image of the same key that an earlier recorded request read or wrote. A write whose image is
unknown is charged on what is known and marked `estimated`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.itemsize import (
    TRANSACTION_FACTOR,
    Item,
    batch_get_read_units,
    item_size,
    query_read_units,
    read_units,
    write_units,
)

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
OK = "ok"
# The condition text PynamoDB sends for `Model.attr.does_not_exist()`: "attribute_not_exists (#0)".
_NOT_EXISTS = re.compile(r"^\s*attribute_not_exists\s*\(\s*(#\w+)\s*\)\s*$")


@dataclass(frozen=True)
class IndexSchema:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TableSchema:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[IndexSchema, ...] = ()

    def key_of(self, item: Item) -> tuple[str, ...]:
        return tuple(json.dumps(item[name], sort_keys=True, default=str) for name in self.keys)

    def project(self, item: Item, index: IndexSchema) -> dict[str, Any]:
        """Return the index entry that `item` puts into `index`."""
        if index.projection == "ALL":
            return dict(item)
        projected_names = set(self.keys) | set(index.keys) | set(index.included)
        return {name: value for name, value in item.items() if name in projected_names}


def schema_from_description(description: Mapping[str, Any]) -> TableSchema:
    """Build a TableSchema from a DescribeTable "Table" description."""
    indexes = []
    for index in [*description.get("GlobalSecondaryIndexes", []), *description.get("LocalSecondaryIndexes", [])]:
        projection = index.get("Projection", {})
        indexes.append(
            IndexSchema(
                name=index["IndexName"],
                keys=tuple(key["AttributeName"] for key in index["KeySchema"]),
                projection=projection.get("ProjectionType", "ALL"),
                included=frozenset(projection.get("NonKeyAttributes", [])),
            )
        )
    return TableSchema(
        name=description["TableName"],
        keys=tuple(key["AttributeName"] for key in description["KeySchema"]),
        indexes=tuple(indexes),
    )


@dataclass
class RequestRecord:
    """One DynamoDB API call: its wire-format request parameters and its parsed response."""

    operation: str
    params: dict[str, Any]
    response: dict[str, Any]
    error_code: str | None
    seconds: float
    started: float = 0.0  # time.perf_counter() when the call began


@dataclass
class Charge:
    """The cost of one request on one table."""

    table: str
    operation: str
    outcome: str
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0
    item_bytes: int = 0
    estimated: bool = False
    reported_units: float | None = None
    statements: int = 0  # PartiQL statements of a BatchExecuteStatement that this charge covers


@dataclass
class ItemImages:
    """The last known image of each item the recorded requests touched; None means "absent"."""

    images: dict[tuple[str, tuple[str, ...]], Item | None] = field(default_factory=dict)

    def lookup(self, table: TableSchema, key: Item) -> tuple[bool, Item | None]:
        marker = (table.name, table.key_of(key))
        if marker not in self.images:
            return False, None
        return True, self.images[marker]

    def remember(self, table: TableSchema, key: Item, item: Item | None) -> None:
        self.images[(table.name, table.key_of(key))] = item

    def forget(self, table: TableSchema, key: Item) -> None:
        self.images.pop((table.name, table.key_of(key)), None)


def index_write_units(table: TableSchema, old: Item | None, new: Item | None) -> int:
    """Return the write units a table write spends on its secondary indexes.

    An index costs nothing when the item is in it neither before nor after the write. Adding
    or removing an entry costs one write, and changing an index key costs two (a delete and a
    put). A change to projected attributes alone costs one write.
    """
    units = 0
    for index in table.indexes:
        old_entry = table.project(old, index) if old is not None and _indexed(old, index) else None
        new_entry = table.project(new, index) if new is not None and _indexed(new, index) else None
        if old_entry is None and new_entry is None:
            continue
        if old_entry is None or new_entry is None:
            units += write_units(item_size(old_entry or new_entry or {}))
            continue
        if any(old_entry[key] != new_entry[key] for key in index.keys):
            units += write_units(item_size(old_entry)) + write_units(item_size(new_entry))
        elif old_entry != new_entry:
            units += write_units(max(item_size(old_entry), item_size(new_entry)))
    return units


def _indexed(item: Item, index: IndexSchema) -> bool:
    return all(key in item for key in index.keys)


class Accountant:
    """Turns recorded requests into charges, keeping the item images the rules need."""

    def __init__(self, schemas: Iterable[TableSchema]) -> None:
        self.schemas = {schema.name: schema for schema in schemas}
        self.images = ItemImages()

    def charge(self, record: RequestRecord) -> list[Charge]:
        handler = getattr(self, f"_charge_{_snake(record.operation)}", None)
        if handler is None:
            return [
                Charge(table=record.params.get("TableName", "-"), operation=record.operation, outcome=_outcome(record))
            ]
        charges: list[Charge] = handler(record)
        _attach_reported(charges, record.response)
        return charges

    # Reads.

    def _charge_get_item(self, record: RequestRecord) -> list[Charge]:
        table = self.schemas[record.params["TableName"]]
        charge = Charge(table.name, record.operation, _outcome(record))
        if record.error_code is not None:
            return [charge]

        item = record.response.get("Item")
        charge.item_bytes = item_size(item) if item else 0
        charge.read_units = read_units(charge.item_bytes, bool(record.params.get("ConsistentRead")))
        if "ProjectionExpression" not in record.params:
            self.images.remember(table, record.params["Key"], item)
        return [charge]

    def _charge_batch_get_item(self, record: RequestRecord) -> list[Charge]:
        charges = []
        for table_name, request in record.params["RequestItems"].items():
            table = self.schemas[table_name]
            charge = Charge(table_name, record.operation, _outcome(record))
            charges.append(charge)
            if record.error_code is not None:
                continue
            returned = record.response.get("Responses", {}).get(table_name, [])
            unprocessed = record.response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", [])
            missing = len(request["Keys"]) - len(returned) - len(unprocessed)
            sizes = [item_size(item) for item in returned] + [0] * missing
            charge.item_bytes = sum(sizes)
            charge.read_units = batch_get_read_units(sizes, bool(request.get("ConsistentRead")))
            if "ProjectionExpression" not in request:
                for item in returned:
                    self.images.remember(table, item, item)
        return charges

    def _charge_query(self, record: RequestRecord) -> list[Charge]:
        table = self.schemas[record.params["TableName"]]
        charge = Charge(table.name, _read_operation(record), _outcome(record))
        if record.error_code is not None:
            return [charge]

        items = record.response.get("Items", [])
        sizes = [item_size(item) for item in items]
        # Filtered-out items are read but not returned; count them at the mean returned size.
        hidden = record.response.get("ScannedCount", len(items)) - len(items)
        if hidden > 0 or "ProjectionExpression" in record.params or record.params.get("Select") == "COUNT":
            charge.estimated = True
            sizes += [sum(sizes) // len(sizes) if sizes else 0] * max(0, hidden)
        charge.item_bytes = sum(sizes)
        charge.read_units = query_read_units(sizes, bool(record.params.get("ConsistentRead")))
        if "ProjectionExpression" not in record.params and _full_items(table, record.params.get("IndexName")):
            for item in items:
                self.images.remember(table, item, item)
        return [charge]

    _charge_scan = _charge_query

    def _charge_transact_get_items(self, record: RequestRecord) -> list[Charge]:
        charges: dict[str, Charge] = {}
        returned = record.response.get("Responses", [])
        for position, action in enumerate(record.params["TransactItems"]):
            get = action["Get"]
            charge = charges.setdefault(get["TableName"], Charge(get["TableName"], record.operation, _outcome(record)))
            if record.error_code is not None:
                continue
            item = returned[position].get("Item") if position < len(returned) else None
            size = item_size(item) if item else 0
            charge.item_bytes += size
            charge.read_units += TRANSACTION_FACTOR * read_units(size, True)
        return list(charges.values())

    # Writes.

    def _charge_put_item(self, record: RequestRecord) -> list[Charge]:
        table = self.schemas[record.params["TableName"]]
        new = record.params["Item"]
        charge = Charge(table.name, record.operation, _outcome(record))
        known, old = self._image_before(table, new, record)
        if record.error_code == CONDITION_FAILED and _requires_absent(table, record.params):
            known, old = True, old if old is not None else new  # the item exists; its size is not returned
        charge.estimated = not known

        if record.error_code is not None:
            charge.item_bytes, charge.write_units = _failed_write(record, known, old, new)
            return [charge]

        size = max(item_size(new), item_size(old) if old else 0)
        charge.item_bytes, charge.write_units = size, write_units(size)
        charge.index_write_units = index_write_units(table, old, new) if known else 0
        self.images.remember(table, new, new)
        return [charge]

    def _charge_update_item(self, record: RequestRecord) -> list[Charge]:
        table = self.schemas[record.params["TableName"]]
        key = record.params["Key"]
        charge = Charge(table.name, record.operation, _outcome(record))
        known, old = self._image_before(table, key, record)
        returned = record.response.get("Attributes")
        new = returned if record.params.get("ReturnValues") == "ALL_NEW" else None

        if record.error_code is not None:
            charge.estimated = not known
            charge.item_bytes, charge.write_units = _failed_write(record, known, old, None)
            return [charge]

        charge.estimated = not known or new is None
        size = max(item_size(new) if new else 0, item_size(old) if old else 0)
        charge.item_bytes, charge.write_units = size, write_units(size)
        if known and new is not None:
            charge.index_write_units = index_write_units(table, old, new)
        if new is not None:
            self.images.remember(table, key, new)
        else:
            self.images.forget(table, key)
        return [charge]

    def _charge_delete_item(self, record: RequestRecord) -> list[Charge]:
        table = self.schemas[record.params["TableName"]]
        key = record.params["Key"]
        charge = Charge(table.name, record.operation, _outcome(record))
        known, old = self._image_before(table, key, record)
        charge.estimated = not known

        if record.error_code is not None:
            charge.item_bytes, charge.write_units = _failed_write(record, known, old, None)
            return [charge]

        charge.item_bytes = item_size(old) if old else 0
        charge.write_units = write_units(charge.item_bytes)
        charge.index_write_units = index_write_units(table, old, None) if known else 0
        self.images.remember(table, key, None)
        return [charge]

    def _charge_batch_write_item(self, record: RequestRecord) -> list[Charge]:
        charges = []
        for table_name, requests in record.params["RequestItems"].items():
            table = self.schemas[table_name]
            charge = Charge(table_name, record.operation, _outcome(record))
            charges.append(charge)
            if record.error_code is not None:
                continue
            unprocessed = record.response.get("UnprocessedItems", {}).get(table_name, [])
            for request in requests:
                if request in unprocessed:
                    continue
                self._charge_batch_request(table, request, charge)
        return charges

    def _charge_batch_request(self, table: TableSchema, request: Mapping[str, Any], charge: Charge) -> None:
        new = request["PutRequest"]["Item"] if "PutRequest" in request else None
        key = new if new is not None else request["DeleteRequest"]["Key"]
        known, old = self.images.lookup(table, key)
        charge.estimated = charge.estimated or not known
        size = max(item_size(new) if new else 0, item_size(old) if old else 0)
        charge.item_bytes += size
        charge.write_units += write_units(size)
        charge.index_write_units += index_write_units(table, old, new) if known else 0
        self.images.remember(table, key, new)

    def _charge_batch_execute_statement(self, record: RequestRecord) -> list[Charge]:
        """Charge each write statement as the single-item write it performs.

        An INSERT is a PutItem with `attribute_not_exists` on the key. An UPDATE is an
        UpdateItem whose new image is the item that `RETURNING ALL NEW *` returns, or the image
        before it with the attributes that `RETURNING MODIFIED NEW *` returns.
        """
        charges: dict[tuple[str, str, str], Charge] = {}
        responses = record.response.get("Responses", [])
        for position, request in enumerate(record.params["Statements"]):
            statement = parse_statement(request["Statement"], request.get("Parameters", []))
            response = responses[position] if position < len(responses) else {}
            outcome = _statement_outcome(record, response)
            table = self.schemas[statement.table]
            operation = f"{record.operation} {statement.verb}"
            charge = charges.setdefault((table.name, operation, outcome), Charge(table.name, operation, outcome))
            charge.statements += 1
            if outcome != OK and outcome != "condition failed":
                continue
            self._charge_statement(table, statement, response, outcome == OK, charge)
        return list(charges.values())

    def _charge_statement(
        self, table: TableSchema, statement: ParsedStatement, response: Mapping[str, Any], applied: bool, charge: Charge
    ) -> None:
        key = statement.key(table)
        known, old = self.images.lookup(table, key)
        if statement.verb == "INSERT":
            new: Item | None = statement.item
            if not applied:
                known, old = True, old if old is not None else new  # the item exists; its size is not returned
            elif not known:
                known, old = True, None  # INSERT applies only to an absent key
        else:
            new = response.get("Item") if applied else None
            if new is not None and statement.returns_changes_only:
                new = {**old, **new} if old is not None else None  # unknown unless the image before is
        charge.estimated = charge.estimated or not known or (applied and new is None)

        if not applied:
            size = 0
            if known and old is not None:
                size = max(item_size(old), item_size(new) if new else 0)
            charge.item_bytes += size
            charge.write_units += write_units(size) if size else 1
            return
        size = max(item_size(new) if new else 0, item_size(old) if old else 0)
        charge.item_bytes += size
        charge.write_units += write_units(size)
        charge.index_write_units += index_write_units(table, old, new) if known and new is not None else 0
        if new is not None:
            self.images.remember(table, key, new)
        else:
            self.images.forget(table, key)

    def _charge_transact_write_items(self, record: RequestRecord) -> list[Charge]:
        """Charge every action twice (prepare and commit), cancelled transactions included.

        NOTE: the guide does not state what a cancelled transaction costs; charging it in full
        keeps the figures an upper bound.
        """
        charges: dict[str, Charge] = {}
        for action in record.params["TransactItems"]:
            kind, body = next(iter(action.items()))
            table = self.schemas[body["TableName"]]
            charge = charges.setdefault(table.name, Charge(table.name, record.operation, _outcome(record)))
            key = body.get("Item") or body["Key"]
            known, old = self.images.lookup(table, key)
            new = body.get("Item") if kind == "Put" else None
            size = max(item_size(new) if new else 0, item_size(old) if old else 0)
            # An Update's result is not returned, so it is charged at its known old size.
            charge.estimated = charge.estimated or not known or kind == "Update"
            charge.item_bytes += size
            charge.write_units += TRANSACTION_FACTOR * write_units(size)
            if record.error_code is None:
                self._remember_transact_action(table, kind, key, old, new, known, charge)
        return list(charges.values())

    def _remember_transact_action(
        self, table: TableSchema, kind: str, key: Item, old: Item | None, new: Item | None, known: bool, charge: Charge
    ) -> None:
        if kind == "Put":
            charge.index_write_units += index_write_units(table, old, new) if known else 0
            self.images.remember(table, key, new)
        elif kind == "Delete":
            charge.index_write_units += index_write_units(table, old, None) if known else 0
            self.images.remember(table, key, None)
        elif kind == "Update":
            self.images.forget(table, key)

    def _image_before(self, table: TableSchema, key: Item, record: RequestRecord) -> tuple[bool, Item | None]:
        """Return (known, image) of the item before a write."""
        if record.params.get("ReturnValues") == "ALL_OLD" and record.error_code is None:
            return True, record.response.get("Attributes")
        known, old = self.images.lookup(table, key)
        if not known and record.error_code is None and _requires_absent(table, record.params):
            return True, None
        return known, old


@dataclass(frozen=True)
class ParsedStatement:
    """The parts of a PartiQL write statement that pricing needs."""

    verb: str  # INSERT | UPDATE
    table: str
    item: Item | None  # INSERT: the item written
    where: dict[str, Any]  # UPDATE: the attributes the WHERE clause compares for equality
    returns_changes_only: bool = False  # UPDATE ... RETURNING MODIFIED NEW *: only changed attributes

    def key(self, table: TableSchema) -> Item:
        source = self.item if self.item is not None else self.where
        return {name: source[name] for name in table.keys}


_INSERT = re.compile(r'^INSERT INTO "(?P<table>[^"]+)" VALUE \{(?P<fields>.*)\}$', re.DOTALL)
_UPDATE = re.compile(r'^UPDATE "(?P<table>[^"]+)" .* WHERE (?P<where>.*?)(?: RETURNING (?P<returning>.*))?$', re.DOTALL)
_FIELD = re.compile(r"'([^']+)'\s*:\s*\?")
_EQUALS = re.compile(r'"([^"]+)"\s*=\s*\?')


def parse_statement(text: str, parameters: list[Any]) -> ParsedStatement:
    """Parse the INSERT and UPDATE forms that chalicelib.models.statements writes, where every
    value is a `?` parameter."""
    insert = _INSERT.match(text)
    if insert is not None:
        names = _FIELD.findall(insert.group("fields"))
        return ParsedStatement("INSERT", insert.group("table"), dict(zip(names, parameters, strict=True)), {})
    update = _UPDATE.match(text)
    if update is None:
        raise ValueError(f"unknown statement form {text!r}: the bench prices the INSERT and UPDATE forms of chalicelib.models.statements")
    where: dict[str, Any] = {}
    for match in _EQUALS.finditer(text, update.start("where"), update.end("where")):
        where[match.group(1)] = parameters[text.count("?", 0, match.start())]
    returning = update.group("returning") or ""
    return ParsedStatement("UPDATE", update.group("table"), None, where, returning.startswith("MODIFIED"))


def _statement_outcome(record: RequestRecord, response: Mapping[str, Any]) -> str:
    if record.error_code is not None:
        return _outcome(record)
    code = response.get("Error", {}).get("Code")
    if code is None:
        return OK
    return "condition failed" if code in ("ConditionalCheckFailed", "DuplicateItem") else code


def _failed_write(record: RequestRecord, known: bool, old: Item | None, new: Item | None) -> tuple[int, int]:
    """Return (bytes, write units) of a rejected write.

    A failed conditional write of an existing item costs the larger of the stored and the new
    item, because versions of the guide name each of them. A failed write of a missing item
    costs 1 unit. Other errors (validation, throttling) are charged nothing.
    """
    if record.error_code != CONDITION_FAILED:
        return 0, 0
    if not known or old is None:
        return 0, 1
    size = max(item_size(old), item_size(new) if new else 0)
    return size, write_units(size)


def _requires_absent(table: TableSchema, params: Mapping[str, Any]) -> bool:
    """True when the condition is `attribute_not_exists` on a key attribute."""
    match = _NOT_EXISTS.match(params.get("ConditionExpression", ""))
    if match is None:
        return False
    return params.get("ExpressionAttributeNames", {}).get(match.group(1)) in table.keys


def _full_items(table: TableSchema, index_name: str | None) -> bool:
    if index_name is None:
        return True
    return any(index.name == index_name and index.projection == "ALL" for index in table.indexes)


def _read_operation(record: RequestRecord) -> str:
    index = record.params.get("IndexName")
    return f"{record.operation} {index}" if index else record.operation


def _outcome(record: RequestRecord) -> str:
    if record.error_code is None:
        return OK
    if record.error_code == CONDITION_FAILED:
        return "condition failed"
    return record.error_code


def _attach_reported(charges: list[Charge], response: Mapping[str, Any]) -> None:
    """Copy DynamoDB's own ConsumedCapacity (if the response has one) onto the charges."""
    consumed = response.get("ConsumedCapacity")
    if consumed is None:
        return
    entries = consumed if isinstance(consumed, list) else [consumed]
    reported = {entry.get("TableName"): float(entry.get("CapacityUnits", 0.0)) for entry in entries}
    for charge in charges:
        charge.reported_units = reported.get(charge.table)


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
