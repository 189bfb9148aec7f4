"""Create every table from the PynamoDB models; safe to run again (existing tables are kept)."""

from __future__ import annotations

from chalicelib.models import ALL_MODELS


def create_tables() -> list[str]:
    """Create missing tables and wait until they are active; return the names created."""
    created = []
    for model in ALL_MODELS:
        if model.exists():
            continue
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        created.append(model.Meta.table_name)
    return created


def delete_tables() -> None:
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()
