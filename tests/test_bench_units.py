"""The bench's item-size and capacity-unit arithmetic against the examples in AWS's DynamoDB guide.

Sizes follow "DynamoDB item sizes and formats" (CapacityUnitCalculations.html); unit examples
come from "DynamoDB read and write operations", "Capacity management for transactions" and the
global secondary index page's "Provisioned throughput considerations". KB is 1,024 bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bench.capacity import (
    CONDITION_FAILED,
    Accountant,
    IndexSchema,
    RequestRecord,
    TableSchema,
    index_write_units,
    parse_statement,
)
from bench.itemsize import (
    TRANSACTION_FACTOR,
    batch_get_read_units,
    batch_write_units,
    item_size,
    number_size,
    query_read_units,
    read_units,
    write_units,
)

KB = 1024
TABLE = TableSchema("things", keys=("pk",))
INDEXED = TableSchema("vms", keys=("pk",), indexes=(IndexSchema("by-shard", keys=("shard",), projection="ALL"),))


def sized_item(size: int, key: str = "a", **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    """An item of exactly `size` bytes: "pk" (2) + key + "v" (1) + filler, plus `extra`."""
    item: dict[str, dict[str, str]] = {"pk": {"S": key}, **extra}
    filler = size - item_size(item) - len("v")
    return {**item, "v": {"S": "x" * filler}}


def record(operation: str, params: dict, response: dict | None = None, error_code: str | None = None) -> RequestRecord:
    return RequestRecord(operation, params, response or {}, error_code, 0.001)


# Item sizes.


def test_string_is_name_plus_utf8_bytes() -> None:
    assert item_size({"name": {"S": "Ann"}}) == 4 + 3
    assert item_size({"city": {"S": "Zürich"}}) == 4 + 7


def test_number_size_by_significant_digits() -> None:
    assert number_size("12345") == 3 + 1
    assert number_size("12") == 1 + 1
    assert item_size({"n": {"N": "12345"}}) == 1 + 4


def test_number_ignores_leading_and_trailing_zeros() -> None:
    assert number_size("7500") == number_size("75")
    assert number_size("-7500") == 2
    assert number_size("0.00012") == 2
    assert number_size("1000000") == 2
    assert number_size("0") == 1


def test_binary_counts_raw_bytes_not_base64() -> None:
    raw = bytes(range(10))
    assert item_size({"b": {"B": base64.b64encode(raw).decode()}}) == 1 + 10
    assert item_size({"b": {"B": raw}}) == 1 + 10


def test_null_and_boolean_are_one_byte() -> None:
    assert item_size({"gone": {"NULL": True}}) == 4 + 1
    assert item_size({"ok": {"BOOL": False}}) == 2 + 1


def test_empty_list_and_map_are_three_bytes() -> None:
    assert item_size({"tags": {"L": []}}) == 4 + 3
    assert item_size({"meta": {"M": {}}}) == 4 + 3


def test_list_and_map_elements_add_one_byte_each() -> None:
    assert item_size({"tags": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 4 + 3 + (1 + 2) + (1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    nested: dict[str, Any] = {"m": {"M": {"inner": {"L": [{"BOOL": True}]}}}}
    assert item_size(nested) == 1 + 3 + (1 + 5 + 3 + (1 + 1))


def test_item_is_sum_of_attributes() -> None:
    item: dict[str, Any] = {"pk": {"S": "acct_1"}, "amount": {"N": "-7500"}, "open": {"BOOL": True}}
    assert item_size(item) == (2 + 6) + (6 + 2) + (4 + 1)


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type"):
        item_size({"x": {"Q": "1"}})


# Read units.


def test_read_of_3500_bytes_costs_as_4_kb() -> None:
    assert read_units(3500, consistent=True) == 1
    assert read_units(3 * KB, consistent=True) == 1


def test_read_of_8_kb_item_by_consistency() -> None:
    assert read_units(8 * KB, consistent=True) == 2
    assert read_units(8 * KB, consistent=False) == 1
    assert TRANSACTION_FACTOR * read_units(8 * KB, consistent=True) == 4


def test_10_kb_read_rounds_to_12_kb() -> None:
    assert read_units(10 * KB, consistent=True) == 3


def test_read_of_missing_item_still_costs() -> None:
    assert read_units(0, consistent=True) == 1
    assert read_units(0, consistent=False) == 0.5


def test_batch_get_rounds_each_item() -> None:
    assert batch_get_read_units([int(1.5 * KB), int(6.5 * KB)], consistent=True) == 3  # 4 KB + 8 KB


def test_query_rounds_the_total_once() -> None:
    ten_items = [int(40.8 * KB) // 10] * 9 + [int(40.8 * KB) - 9 * (int(40.8 * KB) // 10)]
    assert query_read_units(ten_items, consistent=True) == 11  # 40.8 KB -> 44 KB
    assert query_read_units([64] * 1500, consistent=True) == 24  # 96 KB
    assert query_read_units([80 * KB], consistent=False) == 10


def test_index_query_of_8_items_of_2000_bytes() -> None:
    assert query_read_units([2000] * 8, consistent=False) == 2


# Write units.


def test_write_rounds_up_to_1_kb() -> None:
    assert write_units(500) == 1
    assert write_units(512) == 1
    assert write_units(KB) == 1
    assert write_units(KB + 1) == 2
    assert write_units(int(1.6 * KB)) == 2


def test_batch_write_rounds_each_item() -> None:
    assert batch_write_units([500, int(3.5 * KB)]) == 5  # 1 KB + 4 KB


def test_update_costs_larger_of_before_and_after() -> None:
    accountant = Accountant([TABLE])
    before = sized_item(int(1.5 * KB))
    accountant.charge(
        record("GetItem", {"TableName": "things", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}, {"Item": before})
    )

    after = {"pk": {"S": "a"}, "v": {"S": "y"}}
    [charge] = accountant.charge(
        record(
            "UpdateItem",
            {"TableName": "things", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_NEW"},
            {"Attributes": after},
        )
    )

    assert charge.write_units == 2
    assert charge.item_bytes == int(1.5 * KB)
    assert not charge.estimated


def test_update_with_unknown_before_image_is_estimated() -> None:
    after = sized_item(300)
    [charge] = Accountant([TABLE]).charge(
        record(
            "UpdateItem",
            {"TableName": "things", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_NEW"},
            {"Attributes": after},
        )
    )

    assert charge.write_units == 1
    assert charge.estimated


def test_put_replacing_item_costs_larger_of_the_two() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(3 * KB)}))

    [charge] = accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(200)}))

    assert charge.write_units == 3


def test_delete_costs_size_of_deleted_item() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(int(1.6 * KB))}))

    [charge] = accountant.charge(record("DeleteItem", {"TableName": "things", "Key": {"pk": {"S": "a"}}}))

    assert charge.write_units == 2


# Failed conditional writes.


def failed_update(accountant: Accountant, key: str = "a") -> float:
    params = {
        "TableName": "things",
        "Key": {"pk": {"S": key}},
        "ConditionExpression": "#0 = :0",
        "ReturnValues": "ALL_NEW",
    }
    [charge] = accountant.charge(record("UpdateItem", params, {"Error": {"Code": CONDITION_FAILED}}, CONDITION_FAILED))
    assert charge.outcome == "condition failed"
    return charge.write_units


def test_failed_conditional_write_of_1_kb_item() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(KB)}))

    assert failed_update(accountant) == 1


def test_failed_conditional_write_of_2_kb_item() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(2 * KB)}))

    assert failed_update(accountant) == 2


def test_failed_conditional_write_of_missing_item() -> None:
    accountant = Accountant([TABLE])
    get = {"TableName": "things", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}
    accountant.charge(record("GetItem", get, {}))

    assert failed_update(accountant) == 1


def test_failed_put_if_absent_costs_existing_item() -> None:
    params = {
        "TableName": "things",
        "Item": sized_item(int(1.2 * KB)),
        "ConditionExpression": "attribute_not_exists (#0)",
        "ExpressionAttributeNames": {"#0": "pk"},
    }

    [charge] = Accountant([TABLE]).charge(
        record("PutItem", params, {"Error": {"Code": CONDITION_FAILED}}, CONDITION_FAILED)
    )

    assert charge.write_units == 2
    assert not charge.estimated


def test_put_if_absent_that_succeeds_replaced_nothing() -> None:
    params = {
        "TableName": "things",
        "Item": sized_item(300),
        "ConditionExpression": "attribute_not_exists (#0)",
        "ExpressionAttributeNames": {"#0": "pk"},
    }

    [charge] = Accountant([TABLE]).charge(record("PutItem", params))

    assert charge.write_units == 1
    assert not charge.estimated


# PartiQL write statements in BatchExecuteStatement.


def insert_statement(item: dict[str, Any]) -> dict[str, Any]:
    fields = ", ".join(f"'{name}': ?" for name in item)
    return {"Statement": f'INSERT INTO "things" VALUE {{{fields}}}', "Parameters": list(item.values())}


def update_statement(key: str) -> dict[str, Any]:
    text = 'UPDATE "things" SET "v" = ? SET "n" = "n" + ? WHERE "pk" = ? AND "v" = ? RETURNING ALL NEW *'
    return {"Statement": text, "Parameters": [{"S": "new"}, {"N": "1"}, {"S": key}, {"S": "old"}]}


def statements_record(statements: list[dict[str, Any]], answers: list[dict[str, Any]]) -> RequestRecord:
    return record("BatchExecuteStatement", {"Statements": statements}, {"Responses": answers})


def test_each_insert_costs_its_own_item() -> None:
    items = [sized_item(500, "a"), sized_item(int(1.5 * KB), "b")]

    [charge] = Accountant([TABLE]).charge(statements_record([insert_statement(item) for item in items], [{}, {}]))

    assert (charge.operation, charge.statements, charge.write_units) == ("BatchExecuteStatement INSERT", 2, 3)
    assert not charge.estimated


def test_duplicate_insert_costs_the_existing_item() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(2 * KB)}))

    [charge] = accountant.charge(
        statements_record([insert_statement(sized_item(300))], [{"Error": {"Code": "DuplicateItem"}}])
    )

    assert (charge.outcome, charge.write_units) == ("condition failed", 2)


def test_update_returning_changes_costs_merged_image() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(1000)}))
    statement = update_statement("a")
    statement["Statement"] = statement["Statement"].replace("ALL NEW", "MODIFIED NEW")

    [charge] = accountant.charge(statements_record([statement], [{"Item": {"n": {"S": "x" * 100}}}]))

    assert charge.write_units == 2  # 1,000 bytes before, plus the new attribute "n" of 101 bytes
    assert not charge.estimated


def test_update_statement_costs_larger_image() -> None:
    accountant = Accountant([TABLE])
    accountant.charge(record("PutItem", {"TableName": "things", "Item": sized_item(300)}))

    [charge] = accountant.charge(statements_record([update_statement("a")], [{"Item": sized_item(int(1.2 * KB))}]))

    assert (charge.operation, charge.write_units) == ("BatchExecuteStatement UPDATE", 2)
    assert not charge.estimated


def test_throttled_statement_costs_nothing() -> None:
    answers = [{"Error": {"Code": "ThrottlingError"}}, {}]
    statements = [insert_statement(sized_item(300, "a")), insert_statement(sized_item(300, "b"))]

    charges = Accountant([TABLE]).charge(statements_record(statements, answers))

    assert sorted((charge.outcome, charge.write_units) for charge in charges) == [("ThrottlingError", 0), ("ok", 1)]


def test_product_statements_parse_to_their_keys() -> None:
    from chalicelib.models import statements
    from chalicelib.models.accounts import Account
    from chalicelib.models.ledger import LedgerLine

    line = LedgerLine(
        "acct_1",
        "2026-12-04T10:00:00Z#vm#vm1",
        amount_micros=-1,
        kind="vm",
        description="d",
        created_at="c",
        batch="hourly",
    )
    update = statements.update(
        Account,
        {"account_id": "acct_1"},
        {"billed_through": "2026-12-04T10"},
        {"balance_micros": -1},
        {"billed_through": "2026-12-04T09"},
    )

    inserted = parse_statement(statements.insert(line).text, list(statements.insert(line).parameters))
    updated = parse_statement(update.text, list(update.parameters))

    assert inserted.item == line.serialize()
    assert updated.where == {"account_id": {"S": "acct_1"}, "billed_through": {"S": "2026-12-04T09"}}


# Transactions.


def test_transaction_of_three_500_byte_items_costs_6() -> None:
    actions = [{"Put": {"TableName": "things", "Item": sized_item(500, key=key)}} for key in ("a", "b", "c")]

    [charge] = Accountant([TABLE]).charge(record("TransactWriteItems", {"TransactItems": actions}))

    assert charge.write_units == 6


def test_read_transaction_costs_double() -> None:
    actions = [{"Get": {"TableName": "things", "Key": {"pk": {"S": key}}}} for key in ("a", "b", "c")]
    responses = [{"Item": sized_item(500, key=key)} for key in ("a", "b", "c")]

    [charge] = Accountant([TABLE]).charge(
        record("TransactGetItems", {"TransactItems": actions}, {"Responses": responses})
    )

    assert charge.read_units == 6


# Global secondary index writes.


def test_index_write_when_item_enters_index() -> None:
    assert index_write_units(INDEXED, None, sized_item(300, shard={"S": "s0001"})) == 1
    assert index_write_units(INDEXED, sized_item(300), sized_item(300, shard={"S": "s0001"})) == 1


def test_index_writes_when_index_key_changes() -> None:
    old = sized_item(300, shard={"S": "s0001"})
    new = sized_item(300, shard={"S": "s0002"})

    assert index_write_units(INDEXED, old, new) == 2


def test_index_write_when_indexed_attribute_is_removed() -> None:
    assert index_write_units(INDEXED, sized_item(300, shard={"S": "s0001"}), sized_item(300)) == 1


def test_no_index_write_for_item_outside_index() -> None:
    assert index_write_units(INDEXED, sized_item(300), sized_item(400)) == 0


def test_index_write_when_only_projected_attribute_changes() -> None:
    old = sized_item(300, shard={"S": "s0001"})
    new = {**old, "state": {"S": "deleted"}}

    assert index_write_units(INDEXED, old, new) == 1
    assert index_write_units(INDEXED, old, dict(old)) == 0


def test_keys_only_index_ignores_other_attributes() -> None:
    table = TableSchema(
        "vms", keys=("pk",), indexes=(IndexSchema("by-shard", keys=("shard",), projection="KEYS_ONLY"),)
    )
    old = sized_item(300, shard={"S": "s0001"})

    assert index_write_units(table, old, {**old, "state": {"S": "deleted"}}) == 0


def test_put_into_indexed_table_charges_index() -> None:
    accountant = Accountant([INDEXED])
    params = {
        "TableName": "vms",
        "Item": sized_item(300, shard={"S": "s0001"}),
        "ConditionExpression": "attribute_not_exists (#0)",
        "ExpressionAttributeNames": {"#0": "pk"},
    }

    [charge] = accountant.charge(record("PutItem", params))

    assert charge.write_units == 1
    assert charge.index_write_units == 1
