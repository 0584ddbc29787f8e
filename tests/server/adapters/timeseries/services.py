"""Real time-series servers for tests: VictoriaMetrics and InfluxDB 1.6, on free ports in temp dirs.

Nothing here is mocked: the Debian packages `victoria-metrics` and `influxdb` provide the binaries
(`scripts/system-packages.sh`, run by `make test`, installs them). A test that needs a missing binary fails when CI=true
and is skipped with a visible reason otherwise (see `require_binary`).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.broker import free_port
from tests.conftest import require_service
from tests.support.wait import wait_until


def require_binary(name: str, package: str) -> str:
    """The binary's path; fail in CI, skip elsewhere (with the reason) when it is missing."""
    path = shutil.which(name)
    require_service(path is not None, f"{name} (apt-get install -y {package}, or scripts/system-packages.sh)")
    assert path is not None
    return path


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


class ServerProcess:
    """A server binary on 127.0.0.1:port with its data in one directory; stop and start it again."""

    name = "server"
    ready_path = "/"
    ready_status = frozenset({200, 204})

    def __init__(self, binary: str, data_dir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        proc = self.proc

        def ready_or_exited() -> bool:
            if proc.poll() is not None:
                return True
            try:
                status, _ = http_get(self.url + self.ready_path, timeout=1.0)
            except OSError:
                return False
            return status in self.ready_status

        ready = wait_until(ready_or_exited, timeout_s, 0.05)
        if proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {proc.returncode}: {self.tail_log()}")
        if ready:
            return
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout_s}s: {self.tail_log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Stop the process (SIGTERM lets the server flush what it acknowledged; SIGKILL does not)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def tail_log(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class VictoriaMetrics(ServerProcess):
    """Accepts influxdb-client's v2 writes (bucket, org ignored); names series `<measurement>_<field>`."""

    name = "victoria-metrics"
    ready_path = "/health"

    def args(self) -> list[str]:
        return [
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache",
            "-loggerLevel=ERROR",
        ]

    def force_flush(self) -> None:
        http_get(self.url + "/internal/force_flush")

    def export(self, match: str) -> dict[str, dict[int, float]]:
        """Series name -> {timestamp ms: value}, through /api/v1/export."""
        import json

        self.force_flush()
        status, body = http_get(self.url + "/api/v1/export?" + urllib.parse.urlencode({"match[]": match}))
        if status != 200:
            raise RuntimeError(f"export failed: {status} {body[:300]!r}")
        out: dict[str, dict[int, float]] = {}
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            labels = item["metric"]
            key = labels["__name__"] + "{" + ",".join(
                f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__"
            ) + "}"
            out.setdefault(key, {}).update(zip(item["timestamps"], item["values"], strict=True))
        return out


class Influxd16(ServerProcess):
    """InfluxDB 1.6 (Debian's `influxdb`): v1 /write and /query, reporting disabled, loopback only."""

    name = "influxd"
    ready_path = "/ping"

    def __init__(self, binary: str, data_dir: Path, port: int | None = None) -> None:
        super().__init__(binary, data_dir, port)
        self.rpc_port = free_port()

    def config(self) -> str:
        d = self.data_dir
        return f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"""

    def args(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "influxdb.conf"
        conf.write_text(self.config())
        return [self.binary, "-config", str(conf)]

    def query(self, q: str, db: str | None = None, epoch: str = "ms") -> dict[str, object]:
        import json

        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        status, body = http_post(
            self.url + "/query?" + urllib.parse.urlencode(params), b""
        )
        if status != 200:
            raise RuntimeError(f"query failed: {status} {body[:300]!r}")
        result: dict[str, object] = json.loads(body)
        return result

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def write_lines(self, db: str, lines: list[str], precision: str = "ms") -> None:
        url = self.url + "/write?" + urllib.parse.urlencode({"db": db, "precision": precision})
        for i in range(0, len(lines), 5000):
            status, body = http_post(url, "\n".join(lines[i : i + 5000]).encode())
            if status != 204:
                raise RuntimeError(f"write failed: {status} {body[:300]!r}")
