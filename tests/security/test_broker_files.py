"""`floorwatch broker files` run as an installer runs it, on a real Mosquitto of the machine: the files
start a broker that lets the server's and the edge's credentials in, once passwd is handed to the broker's
user as the command says. Mosquitto 2 opens the password file after dropping from root to `mosquitto`, so
the installer's mode-600 file alone keeps the broker from starting ("Unable to open pwfile")."""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest

from gateway.broker import free_port, mosquitto_binary, wait_listening
from gateway.mqtt import MqttClient, MqttSettings
from server import cli
from tests.conftest import require_service

pytestmark = pytest.mark.mosquitto


def _native(conf: str, out: Path, port: int) -> str:
    """The image's paths and port made this folder's, as the command's note says a native broker needs."""
    return (conf.replace("/mosquitto/config/", f"{out}/").replace("/mosquitto/data/", f"{out}/data/")
            .replace("listener 1883 0.0.0.0", f"listener {port} 127.0.0.1")
)


def _start(binary: str, conf: Path, port: int) -> tuple[subprocess.Popen[bytes], bool]:
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, wait_listening("127.0.0.1", port, timeout=5) and process.poll() is None


def test_broker_files_start_a_mosquitto_once_passwd_is_handed_over_as_said() -> None:
    with tempfile.TemporaryDirectory(prefix="floorwatch-files-") as folder:  # a path `mosquitto` may walk
        Path(folder).chmod(0o755)
        _check_broker_files(Path(folder))


def _check_broker_files(tmp_path: Path) -> None:
    binary = mosquitto_binary()
    require_service(binary is not None, "mosquitto (apt-get install mosquitto)")
    assert binary is not None
    require_service(os.geteuid() == 0, "root (Mosquitto drops to its own user only when started as root)")
    account = pwd.getpwnam("mosquitto")
    out = tmp_path / "mosquitto"
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        assert cli.main(["broker", "files", "--site", "hq", "--edge", "edge-f3", "--out", str(out)]) == 0
    assert f"sudo chown 1883 {out / 'passwd'}" in said.getvalue()
    assert "`sudo chown mosquitto` for a Mosquitto of the machine" in said.getvalue()
    (out / "data").mkdir()
    os.chown(out / "data", account.pw_uid, account.pw_gid)
    port = free_port()
    conf = out / "native.conf"
    conf.write_text(_native((out / "mosquitto.conf").read_text(), out, port))

    # As written: the broker cannot read the installer's passwd and exits.
    process, up = _start(binary, conf, port)
    process.kill()
    _, err = process.communicate(timeout=5)
    assert not up, "Mosquitto started although its user cannot read passwd"
    assert "Unable to open pwfile" in err.decode(errors="replace")

    # Handed to the broker's user, as the command says: the server's and the edge's credentials connect.
    os.chown(out / "passwd", account.pw_uid, account.pw_gid)
    process, up = _start(binary, conf, port)
    try:
        if not up:
            process.kill()
            err = process.communicate(timeout=5)[1]
            pytest.fail(f"Mosquitto did not start with passwd handed to its user: {err!r}")
        passwords = dict(line.split() for line in (out / "credentials.txt").read_text().splitlines())
        for user in ("floorwatch-server", "edge-f3"):
            client = MqttClient(MqttSettings(host="127.0.0.1", port=port, username=user,
                                             password=passwords[user]), f"files-{user}")
            client.start()
            try:
                assert client.wait_connected(10), f"{user} was not let in"
            finally:
                client.stop()
    finally:
        process.terminate()
        process.wait(5)
