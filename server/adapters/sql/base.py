"""The declarative base every table module shares (one `Base.metadata` for Alembic and the tests).

A module of its own, so a table module imports it without importing `models.py`, which imports every
table module at its end to complete the metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}
