"""Health, devices, readings and dead letters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import text

from server.api.deps import ActorDep, AlarmStoreDep, ClockDep, HealthDep, LiveDep, SeriesDep, SiteDep
from server.api.minimise import RedactorDep
from server.api.schemas import DeadLetterPublic, DevicePublic, Health, ReadingPublic
from server.domain.reach import unreachable_roles

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(root: HealthDep) -> Health:
    """Liveness plus the state of each dependency. Open to all: it carries no floor data."""
    deps: dict[str, dict[str, Any]] = {}
    # subscribed: the broker granted the server's subscriptions (SUBACK), so its persistent session exists
    # and queues what edges publish even while the server is away; edges start after this turns true.
    deps["broker"] = {"up": bool(root.mqtt and root.mqtt.connected),
                      "subscribed": bool(root.mqtt and root.mqtt.subscribed),
                      "subscribe_refused": root.mqtt.subscribe_refused if root.mqtt else None,
                      "embedded": root.broker.kind if root.broker else None}
    try:
        with root.sql.connect() as connection:
            connection.execute(text("SELECT 1"))
        deps["sql"] = {"up": True, "dialect": root.sql.dialect.name}
    except Exception as exc:  # health reports, it never raises
        deps["sql"] = {"up": False, "error": type(exc).__name__}
    stats = root.series.stats()
    deps["timeseries"] = {"up": stats.last_error is None, "kind": type(root.series).__name__,
                          "buffered": stats.buffered, "written": stats.written, "dropped": stats.dropped,
                          "held": stats.held, "held_s": round(stats.held_s, 3), "stalled": stats.stalled,
                          # refused for good by the store (a field type conflict), not retried: a hole in history
                          "rejected": stats.rejected, "last_rejection": stats.last_rejection}
    history = root.history_series.stats()  # the boards' alarm changes and inspection counts, a writer of their own
    deps["timeseries"]["history"] = {"buffered": history.buffered, "written": history.written,
                                     "dropped": history.dropped, "rejected": history.rejected,
                                     "error": history.last_error}
    s = root.ingest.stats
    ingest = {"messages": s.messages, "readings": s.readings, "events": s.events, "duplicates": s.duplicates,
              "invalid": s.invalid, "unknown_devices": s.unknown_devices, "lost": s.lost,
              "edge_decode_errors": s.edge_decode_errors,
              "last_drain_ms": round(s.last_drain_ms, 2)}
    # the roll call's badge events: a write being retried means the roll call may lack the newest ones
    deps["access_log"] = {"up": not root.access_log.retrying, "pending": root.access_log.pending(),
                          "refused": root.access_log.refused}
    if root.lease is not None:  # which worker owns the site's partition; "lost": it commits nothing more
        deps["lease"] = root.lease.status()
    if root.hr_sync is not None:  # counts only: health is public, the names are in the server log
        # error: the last read of the HR feed was refused (file:line: field), the last good feed is in force;
        # kept: sections the last read left out, in force at their last value (a warning, still up)
        deps["hr"] = {"up": root.hr_sync.error is None, "unknown_leavers": len(root.hr_sync.warnings),
                      "error": root.hr_sync.error, "kept": list(root.hr_sync.kept)}
    # roles the rules page with no channel in the site file: degraded when a life-safety or critical page
    # would reach nobody (role names and rule ids only: no floor data)
    unreachable = unreachable_roles(root.site)
    deps["paging"] = {"up": not any(u.urgent for u in unreachable),
                      "unreachable": {u.role: list(u.rules) for u in unreachable}}
    up = all(d["up"] for d in deps.values()) and deps["broker"]["subscribed"]
    return Health(status="ok" if up else "degraded", dependencies=deps, ingest=ingest)


@router.get("/devices", response_model=list[DevicePublic])
def devices(live_state: LiveDep, site: SiteDep, actor: ActorDep, zone: str | None = None) -> list[DevicePublic]:
    live = live_state.devices()
    out = []
    for device in site.devices.values():
        if zone and device.zone != zone:
            continue
        state = live.get(device.id)
        out.append(DevicePublic(
            id=device.id, kind=device.kind.value, zone=device.zone, edge=device.edge, name=device.name,
            rated_a=device.rated_a, essential=device.essential, cuttable=device.cuttable,
            door_type=device.door_type.value if device.door_type else None,
            online=state.online if state else None, last_seen=state.last_seen if state else None,
            metrics=state.metrics if state else {}))
    return out


@router.get("/readings", response_model=list[ReadingPublic])
def readings(
    site: SiteDep, clock: ClockDep, series: SeriesDep,
    actor: ActorDep,
    device: str,
    metric: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> list[ReadingPublic]:
    if device not in site.devices:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device!r}")
    now = clock()
    since = since or now - timedelta(hours=1)
    if until is not None and until < since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until is before since")
    samples = series.query_readings(device, metric, since, until, limit)
    return [ReadingPublic(ts=s.ts, value=s.value) for s in samples]


@router.get("/dead-letters", response_model=list[DeadLetterPublic])
def dead_letters(store: AlarmStoreDep, actor: ActorDep, red: RedactorDep, source: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[DeadLetterPublic]:
    """Rejected messages as received; a raw door event may hold a badge number: masked (with the names and
    ids of people the caller may not see) for all but the roles with badge rights."""
    return [DeadLetterPublic(id=r.id, received_at=r.received_at, topic=r.topic, source=r.source,
                             reason=red.payload(r.reason), payload=red.payload(r.payload))
            for r in store.dead_letters(limit, source)]
