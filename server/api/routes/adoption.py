"""Unknown devices the edges report, each with what to paste into the edge and site files to adopt it.

An edge reports a device that announces itself on its floor broker but is in no configuration as an
`unknown_device` event; the server raises elec.strip_cascade with the subject `<edge>/<device>` (see
server/domain/rules/electrical.py `unknown_device`). That open alarm is the record: it survives a
restart and goes away when a person closes it (device removed, or adopted). The drafts are the ones
`floorwatch edge discover` writes (edge/discover.py `adoption_drafts`), not a second copy of them.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from edge.discover import adoption_drafts, parse_announcement
from server.api.deps import ActorDep, AlarmsDep

router = APIRouter(tags=["adoption"])
RULE = "elec.strip_cascade"


class UnknownDevice(BaseModel):
    edge: str
    device: str
    """The contract id the edge gave it (`<vendor>.<cleaned address>`)."""
    vendor: str | None
    address: str | None
    """The vendor's exact address (Tasmota topic, Shelly id, Zigbee2MQTT friendly name)."""
    topic: str | None
    """Where it announced itself on the floor broker."""
    alarm_id: int | None
    state: str
    since: datetime
    edge_yaml: str | None
    """A `devices:` entry for the edge file; None when the edge's report named no vendor address."""
    site_yaml: str | None
    """A `devices:` entry for the site file."""
    kind_guessed: bool
    """The announcement did not say what it is: check `kind` (and for Tasmota probes add `sensor:`)."""


@router.get("/unknown-devices", response_model=list[UnknownDevice])
def unknown_devices(alarm_service: AlarmsDep, actor: ActorDep) -> list[UnknownDevice]:
    """Devices on an edge's floor broker that are in no configuration, newest first."""
    out: list[UnknownDevice] = []
    for alarm in alarm_service.open_alarms():
        if alarm.rule != RULE or "/" not in alarm.subject:
            continue  # a registered strip's cascade, not a stranger
        edge, device = alarm.subject.split("/", 1)
        heard = parse_announcement(alarm.message)
        edge_yaml = site_yaml = None
        guessed = False
        if heard is not None:
            edge_yaml, site_yaml, guessed = adoption_drafts(heard, edge)
        out.append(UnknownDevice(
            edge=edge, device=device, vendor=heard.vendor.value if heard else None,
            address=heard.address if heard else None, topic=heard.topic if heard else None, alarm_id=alarm.id,
            state=alarm.state.value, since=alarm.raised_at, edge_yaml=edge_yaml, site_yaml=site_yaml,
            kind_guessed=guessed))
    return sorted(out, key=lambda d: d.since, reverse=True)
