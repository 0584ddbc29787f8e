"""No secret reaches a log: a real server at DEBUG runs a login, token use, a fire report pushed to webhooks whose
URLs carry a path token and a basic-auth password; every log record (formatted message, arguments, exception text) and
everything written to stdout/stderr is searched for the password, the bearer tokens and the URL secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tests.server.api.api_server import ADMIN_TOKEN, HOOK_PASSWORD, HOOK_SECRET, server_on_mosquitto
from tests.support.wait import wait_until

PASSWORD = "guard-secret-pass-5521"


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))  # message with its args, and the traceback if any
        self.texts.append(repr(record.args))
        self.texts.append(repr(getattr(record, "__dict__", {})))  # structured extras


@pytest.fixture
def captured() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


def test_no_password_token_or_url_secret_in_any_log(captured: Everything, capfd: pytest.CaptureFixture[str],
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    secrets = [PASSWORD, ADMIN_TOKEN, HOOK_SECRET, HOOK_PASSWORD]
    with server_on_mosquitto(tmp_path_factory.mktemp("logs"), log_level="debug") as api:
        service = api.account("guard", ["supervisor"], password=PASSWORD)
        login = api.client(None).post("/api/login", json={"name": "guard", "password": PASSWORD})
        assert login.status_code == 200
        token = login.json()["token"]
        secrets += [service, token]
        assert api.client(token).get("/api/me").json()["name"] == "guard"
        assert api.client(None).post("/api/login", json={"name": "guard", "password": PASSWORD + "x"}
                                     ).status_code == 401
        t0 = time.monotonic()
        fire = api.client(token).post("/api/fire/z1/report", json={"note": "smoke"})  # pages at once
        assert fire.status_code == 200
        assert wait_until(lambda: any(HOOK_SECRET in path for path, _, _ in api.hook.received), timeout=60)
        first_push = time.monotonic() - t0
        assert any(auth.startswith("Basic ") for _, auth, _ in api.hook.received)  # the URL's password in use
        assert api.client(token).post("/api/logout").status_code == 204
    out, err = capfd.readouterr()
    texts = [*captured.texts, out, err]
    print(f"\nsearched {len(captured.texts) // 3} log records and {len(out) + len(err)} characters of "
          f"stdout/stderr for {len(secrets)} secrets; {len(api.hook.received)} pushes delivered, "
          f"the first {first_push:.1f} s after the alarm")
    assert len(captured.texts) > 30  # the server did log (DEBUG): the search had something to search
    leaks = {s[:6] + "…": [t[:300] for t in texts if s in t][:3] for s in secrets if any(s in t for t in texts)}
    assert not leaks, leaks
