"""The floor map: zones with their outlines and devices with where to draw them (read-only), and what the
page needs to speak about alarms: the site's time zone and a title per rule id in both languages."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from server.api.deps import ActorDep, SiteDep
from server.domain.floor_map import device_positions
from server.domain.rule_titles import FAMILIES, TITLES, family

router = APIRouter(tags=["floor"])


class FloorOut(BaseModel):
    id: str
    name: str


class ZoneOut(BaseModel):
    id: str
    name: str
    floor: str
    kind: str
    polygon: list[tuple[float, float]]


class DeviceOut(BaseModel):
    id: str
    kind: str
    zone: str
    name: str
    door_type: str | None
    position: tuple[float, float] | None
    """Configured, or placed inside the zone's polygon; None when the zone has no polygon."""


class RuleTitleOut(BaseModel):
    en: str
    zh: str
    family: str
    life_safety: bool


class FamilyOut(BaseModel):
    id: str
    en: str
    zh: str


class FloorMap(BaseModel):
    site: str
    name: str
    timezone: str
    """The site's time zone as configured: an IANA name ("Asia/Shanghai") or an offset ("+08:00")."""
    floors: list[FloorOut]
    zones: list[ZoneOut]
    devices: list[DeviceOut]
    rules: dict[str, RuleTitleOut]
    """Title of each rule id the server can raise (server/domain/rule_titles.py)."""
    families: list[FamilyOut]


@router.get("/floor", response_model=FloorMap)
def floor_map(site: SiteDep, actor: ActorDep) -> FloorMap:
    positions = device_positions({z.id: z.polygon for z in site.zones.values()},
                                 [(d.id, d.zone, d.position) for d in site.devices.values()])
    return FloorMap(
        site=site.id, name=site.name, timezone=site.config.site.timezone,
        floors=[FloorOut(id=f.id, name=f.name) for f in site.floors.values()],
        zones=[ZoneOut(id=z.id, name=z.name, floor=z.floor, kind=z.kind.value, polygon=list(z.polygon))
               for z in site.zones.values()],
        devices=[DeviceOut(id=d.id, kind=d.kind.value, zone=d.zone, name=d.name,
                           door_type=d.door_type.value if d.door_type else None, position=positions[d.id])
                 for d in site.devices.values()],
        rules={rule: RuleTitleOut(en=title.en, zh=title.zh, family=family(rule),
                                  life_safety=title.life_safety) for rule, title in TITLES.items()},
        families=[FamilyOut(id=key, en=en, zh=zh) for key, (en, zh) in FAMILIES.items()],
    )
