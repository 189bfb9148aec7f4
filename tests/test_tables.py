"""Table creation is safe to run again and adds indexes that older tables lack."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.models.base import connection
from chalicelib.models.vms import Vm
from tools.tables import create_tables


@pytest.mark.usefixtures("tables")
def test_create_tables_again_creates_nothing() -> None:
    assert create_tables() == []


@pytest.mark.usefixtures("tables")
def test_missing_indexes_are_added_to_older_table() -> None:
    client = connection().client
    Vm.delete_table()
    client.create_table(
        TableName=Vm.Meta.table_name,
        AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}, {"AttributeName": "vm_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}, {"AttributeName": "vm_id", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )

    created = create_tables()

    assert sorted(created) == [f"{Vm.Meta.table_name}/billing-index", f"{Vm.Meta.table_name}/vm-id-index"]
    assert index_names(client) == {"billing-index", "vm-id-index"}


def index_names(client: Any) -> set[str]:
    table = client.describe_table(TableName=Vm.Meta.table_name)["Table"]
    return {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
