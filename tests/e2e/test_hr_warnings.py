"""The running server names HR leavers the site file does not know (its log) and counts them (health)."""

from __future__ import annotations

from pathlib import Path

from gateway.broker import EmbeddedBroker
from tests.e2e.conftest import HERE
from tests.support.server import ServerProcess


def test_unknown_leavers_are_logged_by_name_and_counted_in_health(mosquitto: EmbeddedBroker,
                                                                  tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text((HERE / "site.yaml").read_text(encoding="utf-8")
                    + "people:\n  - {id: p-known, badge: B1, roles: [operator]}\n", encoding="utf-8")
    (tmp_path / "hr.yaml").write_text(
        "leavers:\n  - {person: p-known, left_at: '2026-11-27 10:00'}\n"
        "  - {person: p-ghost, left_at: '2026-11-27 10:00'}\n", encoding="utf-8")
    server = ServerProcess(mosquitto.client_settings(), tmp_path / "server", site)
    try:
        server.start()
        assert server.health()["dependencies"]["hr"] == {"up": True, "unknown_leavers": 1, "error": None, "kept": []}
    finally:
        server.stop()
    log = (tmp_path / "server" / "server.log").read_text(encoding="utf-8")
    assert f"hr: {tmp_path / 'hr.yaml'}:3: leavers[1].person: unknown person 'p-ghost'" in log
    assert "p-known'" not in log
