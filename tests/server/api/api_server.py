"""A real Floorwatch server for the API security tests: uvicorn on 127.0.0.1 with a temporary SQLite,
a real Mosquitto, a webhook receiver whose URLs carry secrets, and accounts of every role.

Used by test_api_schema.py, test_api_roles.py, test_audit.py, test_secrets_in_logs.py and
test_data_minimisation.py. Accounts get service tokens (no scrypt per test, no login rate limit).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gateway import contract
from gateway.broker import EmbeddedBroker, free_port, mosquitto_binary
from gateway.mqtt import MqttClient
from server.domain.policy import Role
from server.settings import Settings
from tests.conftest import require_service
from tests.support.server import serve
from tests.support.wait import wait_until

ADMIN_TOKEN = "sec-admin-token-0f3a9c"
HOOK_SECRET = "hook-path-secret-7d2e41"
"""A webhook URL's path token (as Slack/Teams/DingTalk URLs carry one): must never reach a log."""
HOOK_PASSWORD = "hook-basic-pass-91b7"
"""Basic-auth password inside a webhook URL: must never reach a log."""


@dataclass
class Hook:
    """An HTTP receiver on 127.0.0.1 that records (path, authorization header, JSON body)."""

    port: int = 0
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


@contextmanager
def webhook_receiver() -> Iterator[Hook]:
    box = Hook()
    lock = threading.Lock()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                box.received.append((self.path, self.headers.get("Authorization", ""), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # the receiver's own access log is not the server's
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def site_yaml(hook_port: int) -> str:
    """Doors, plugs, a strip with a short overload hold, people with badges; pushes go to the hook with
    a secret in the URL path and a password in its authority."""
    hook = f"json://pushuser:{HOOK_PASSWORD}@127.0.0.1:{hook_port}/hooks/{HOOK_SECRET}"
    return f"""
site: {{id: sec, name: Security test floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones:
  - {{id: z1, name: Zone 1, floor: f1, kind: office, adjacent: [z2], polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}}
  - {{id: z2, name: Zone 2, floor: f1, kind: office, adjacent: [z1]}}
devices:
  - {{id: strip-z1-01, kind: strip_meter, zone: z1, edge: e1, rated_a: 10}}
  - {{id: smoke-z1-01, kind: smoke_detector, zone: z1, edge: e1}}
  - {{id: door-z1-exit, kind: door_controller, zone: z1, door_type: egress, essential: true, edge: e1}}
  - {{id: plug-z1-kettle, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: non_essential, cuttable: true}}
thresholds:
  devices:
    strip-z1-01:
      elec.strip_overload: {{major_hold_s: 1, clear_hold_s: 1}}
people:
  - {{id: p-lead, name: 王领班, badge: B1001, roles: [shift_lead]}}
  - {{id: p-op1, name: 坐席一, badge: B1011, roles: [operator]}}
  - {{id: p-op2, name: 坐席二, badge: B1012, roles: [operator]}}
contacts:
  supervisor: ['{hook}/supervisor']
  safety_officer: ['{hook}/safety']
  shift_lead: ['{hook}/lead']
  emergency_command: ['{hook}/ec']
  on_site_command: ['{hook}/osc']
  fallback: ['{hook}/fallback']
  p-lead: ['{hook}/p-lead']
  p-op1: ['{hook}/p-op1']
shifts:
  - {{id: all, start: '00:00', end: '00:00'}}
roster:
  - {{person: p-lead, shift: all, zone: z1, lead: true}}
  - {{person: p-op1, shift: all, zone: z1, seat: s1}}
"""


@dataclass
class Api:
    url: str
    admin: httpx.Client
    broker: EmbeddedBroker
    hook: Hook
    settings: Settings
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=20)
        self.clients.append(c)
        return c

    def account(self, name: str, roles: list[str], zones: list[str] | None = None,
                password: str | None = None) -> str:
        """Create (or update) an account and return a service token for it."""
        body: dict[str, Any] = {"roles": roles, "zones": zones or [], "service_token": True}
        if password is not None:
            body["password"] = password
        response = self.admin.put(f"/api/users/{name}", json=body)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def as_roles(self, name: str, roles: list[str], zones: list[str] | None = None) -> httpx.Client:
        return self.client(self.account(name, roles, zones))

    def overload_strip(self) -> dict[str, Any]:
        """Contract telemetry from edge e1 at 120 % of the strip until a major overload alarm is open."""
        device = MqttClient(self.broker.client_settings(), f"edge-e1-{time.monotonic_ns()}")
        device.start()
        assert device.wait_connected(10)
        topic = contract.edge_topic("sec", "e1", contract.Channel.TELEMETRY)
        found: list[dict[str, Any]] = []
        seq = [0]

        def raised() -> bool:
            now = datetime.now(UTC)
            seq[0] += 1
            batch = contract.TelemetryBatch(edge="e1", seq=seq[0], sent_at=now, readings=[contract.Reading(
                device="strip-z1-01", ts=now, metrics={"current_a": 12.0, "power_w": 2640.0})])
            device.publish(topic, contract.encode(batch), qos=1)
            found[:] = [a for a in self.admin.get("/api/alarms?state=open").json()
                        if a["rule"] == "elec.strip_overload"]
            return bool(found)

        try:
            assert wait_until(raised, timeout=30, step=0.5), "no strip overload alarm"
        finally:
            device.stop()
        return found[0]


@contextmanager
def running_server(broker: EmbeddedBroker, tmp: Path, log_level: str = "warning") -> Iterator[Api]:
    with webhook_receiver() as hook:
        site = tmp / "site.yaml"
        site.write_text(site_yaml(hook.port), encoding="utf-8")
        settings = Settings(site_file=site, data_dir=tmp / "server", mqtt=broker.client_settings(),
                            admin_token=ADMIN_TOKEN, http_port=free_port(), gap_window_s=2)
        with serve(settings, log_level=log_level, graceful_shutdown_s=None) as server:
            admin = server.client(ADMIN_TOKEN, timeout=20)
            api = Api(server.url, admin, broker, hook, settings)
            try:
                yield api
            finally:
                for c in [admin, *api.clients]:
                    c.close()



@contextmanager
def server_on_mosquitto(tmp: Path, log_level: str = "warning") -> Iterator[Api]:
    """`running_server` on a private Mosquitto of its own, stopped afterwards."""
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    broker = EmbeddedBroker(kind="mosquitto")
    broker.start()
    try:
        with running_server(broker, tmp, log_level) as api:
            yield api
    finally:
        broker.stop()


ALL_ROLES = [r.value for r in Role]


def api_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, endpoint) of every /api route the app serves, walking included routers
    (FastAPI ≥ 0.16x keeps them as included-router nodes rather than flattening them)."""
    from fastapi.routing import APIRoute

    found: list[tuple[str, str, Any]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                found.extend((m, prefix + route.path, route.endpoint) for m in sorted(route.methods or ()))

    walk(app.routes, "")
    return [r for r in found if r[1].startswith("/api/")]
