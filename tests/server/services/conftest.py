"""Real parts for the response tests: an SMTP server (aiosmtpd) and an HTTP webhook receiver on
127.0.0.1, a migrated SQLite database, a small site whose contacts point at them, a fake clock."""

from __future__ import annotations

import email
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.broker import free_port
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.domain.site import Site, parse_site

BASE_URL = "http://fw.test"


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self.now += delta
            return self.now


@dataclass
class Smtp:
    port: int
    messages: list[Message] = field(default_factory=list)

    def texts(self) -> list[tuple[str, str, str]]:
        """(to, subject, plain text body) of every message received."""
        out = []
        for m in self.messages:
            body = ""
            for part in m.walk():
                if part.get_content_type() == "text/plain":
                    payload = part.get_payload(decode=True)
                    assert isinstance(payload, bytes)
                    body = payload.decode(part.get_content_charset() or "utf-8")
                    break
            subject = str(email.header.make_header(email.header.decode_header(m["Subject"] or "")))
            out.append((m["To"] or "", subject, body))
        return out


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    box = Smtp(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@dataclass
class Hook:
    port: int
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    """The Idempotency-Key header of each request, in the order of `received`."""
    fail_next: int = 0
    """Answer this many of the next requests with 503 (a receiver that is down)."""

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.received if p == path]


@pytest.fixture
def hook() -> Iterator[Hook]:
    box = Hook(0)
    lock = threading.Lock()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                failing = box.fail_next > 0
                box.fail_next -= int(failing)
                box.keys.append(self.headers.get("Idempotency-Key"))
                if not failing:
                    box.received.append((self.path, data))
            self.send_response(503 if failing else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def site_yaml(smtp_port: int, hook_port: int, strips: int = 3, dead_port: int | None = None) -> str:
    j = f"json://127.0.0.1:{hook_port}"
    dead = f"json://127.0.0.1:{dead_port}/dead" if dead_port else f"{j}/safety"
    strip_lines = "\n".join(
        f"  - {{id: strip-z{1 + i % 2}-{i:02d}, kind: strip_meter, zone: z{1 + i % 2}, edge: e1, rated_a: 10}}"
        for i in range(strips))
    return f"""
site: {{id: r1, name: Response test floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones:
  - {{id: z1, name: 坐席区一, floor: f1, kind: office, adjacent: [z2]}}
  - {{id: z2, name: 坐席区二, floor: f1, kind: office, adjacent: [z1]}}
  - {{id: mr, name: 机房, floor: f1, kind: machine_room}}
devices:
  - {{id: smoke-z1-01, kind: smoke_detector, zone: z1, edge: e1}}
  - {{id: smoke-z1-02, kind: smoke_detector, zone: z1, edge: e1}}
  - {{id: smoke-z2-01, kind: smoke_detector, zone: z2, edge: e1}}
  - {{id: door-z1-exit, kind: door_controller, zone: z1, door_type: egress, essential: true, edge: e1}}
  - {{id: door-z2-exit, kind: door_controller, zone: z2, door_type: egress, essential: true, edge: e1}}
  - {{id: plug-z1-kettle, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: non_essential, cuttable: true,
      seat: s1}}
  - {{id: plug-z1-pc, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: essential, essential: true}}
  - {{id: plug-z2-heater, kind: smart_plug, zone: z2, edge: e1, rated_a: 10, class: non_essential, cuttable: true}}
{strip_lines}
people:
  - {{id: p-lead, name: 王领班, badge: B1, roles: [shift_lead]}}
  - {{id: p-sup, name: 李主管, badge: B2, roles: [supervisor]}}
  - {{id: p-safe, name: 安全员, badge: B3, roles: [safety_officer, on_site_command]}}
  - {{id: p-ec, name: 总指挥, badge: B4, roles: [emergency_command]}}
  - {{id: p-info, name: 信息员, badge: B5, roles: [information_reporting]}}
  - {{id: p-log, name: 后勤员, badge: B6, roles: [logistics]}}
  - {{id: p-op1, name: 坐席一, badge: B11, roles: [operator]}}
  - {{id: p-op2, name: 坐席二, badge: B12, roles: [operator]}}
  - {{id: p-op3, name: 坐席三, badge: B13, roles: [operator]}}
  - {{id: v-1, name: 访客, badge: V1, is_visitor: true, host: p-op1}}
contacts:
  p-lead: ['mailto://127.0.0.1:{smtp_port}?from=floorwatch@example.com&to=lead@example.com&mode=insecure']
  supervisor: ['{j}/supervisor']
  safety_officer: ['{dead}']
  emergency_command: ['{j}/ec']
  on_site_command: ['{j}/osc']
  information_reporting: ['{j}/info']
  logistics: ['{j}/logistics']
  facilities: ['{j}/facilities']
  mr_duty: ['{j}/mr']
  fallback: ['{j}/fallback']
  p-op1: ['{j}/op1']
  p-op2: ['{j}/op2']
shifts:
  - {{id: all, start: '00:00', end: '00:00'}}
roster:
  - {{person: p-lead, shift: all, zone: z1, lead: true}}
  - {{person: p-op1, shift: all, zone: z1, seat: s1}}
  - {{person: p-op2, shift: all, zone: z2, seat: s2}}
"""


def make_site(text: str, tmp: Path) -> Site:
    path = tmp / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_site(text, str(path))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'fw.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    yield url, session_factory(engine)
    engine.dispose()


@pytest.fixture
def pg_db(postgres_schema: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """The schema migrated on the real PostgreSQL, for what needs the site's lease (PostgreSQL only)."""
    engine = make_engine(postgres_schema)
    migrate(engine)
    yield engine, session_factory(engine)
    engine.dispose()


T0 = datetime(2026, 11, 29, 3, 0, 0, tzinfo=UTC)
