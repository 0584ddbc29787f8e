"""What the site file says about a device that its readings do not carry (stored beside each reading)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """What the registry knows about a device that the readings do not carry."""

    site: str
    zone: str
    kind: str
    floor: str = ""
    rated_a: float | None = None
    """Rated current of a strip or plug; when set, ``rated_a`` and ``load_pct`` are written."""

    def tags(self, device: str) -> dict[str, str]:
        return {
            "device": device, "floor": self.floor, "kind": self.kind, "site": self.site, "zone": self.zone,
        }
