"""Python values to and from SQL column values, for every SQL adapter."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from server.domain.utc import as_utc


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
    """A column's datetime in UTC (SQLite returns naive ones for timezone-aware columns: stored as UTC)."""
    return None if value is None else as_utc(value)
