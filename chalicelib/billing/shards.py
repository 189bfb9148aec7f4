"""Billing shards: each account belongs to one shard for its whole life, and one hourly
message bills one shard. More shards means smaller messages, not more writes.
"""

from __future__ import annotations

import zlib

from chalicelib.config import settings


def shard_name(index: int) -> str:
    return f"s{index:04d}"


def shard_names() -> list[str]:
    return [shard_name(index) for index in range(settings().billing_shards)]


def shard_for(account_id: str) -> str:
    return shard_name(zlib.crc32(account_id.encode()) % settings().billing_shards)
