"""FastAPI dependencies by type: each service a route uses, the authenticated actor, role requirements.

A route names the services it uses (`AlarmsDep`, `CommandsDep`, ...), never the whole composition root:
`Composition` says what the API reads from it (server/runtime.py's Runtime has that shape), and only the
getters here reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from server.adapters.sql.repository import AlarmRepository, UserRepository
from server.adapters.timeseries import TimeSeriesWriter
from server.api.audit import AuditTrail
from server.domain.policy import PERMISSIONS, Actor, Permission, Role, may, parse_roles
from server.domain.site import Site
from server.services.access_log import AccessLog
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.services.evacuation import EvacuationService
from server.services.hr_sync import HrSync
from server.services.ingest import Ingest
from server.services.inspections import InspectionService
from server.services.lease import LeaseKeeper
from server.services.live import LiveState
from server.services.notify import NotificationService
from server.settings import Settings

_bearer = HTTPBearer(auto_error=False)


class Composition(Protocol):
    """What the API reads from the composition root, once it started (`app.state.runtime`)."""

    settings: Settings
    clock: Callable[[], datetime]
    site: Site
    sql: Engine
    broker: EmbeddedBroker | None
    mqtt: MqttClient | None
    series: TimeSeriesWriter
    history_series: TimeSeriesWriter
    alarms: AlarmService
    repository: AlarmRepository
    users: UserRepository
    ingest: Ingest
    inspections: InspectionService
    live: LiveState
    notify: NotificationService
    commands: CommandService
    cuts: DelayedCutService
    evacuations: EvacuationService
    access_log: AccessLog
    hr_sync: HrSync | None
    lease: LeaseKeeper | None


def get_runtime(request: Request) -> Composition:
    """The one getter that reaches the composition root (a test overrides it with a smaller one)."""
    root: Composition = request.app.state.runtime
    return root


RootDep = Annotated[Composition, Depends(get_runtime)]
HealthDep = RootDep
"""Only /api/health: it reports on every part the composition root started (broker, SQL, lease, ...)."""


def _settings(root: RootDep) -> Settings:
    return root.settings


def _clock(root: RootDep) -> Callable[[], datetime]:
    return root.clock


def _site(root: RootDep) -> Site:
    return root.site


def _alarms(root: RootDep) -> AlarmService:
    return root.alarms


def _alarm_store(root: RootDep) -> AlarmRepository:
    return root.repository


def _users(root: RootDep) -> UserRepository:
    return root.users


def _ingest(root: RootDep) -> Ingest:
    return root.ingest


def _inspections(root: RootDep) -> InspectionService:
    return root.inspections


def _live(root: RootDep) -> LiveState:
    return root.live


def _series(root: RootDep) -> TimeSeriesWriter:
    return root.series


def _notify(root: RootDep) -> NotificationService:
    return root.notify


def _commands(root: RootDep) -> CommandService:
    return root.commands


def _cuts(root: RootDep) -> DelayedCutService:
    return root.cuts


def _evacuations(root: RootDep) -> EvacuationService:
    return root.evacuations


def _runs_site(root: RootDep) -> Callable[[], bool]:
    """Whether this server runs the site now: False once its lease is lost (or handed back by a stop)."""
    lease = root.lease
    return lambda: lease is None or lease.state == "owner"


SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Callable[[], datetime], Depends(_clock)]
SiteDep = Annotated[Site, Depends(_site)]
AlarmsDep = Annotated[AlarmService, Depends(_alarms)]
AlarmStoreDep = Annotated[AlarmRepository, Depends(_alarm_store)]
UsersDep = Annotated[UserRepository, Depends(_users)]
IngestDep = Annotated[Ingest, Depends(_ingest)]
InspectionsDep = Annotated[InspectionService, Depends(_inspections)]
LiveDep = Annotated[LiveState, Depends(_live)]
SeriesDep = Annotated[TimeSeriesWriter, Depends(_series)]
NotifyDep = Annotated[NotificationService, Depends(_notify)]
CommandsDep = Annotated[CommandService, Depends(_commands)]
CutsDep = Annotated[DelayedCutService, Depends(_cuts)]
EvacuationsDep = Annotated[EvacuationService, Depends(_evacuations)]
RunsSiteDep = Annotated[Callable[[], bool], Depends(_runs_site)]


def _audit_trail(store: AlarmStoreDep, clock: ClockDep) -> AuditTrail:
    return AuditTrail(store, clock)


AuditDep = Annotated[AuditTrail, Depends(_audit_trail)]


def get_actor(users: UsersDep, clock: ClockDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    actor = _actor_of(users, credentials.credentials, clock())
    if actor is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return actor


def _actor_of(users: UserRepository, token: str, now: datetime) -> Actor | None:
    user = users.by_token(token, now)
    if user is None:
        return None
    return Actor(user.name, parse_roles(user.roles.split(",")), frozenset(z for z in user.zones.split(",") if z))


ActorDep = Annotated[Actor, Depends(get_actor)]


def _actor_unchanged(users: UsersDep, clock: ClockDep, actor: ActorDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                     ) -> Callable[[], bool]:
    """Whether the request's token still stands for the same person with the same roles and zones: a
    long-lived response (the alarm stream) asks again while it runs, so a logout, a revocation or a change
    of roles ends it rather than going on with what the reader was entitled to when it connected."""
    token = credentials.credentials if credentials is not None else ""
    return lambda: _actor_of(users, token, clock()) == actor


ActorUnchangedDep = Annotated[Callable[[], bool], Depends(_actor_unchanged)]


def require(permission: Permission) -> Callable[[Actor], Actor]:
    """The route's role check, from the authorization table (server/domain/policy.py PERMISSIONS)."""
    roles = PERMISSIONS[permission]

    def check(actor: ActorDep) -> Actor:
        if not may(actor, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"{permission.value} needs one of the roles: {', '.join((*roles, Role.ADMIN))}")
        return actor

    return check
