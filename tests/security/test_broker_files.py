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
import sys
import tempfile
from collections.abc import Iterator
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


DEBIAN_CONF = """# Place your local configuration in {etc}/conf.d/
pid_file {root}/run/mosquitto.pid

persistence true
persistence_location {root}/lib/

log_dest file {root}/log/mosquitto.log
{include}"""
"""The main file of Debian's mosquitto package (2.0.11-1.2+deb12u2), its paths moved under a test folder."""


def test_debian_files_drop_into_conf_d_and_the_packaged_broker_starts_with_them() -> None:
    """On a Debian box the installer keeps the package's mosquitto.conf (persistence, log, include_dir) and
    adds files beside it: `--debian` writes conf.d/floorwatch.conf without the settings the package already
    makes (a second persistence_location stops Mosquitto: "Duplicate persistence_location value"), and hands
    passwd to the broker's user itself, so the broker starts as installed."""
    binary = mosquitto_binary()
    require_service(binary is not None, "mosquitto (apt-get install mosquitto)")
    assert binary is not None
    require_service(os.geteuid() == 0, "root (Mosquitto drops to its own user only when started as root)")
    account = pwd.getpwnam("mosquitto")
    with tempfile.TemporaryDirectory(prefix="floorwatch-debian-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        etc = root / "etc" / "mosquitto"
        etc.mkdir(parents=True)
        for name in ("run", "lib", "log"):
            (root / name).mkdir()
            os.chown(root / name, account.pw_uid, account.pw_gid)
        main_conf = etc / "mosquitto.conf"
        main_conf.write_text(DEBIAN_CONF.format(etc=etc, root=root, include=""))
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            assert cli.main(["broker", "files", "--site", "hq", "--edge", "edge-f3", "--debian",
                             "--out", str(etc)]) == 0
        # a main file without include_dir never reads conf.d: said, with the line to add
        assert f"include_dir {etc / 'conf.d'}" in said.getvalue(), said.getvalue()
        main_conf.write_text(DEBIAN_CONF.format(etc=etc, root=root, include=f"\ninclude_dir {etc / 'conf.d'}\n"))

        snippet = etc / "conf.d" / "floorwatch.conf"
        text = snippet.read_text()
        assert "persistence_location" not in text and "log_dest" not in text
        assert f"password_file {etc / 'floorwatch.passwd'}" in text and f"acl_file {etc / 'floorwatch.acl'}" in text
        passwd = (etc / "floorwatch.passwd").stat()
        assert (passwd.st_uid, passwd.st_mode & 0o777) == (account.pw_uid, 0o600)
        credentials = (etc / "floorwatch-credentials.txt").stat()
        assert (credentials.st_uid, credentials.st_mode & 0o777) == (0, 0o600)
        assert "systemctl restart mosquitto" in said.getvalue()

        port = free_port()
        snippet.write_text(text.replace("listener 1883 0.0.0.0", f"listener {port} 127.0.0.1"))
        process, up = _start(binary, main_conf, port)
        try:
            if not up:
                process.kill()
                pytest.fail(f"the packaged Mosquitto did not start with the files: {process.communicate(5)[1]!r}")
            passwords = dict(line.split() for line in (etc / "floorwatch-credentials.txt").read_text().splitlines())
            for user, password in (("floorwatch-server", passwords["floorwatch-server"]),
                                   ("edge-f3", passwords["edge-f3"]), (None, None)):
                client = MqttClient(MqttSettings(host="127.0.0.1", port=port, username=user, password=password),
                                    f"debian-{user}")
                client.start()
                try:
                    assert client.wait_connected(5 if user is None else 10) is (user is not None), user
                finally:
                    client.stop()
        finally:
            process.terminate()
            process.wait(5)


@contextlib.contextmanager
def _reachable_by_all(*paths: Path) -> Iterator[None]:
    """Let another user reach `paths` (the checkout and its venv): a checkout in a 0700 folder, such as
    `mktemp -d`, keeps user nobody from even starting the command. The folders' modes are put back after."""
    changed: dict[Path, int] = {}
    for path in paths:
        for folder in [path, *path.parents]:
            mode = folder.stat().st_mode
            if folder.is_dir() and not mode & 0o001 and folder not in changed:
                changed[folder] = mode
                folder.chmod(mode | 0o001)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


@pytest.mark.parametrize("layout", [[], ["--debian"]])
def test_a_folder_the_installer_cannot_write_is_one_clear_line(layout: list[str]) -> None:
    """An installer who forgot sudo: the command names the folder and what to do (it ended in a traceback)."""
    require_service(os.geteuid() == 0, "root (to run the command as another user)")
    checkout = Path(__file__).resolve().parents[2]
    with (tempfile.TemporaryDirectory(prefix="floorwatch-ro-") as folder,
          _reachable_by_all(checkout, Path(sys.executable).parent, Path(os.path.realpath(sys.executable)).parent)):
        target = Path(folder) / "mosquitto"
        (target / "conf.d").mkdir(parents=True)
        for path in (Path(folder), target, target / "conf.d"):
            path.chmod(0o755)  # root's, readable by all, writable by root only
        run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              str(Path(sys.executable).parent / "floorwatch"), "broker", "files", "--site", "hq",
                              "--edge", "edge-f3", "--out", str(target), *layout],
                             capture_output=True, text=True, timeout=60, cwd=folder)
        assert run.returncode == 2, run
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert "not writable" in run.stderr and str(target) in run.stderr and "sudo" in run.stderr, run.stderr
        assert sorted(p.name for p in target.rglob("*")) == ["conf.d"], "nothing half-written"
