"""FastAPI dependencies by type: the runtime, the authenticated actor, role requirements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.domain.policy import Actor, Role, parse_roles
from server.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_actor(runtime: RuntimeDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    user = runtime.users.by_token(credentials.credentials, runtime.clock())
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return Actor(user.name, parse_roles(user.roles.split(",")),
                 frozenset(z for z in user.zones.split(",") if z))


ActorDep = Annotated[Actor, Depends(get_actor)]


def require(*roles: Role) -> Callable[[Actor], Actor]:
    def check(actor: ActorDep) -> Actor:
        if not actor.has(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs one of the roles: {', '.join(roles)}")
        return actor

    return check
