"""Accounts: login (password → expiring token), the caller's identity, and admin user management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from server.adapters.sql.models import UserRow
from server.adapters.sql.repository import UserRepository
from server.api.audit import audit_change
from server.api.deps import ActorDep, AuditDep, ClockDep, SettingsDep, SiteDep, UsersDep, require
from server.domain.policy import Actor, Permission, Role, permissions_of
from server.services.auth import LoginLimiter, hash_password, verify_password

router = APIRouter(tags=["users"])
AdminDep = Annotated[Actor, Depends(require(Permission.MANAGE_USERS))]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class Login(BaseModel):
    name: Name
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    token: str
    expires_in_s: int | None
    """None for a service token, which does not expire."""


class UserIn(BaseModel):
    roles: list[Role] = Field(min_length=1)
    zones: list[str] = []
    password: str | None = Field(None, min_length=10, max_length=256)
    service_token: bool = False
    """Also issue a non-expiring token (for integrations and wall displays); shown once."""


class UserOut(BaseModel):
    name: str
    roles: list[str]
    zones: list[str]
    active: bool
    has_password: bool


class Me(BaseModel):
    name: str
    roles: list[str]
    zones: list[str]
    permissions: list[str]
    """What this account may do (server/domain/policy.py PERMISSIONS): the page shows only those buttons."""


@router.post("/login", response_model=TokenOut)
def login(body: Login, request: Request, clock: ClockDep, users: UsersDep, settings: SettingsDep,
          audit: AuditDep) -> TokenOut:
    now = clock()
    key = f"{body.name}|{request.client.host if request.client else '-'}"
    limiter: LoginLimiter = request.app.state.login_limiter
    wait = limiter.retry_after(key, now)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = users.by_name(body.name)
    if user is None or not user.active or not verify_password(body.password, user.password_hash):
        limiter.failed(key, now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong name or password")
    limiter.succeeded(key)
    ttl = timedelta(hours=settings.login_token_ttl_h)
    token = users.issue_token(user.id, now, ttl, "login")
    audit_change(audit, user.name, request, f"user:{user.name}", None,
                 {"token": "login", "expires_at": now + ttl})  # the token itself never goes in a row
    return TokenOut(token=token, expires_in_s=int(ttl.total_seconds()))


_bearer = HTTPBearer(auto_error=False)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, users: UsersDep, audit: AuditDep, actor: ActorDep,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    if credentials is not None:
        users.revoke_token(credentials.credentials)
        audit_change(audit, actor, request, f"user:{actor.name}", {"token": "valid"}, {"token": "revoked"})


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    return Me(name=actor.name, roles=sorted(actor.roles), zones=sorted(actor.zones),
              permissions=[p.value for p in permissions_of(actor)])


def _user_out(u: UserRow) -> UserOut:
    return UserOut(name=u.name, roles=[r for r in u.roles.split(",") if r], zones=[z for z in u.zones.split(",") if z],
                   active=u.active, has_password=u.password_hash is not None)


def _user_state(users: UserRepository, name: str) -> dict[str, object] | None:
    user = users.by_name(name)
    return _user_out(user).model_dump() if user is not None else None


@router.get("/users", response_model=list[UserOut])
def list_users(users: UsersDep, admin: AdminDep) -> list[UserOut]:
    return [_user_out(u) for u in users.all()]


@router.put("/users/{name}", response_model=TokenOut | None)
def save_user(name: Name, body: UserIn, request: Request, clock: ClockDep, site: SiteDep, users: UsersDep,
              audit: AuditDep, admin: AdminDep) -> TokenOut | None:
    """Create or update an account. Badge numbers and personal data stay in the site file."""
    now = clock()
    unknown = [z for z in body.zones if z not in site.zones]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown zones: {', '.join(unknown)}")
    if name == admin.name and Role.ADMIN not in body.roles:
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot remove their own admin role")
    before = _user_state(users, name)
    user = users.save(name, [r.value for r in body.roles], now, body.zones,
                              hash_password(body.password) if body.password else None)
    audit_change(audit, admin, request, f"user:{name}", before, _user_state(users, name),
                 {"password_changed": body.password is not None, "service_token": body.service_token})
    if body.service_token:
        return TokenOut(token=users.issue_token(user.id, now, None, "service"), expires_in_s=None)
    return None


@router.delete("/users/{name}", status_code=status.HTTP_204_NO_CONTENT)
def deactivate_user(name: Name, request: Request, users: UsersDep, audit: AuditDep, admin: AdminDep) -> None:
    if name == admin.name:
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot deactivate their own account")
    before = _user_state(users, name)
    if not users.deactivate(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
    audit_change(audit, admin, request, f"user:{name}", before, _user_state(users, name))
