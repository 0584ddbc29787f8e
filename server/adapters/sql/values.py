"""Python values to and from SQL column values, for every SQL adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: enums by value, datetimes in ISO 8601, tuples as lists, keys as text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
