"""FastAPI dependencies by type: the runtime, the authenticated actor, role requirements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.domain.policy import PERMISSIONS, Actor, Permission, Role, may, parse_roles
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


def require(permission: Permission) -> Callable[[Actor], Actor]:
    """The route's role check, from the authorization table (server/domain/policy.py PERMISSIONS)."""
    roles = PERMISSIONS[permission]

    def check(actor: ActorDep) -> Actor:
        if not may(actor, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"{permission.value} needs one of the roles: {', '.join((*roles, Role.ADMIN))}")
        return actor

    return check
