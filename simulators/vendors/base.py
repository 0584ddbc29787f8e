"""What every vendor encoder returns: MQTT publications, and the JSON style real firmware uses.

Encoders here are written from each vendor's public documentation (URL next to each encoder), never
from the edge's decoders, so that the two catch each other's mistakes (contract-v1.md §2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Publication:
    """One MQTT message a simulated device sends."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False

    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


def dumps(obj: Any) -> bytes:
    """Compact JSON as ESP32/Node firmwares emit it (no spaces, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339_ms(when: datetime) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-29T03:00:05.120Z."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_json_object(payload: bytes) -> dict[str, Any] | None:
    """A command payload as a JSON object, or None when it is not one (devices ignore junk)."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
