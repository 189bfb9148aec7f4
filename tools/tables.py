"""Create every table from the PynamoDB models; safe to run again.

Existing tables keep their data. A global secondary index that a model declares but an
existing table lacks (a table made by an older version) is added in place.
"""

from __future__ import annotations

import time
from typing import Any

from pynamodb.models import Model

from chalicelib.models import ALL_MODELS
from chalicelib.models.base import connection

INDEX_WAIT_SECONDS = 120


def create_tables() -> list[str]:
    """Create missing tables and indexes and wait until they are active; return what was created."""
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
            continue
        created += _add_missing_indexes(model)
    return created


def _add_missing_indexes(model: type[Model]) -> list[str]:
    client = connection().client
    table_name = model.Meta.table_name
    described = client.describe_table(TableName=table_name)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    schema: dict[str, Any] = model._get_schema()

    added = []
    for index in schema.get("global_secondary_indexes") or []:
        if index["index_name"] in present:
            continue
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=[_pascal_keys(item) for item in schema["attribute_definitions"]],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index["index_name"],
                        "KeySchema": [_pascal_keys(item) for item in index["key_schema"]],
                        "Projection": _pascal_keys(index["projection"]),
                    }
                }
            ],
        )
        _wait_for_index(client, table_name, index["index_name"])
        added.append(f"{table_name}/{index['index_name']}")
    return added


def _pascal_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {"".join(part[:1].upper() + part[1:] for part in key.split("_")): value for key, value in item.items()}


def _wait_for_index(client: Any, table_name: str, index_name: str) -> None:
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while time.monotonic() < deadline:
        indexes = client.describe_table(TableName=table_name)["Table"].get("GlobalSecondaryIndexes", [])
        if any(index["IndexName"] == index_name and index["IndexStatus"] == "ACTIVE" for index in indexes):
            return
        time.sleep(0.5)
    raise RuntimeError(f"index {index_name} of table {table_name} did not become active in {INDEX_WAIT_SECONDS} s")


def delete_tables() -> None:
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()
