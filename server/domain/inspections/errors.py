"""What the inspection domain refuses, with a stable code for the API."""

from __future__ import annotations

from datetime import datetime


class InspectionError(ValueError):
    """A request the domain refuses. `code` is stable (for the API), the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InspectionError("naive_time", f"{what} must carry a time zone")
    return value
