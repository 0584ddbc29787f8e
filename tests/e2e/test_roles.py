"""Accounts and roles through the real server: who may acknowledge what, logins, limits, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.repository import UserRepository
from server.services.auth import hash_password, verify_password
from tests.e2e.conftest import Stack
from tests.e2e.test_skeleton import publish_strip


def login(stack: Stack, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{stack.url}/api/login", json={"name": name, "password": password})


def as_user(stack: Stack, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"})


def test_an_operator_cannot_acknowledge_another_zones_alarm_but_a_shift_lead_can(stack: Stack) -> None:
    admin = stack.client
    assert admin.put("/api/users/op-z2", json={"roles": ["operator"], "zones": ["z2"],
                                               "password": "operator-pass-1"}).status_code == 200
    assert admin.put("/api/users/op-z1", json={"roles": ["operator"], "zones": ["z1"],
                                               "password": "operator-pass-2"}).status_code == 200
    assert admin.put("/api/users/lead", json={"roles": ["shift_lead"], "password": "lead-pass-123"}).status_code == 200
    publish_strip(stack, amps=11.0, seconds=4.5)  # 110 %: major in zone z1
    alarm = stack.wait_for("/api/alarms?state=active", lambda b: bool(b), timeout=20)[0]
    assert alarm["severity"] == "major" and alarm["zone"] == "z1"

    other_zone = as_user(stack, login(stack, "op-z2", "operator-pass-1").json()["token"])
    refused = other_zone.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "not mine"})
    assert refused.status_code == 403 and "z1" in refused.json()["detail"]
    assert other_zone.get("/api/alarms").status_code == 200  # reading is fine

    own_zone = as_user(stack, login(stack, "op-z1", "operator-pass-2").json()["token"])
    assert own_zone.post("/api/users/x", json={"roles": ["admin"]}).status_code in (403, 405)
    assert own_zone.put("/api/users/x", json={"roles": ["admin"]}).status_code == 403
    acked = own_zone.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "unplugged the heater"})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "op-z1"


def test_critical_alarms_are_for_responders_only(stack: Stack) -> None:
    stack.client.put("/api/users/op-z1", json={"roles": ["operator"], "zones": ["z1"], "password": "operator-pass-2"})
    stack.client.put("/api/users/lead", json={"roles": ["shift_lead"], "password": "lead-pass-123"})
    publish_strip(stack, amps=13.0, seconds=4.5)  # 130 % for > 10 s → critical (surge)
    publish_strip(stack, amps=13.0, seconds=7)
    alarm = stack.wait_for("/api/alarms?state=active",
                           lambda b: any(a["severity"] == "critical" for a in b), timeout=30)[0]
    operator = as_user(stack, login(stack, "op-z1", "operator-pass-2").json()["token"])
    assert operator.post(f"/api/alarms/{alarm['id']}/ack", json={}).status_code == 403
    lead = as_user(stack, login(stack, "lead", "lead-pass-123").json()["token"])
    assert lead.post(f"/api/alarms/{alarm['id']}/ack", json={}).status_code == 200


def test_failed_logins_are_rate_limited_and_a_deactivated_account_loses_its_tokens(stack: Stack) -> None:
    stack.client.put("/api/users/guard", json={"roles": ["supervisor"], "password": "guard-pass-123"})
    token = login(stack, "guard", "guard-pass-123").json()["token"]
    assert as_user(stack, token).get("/api/me").json()["roles"] == ["supervisor"]
    codes = [login(stack, "guard", f"wrong-{i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert login(stack, "guard", "guard-pass-123").status_code == 429  # even the right one, for a while
    assert stack.client.delete("/api/users/guard").status_code == 204
    assert as_user(stack, token).get("/api/me").status_code == 401
    assert {"name": "guard", "active": False}.items() <= next(
        u for u in stack.client.get("/api/users").json() if u["name"] == "guard").items()


def test_login_tokens_expire_and_service_tokens_do_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'users.sqlite'}")
    migrate(engine)
    users = UserRepository(session_factory(engine))
    now = datetime(2026, 11, 29, 8, tzinfo=UTC)
    user = users.save("lead", ["shift_lead"], now, password_hash=hash_password("lead-pass-123"))
    login_token = users.issue_token(user.id, now, timedelta(hours=12), "login")
    service_token = users.issue_token(user.id, now, None, "service")
    assert users.by_token(login_token, now + timedelta(hours=11)) is not None
    assert users.by_token(login_token, now + timedelta(hours=12)) is None
    assert users.by_token(service_token, now + timedelta(days=400)) is not None
    stored = users.by_name("lead")
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("scrypt$") and "lead-pass-123" not in stored.password_hash
    assert verify_password("lead-pass-123", stored.password_hash)
    assert not verify_password("lead-pass-124", stored.password_hash)
