"""The `floorwatch` command as an operator types it: bad arguments, the README's forms, safe defaults.

Commands run as subprocesses (what a user sees, tracebacks included) against real files, SQLite, the real
PostgreSQL and a Grafana stand-in speaking Grafana's HTTP API.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dashboards.build import build
from dashboards.builder import DATASOURCE_UID, FOLDER_UID
from server import cli
from server.adapters.sql.database import make_engine, migrate
from server.credentials import new_token
from tests.dashboards.fake_grafana import FakeGrafana, serve

ROOT = Path(__file__).resolve().parents[2]


def floorwatch(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, stdin: str = "",
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLOORWATCH_", "GRAFANA_"))}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=cwd, env={**base, **(env or {}),
                          "PYTHONPATH": str(ROOT)}, input=stdin, capture_output=True, text=True, timeout=timeout)


def bad_cases(tmp: Path) -> list[tuple[list[str], dict[str, str], str]]:
    a_file = tmp / "a-file"
    a_file.write_text("not a folder\n")
    under_a_file = tmp / "edge-buffer-under-a-file.yaml"  # a valid file whose buffer cannot be made
    under_a_file.write_text(f"site: hq\nedge: edge-f3\nuplink: {{port: 1}}\nfloor_broker: {{port: 1}}\n"
                            f"buffer: {{path: {a_file}/buffer.sqlite}}\n")
    not_a_database = tmp / "edge-buffer-not-a-database.yaml"
    (tmp / "notes.sqlite").write_text("shopping list, not a database\n" * 100)
    not_a_database.write_text(f"site: hq\nedge: edge-f3\nuplink: {{port: 1}}\nfloor_broker: {{port: 1}}\n"
                              f"buffer: {{path: {tmp}/notes.sqlite}}\n")
    return [
        (["demo", "--speed", "x"], {}, "argument --speed: 'x' is not a positive number"),
        (["demo", "--scenario", "nope"], {}, "--scenario 'nope': no such scenario"),
        (["demo", "--port", "0"], {}, "argument --port: '0' is not a TCP port"),
        (["demo", "--data-dir", str(a_file)], {}, f"--data-dir {a_file} is a file; give a folder"),
        (["demo"], {"FLOORWATCH_HTTP_PORT": "http"}, "FLOORWATCH_HTTP_PORT: 'http' is not a TCP port"),
        (["server"], {"FLOORWATCH_HTTP_PORT": "abc"},
         "FLOORWATCH_HTTP_PORT: Value error, 'abc' is not a TCP port: give a port from 1 to 65535"),
        (["worker"], {"FLOORWATCH_HTTP_PORT": "70000"}, "FLOORWATCH_HTTP_PORT: Value error, '70000' is not a TCP port"),
        (["edge", "--config", str(tmp / "missing.yaml")], {}, "missing.yaml:1: (document): cannot read"),
        (["site", "--check", str(tmp / "missing.yaml")], {}, "missing.yaml:1: (document): cannot read"),
        (["edge", "--config", str(under_a_file)], {},
         f"edge-buffer-under-a-file.yaml:5: buffer.path: cannot open the buffer {a_file}/buffer.sqlite"),
        (["edge", "--config", str(not_a_database)], {},
         f"edge-buffer-not-a-database.yaml:5: buffer.path: cannot open the buffer {tmp}/notes.sqlite (file is not "
         "a database): give a file"),
        (["server"], {"FLOORWATCH_SITE_FILE": str(tmp / "missing.yaml")}, "missing.yaml:1: (document): cannot read"),
        (["server"], {"FLOORWATCH_ADVERTISE_URL": "server-2:8000"},
         "FLOORWATCH_ADVERTISE_URL: Value error, 'server-2:8000' is not an http:// or https:// URL: give http://"),
        (["worker"], {"FLOORWATCH_ADVERTISE_URL": "http://0.0.0.0:8000"}, "names 0.0.0.0, where a server listens"),
        (["server"], {"FLOORWATCH_ADVERTISE_URL": f"http://{'h' * 490}:8000"},
         "is longer than 500 characters (the lease table's column): give http://"),
        (["server", "--workers", "2"], {"FLOORWATCH_ADVERTISE_URL": "http://server-2:8000",
                                        "FLOORWATCH_DATABASE_URL": "postgresql+psycopg://fw@127.0.0.1:1/fw",
                                        "FLOORWATCH_MQTT__HOST": "127.0.0.1"},
         "--workers 2: FLOORWATCH_ADVERTISE_URL names one address"),
        # A misspelt variable would be ignored: the embedded broker, SQLite, the embedded series store.
        (["server"], {"FLOORWATCH_MQTT_HOST": "mqtt.floor"},
         "FLOORWATCH_MQTT_HOST is not a Floorwatch setting and would be ignored: did you mean FLOORWATCH_MQTT__HOST?"),
        (["worker"], {"FLOORWATCH_DATABASE": "postgresql+psycopg://fw@db/fw"},
         "FLOORWATCH_DATABASE is not a Floorwatch setting"),
        (["backup"], {"FLOORWATCH_DATABSE_URL": "postgresql+psycopg://fw@db/fw"},
         "did you mean FLOORWATCH_DATABASE_URL?"),
        (["broker", "session"], {"FLOORWATCH_MQTT__HOST": "127.0.0.1", "FLOORWATCH_MQTT__PASWORD": "x"},
         "FLOORWATCH_MQTT__PASWORD is not a Floorwatch setting and would be ignored: did you mean "
         "FLOORWATCH_MQTT__PASSWORD?"),
        (["server"], {"FLOORWATCH_MQTT__HOST": "127.0.0.1", "FLOORWATCH_MQTT__TLS": "true",
                      "FLOORWATCH_MQTT__CA_FILE": str(tmp / "missing-ca.crt")},
         f"FLOORWATCH_MQTT__CA_FILE {tmp / 'missing-ca.crt'}: no such readable file"),
        (["simulate", "--scenario", "nope"], {}, "no such scenario"),
        (["simulate", "--scenario", "strip-overload", "--broker", "nohost:99999"], {},
         "argument --broker: 'nohost:99999': expected host:port with a port 1-65535"),
        (["simulate", "--scenario", "strip-overload", "--speed", "-1"], {}, "argument --speed: '-1' is not a number"),
        (["simulate", "--load", "--devices", "0"], {}, "argument --devices: '0' is not a whole number ≥ 1"),
        (["simulate", "--load", "--duration", "0"], {}, "argument --duration: '0' is not a positive number"),
        # float() takes these; a rate or a duration of them would crash the load's arithmetic.
        (["simulate", "--load", "--rate", "inf"], {}, "argument --rate: 'inf' is not a positive number"),
        (["simulate", "--load", "--duration", "Infinity"], {}, "argument --duration: 'Infinity' is not a positive"),
        (["simulate", "--load", "--rate", "nan"], {}, "argument --rate: 'nan' is not a positive number"),
        (["demo", "--speed", "inf"], {}, "argument --speed: 'inf' is not a positive number"),
        (["contract", "schema", "--out", str(a_file)], {}, f"--out {a_file}: cannot make the folder"),
        (["broker", "files", "--site", "Bad Site", "--edge", "e1", "--out", str(tmp / "b")], {},
         "--site 'Bad Site': an id is 1-64 characters"),
        (["keys", "--edge", "BAD", "--out", str(tmp / "k")], {}, "--edge 'BAD': an id is 1-64 characters"),
        (["grafana", "push", "--url", "grafana.example"], {}, "--url 'grafana.example': give an http://"),
        (["grafana", "--url", "http://127.0.0.1:1"], {}, "usage: floorwatch grafana push"),
        (["grafana", "push"], {}, "no Grafana given: pass --url URL or set GRAFANA_URL; no credentials given"),
        (["backup", "--out", str(a_file)], {"FLOORWATCH_DATA_DIR": str(tmp)}, "is a file; give a folder"),
        (["backup"], {"FLOORWATCH_DATABASE_URL": "nosuchdb://x"}, "FLOORWATCH_DATABASE_URL 'nosuchdb://x': give"),
        (["restore", "--yes", str(a_file)], {"FLOORWATCH_DATABASE_URL": "x"}, "not a Floorwatch backup archive"),
        (["restore", str(a_file)], {}, "not a Floorwatch backup archive"),
        (["restore", str(tmp / "missing.tar.gz")], {}, "missing.tar.gz: no such file"),
        (["bench", "--bogus"], {}, "unrecognized arguments: --bogus"),
        (["nosuch"], {}, "invalid choice: 'nosuch'"),
    ]


def test_every_command_with_a_bad_argument_says_what_and_exits_2(tmp_path: Path) -> None:
    failures = []
    for argv, env, expected in bad_cases(tmp_path):
        done = floorwatch(*argv, env=env)
        output = done.stdout + done.stderr
        # alembic.runtime.plugins: the start-up noise that used to come before the one line
        if done.returncode != 2 or "Traceback" in output or "alembic" in output or expected not in done.stderr:
            failures.append(f"{shlex.join(argv)} {env}: exit {done.returncode}\n{output[-1500:]}")
    assert not failures, "\n\n".join(failures)


def readme_grafana_command() -> list[str]:
    text = (ROOT / "dashboards" / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^(floorwatch grafana push .*?)$\n(?!\s)", text.replace("\\\n", " "), re.MULTILINE)
    assert found, "dashboards/README.md shows no `floorwatch grafana push` command"
    return shlex.split(found.group(1))


def test_grafana_push_as_the_readme_writes_it(tmp_path: Path) -> None:
    command = readme_grafana_command()
    assert command[:3] == ["floorwatch", "grafana", "push"]
    with serve(FakeGrafana(token="s3cret")) as grafana:
        argv = [grafana.url if arg == "https://grafana.example" else arg for arg in command[1:]]
        assert grafana.url in argv
        env = {"GRAFANA_TOKEN": "s3cret", "FLOORWATCH_INFLUX_TOKEN": "influx-tok"}
        argv = [os.path.expandvars(arg.replace("$GRAFANA_TOKEN", env["GRAFANA_TOKEN"])
                                   .replace("$FLOORWATCH_INFLUX_TOKEN", env["FLOORWATCH_INFLUX_TOKEN"]))
                for arg in argv]
        done = floorwatch(*argv)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"created {2 + len(build())}" in done.stdout
        assert grafana.datasources[DATASOURCE_UID]["secure"] == {"httpHeaderValue1": "Token influx-tok"}
        assert FOLDER_UID in grafana.folders and set(grafana.dashboards) == {b["uid"] for b in build().values()}


def test_broker_files_keep_existing_credentials_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "mosquitto"
    assert cli.main(["broker", "files", "--site", "hq", "--edge", "edge-f3", "--out", str(out)]) == 0
    first = {name: (out / name).read_text() for name in ("passwd", "credentials.txt")}
    assert {oct((out / name).stat().st_mode & 0o777) for name in first} == {"0o600"}

    again = floorwatch("broker", "files", "--site", "hq", "--edge", "edge-f3", "--out", str(out))
    assert again.returncode == 2 and "already holds passwd and credentials.txt" in again.stderr
    assert "--force" in again.stderr
    assert {name: (out / name).read_text() for name in first} == first

    assert cli.main(["broker", "files", "--site", "hq", "--edge", "edge-f3", "--out", str(out), "--force"]) == 0
    forced = {name: (out / name).read_text() for name in first}
    assert forced["credentials.txt"] != first["credentials.txt"] and forced["passwd"] != first["passwd"]
    assert {oct((out / name).stat().st_mode & 0o777) for name in first} == {"0o600"}


def make_database(data_dir: Path, rows: int) -> Path:
    """A migrated SQLite store holding `rows` audit-free alarms (the schema the server writes)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "floorwatch.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS demo_marks (n INTEGER)")
        connection.execute("DELETE FROM demo_marks")
        connection.executemany("INSERT INTO demo_marks VALUES (?)", [(i,) for i in range(rows)])
    return path


def marks(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM demo_marks").fetchone()[0])


def test_backup_finds_the_demos_data_or_says_where_it_looks(tmp_path: Path) -> None:
    nothing = floorwatch("backup", cwd=tmp_path)
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr
    assert "no database; it looks at var/floorwatch.sqlite" in nothing.stderr
    assert "FLOORWATCH_DATA_DIR=var/demo/server" in nothing.stderr

    make_database(tmp_path / "var" / "demo" / "server", 3)
    done = floorwatch("backup", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "using the demo's, var/demo/server/floorwatch.sqlite" in done.stdout
    assert len(list((tmp_path / "var/demo/server/backups").glob("floorwatch-backup-*.tar.gz"))) == 1


def test_restore_asks_and_keeps_a_safety_copy_of_what_it_replaces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"FLOORWATCH_DATA_DIR": str(data)}
    database = make_database(data, 2)
    assert floorwatch("backup", "--out", str(tmp_path / "out"), env=env).returncode == 0
    [archive] = (tmp_path / "out").glob("*.tar.gz")
    make_database(data, 7)  # newer than the backup

    declined = floorwatch("restore", str(archive), env=env, stdin="n\n")
    assert declined.returncode == 1 and "not restored" in declined.stdout
    assert "holds" in declined.stdout and "Replace the database" in declined.stdout
    assert marks(database) == 7 and not (data / "pre-restore").exists()

    no_terminal = floorwatch("restore", str(archive), env=env, stdin="")
    assert no_terminal.returncode == 1 and marks(database) == 7

    accepted = floorwatch("restore", str(archive), env=env, stdin="y\n")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert marks(database) == 2
    [safety] = (data / "pre-restore").glob("floorwatch-backup-*.tar.gz")
    assert str(safety) in accepted.stdout
    # The safety copy holds what was replaced: restoring it brings the 7 rows back, without a question.
    again = floorwatch("restore", "--yes", str(safety), env=env)
    assert again.returncode == 0 and "Replace the database" not in again.stdout
    assert marks(database) == 7


@pytest.mark.parametrize("argv", [["grafana", "push", "--help"], ["restore", "--help"], ["backup", "--help"]])
def test_help_still_works(argv: list[str]) -> None:
    done = floorwatch(*argv)
    assert done.returncode == 0 and "usage:" in done.stdout


def test_a_single_server_whose_migration_stays_blocked_says_so_and_exits_1(postgres_schema: str,
                                                                          tmp_path: Path) -> None:
    """One PostgreSQL server without failover migrates before uvicorn starts: a blocked 0012 is its clear
    message and exit 1 (a supervisor restarts it), not a traceback from the app's startup."""
    from sqlalchemy import text

    from gateway.broker import free_port
    from tests.support.database import upgrade_to

    engine = make_engine(postgres_schema)
    upgrade_to(engine, "0011_access_event_key")
    blocker = engine.connect()
    try:
        blocker.begin()
        blocker.execute(text("SELECT count(*) FROM partition_leases"))  # held open until the server gave up
        done = floorwatch("server", env={"FLOORWATCH_DATABASE_URL": postgres_schema,
                                         "FLOORWATCH_HTTP_PORT": str(free_port()),
                                         "FLOORWATCH_DATA_DIR": str(tmp_path)})
    finally:
        blocker.rollback()
        blocker.close()
        engine.dispose()
    assert done.returncode == 1, done.stderr
    assert "floorwatch server: migration 0012_lease_advert: the table partition_leases stayed in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["server", "worker"])
def test_a_database_that_does_not_answer_at_start_is_one_line_and_exit_1(command: str, tmp_path: Path) -> None:
    """PostgreSQL down (nothing listens on the port): one line naming the database without its password and
    what to do, exit 1 (the same start succeeds once it is up: a supervisor restarts it), no traceback."""
    from gateway.broker import free_port

    url = f"postgresql+psycopg://fw:secret-pw@127.0.0.1:{free_port()}/floor"
    done = floorwatch(command, env={"FLOORWATCH_DATABASE_URL": url, "FLOORWATCH_HTTP_PORT": str(free_port()),
                                    "FLOORWATCH_DATA_DIR": str(tmp_path), "FLOORWATCH_MQTT__HOST": "127.0.0.1",
                                    "FLOORWATCH_MQTT__PORT": str(free_port())})
    assert done.returncode == 1, done.stderr
    assert f"floorwatch {command}: cannot reach the database postgresql+psycopg://fw:***@127.0.0.1:" in done.stderr
    assert "fix FLOORWATCH_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr and "secret-pw" not in done.stderr


def test_tokens_and_broker_passwords_never_start_with_a_dash(tmp_path: Path) -> None:
    """One in 64 URL-safe secrets starts with "-", which a command line reads as an option: `floorwatch simulate
    --token -x…` was refused with "expected one argument" (seen in the demo test)."""
    assert not [t for t in (new_token(18) for _ in range(3000)) if t.startswith("-")]
    for run in range(40):  # 4 passwords each: a leading dash would show within a few runs
        out = tmp_path / f"m{run}"
        assert cli.main(["broker", "files", "--site", "hq", "--edge", "e1", "--edge", "e2", "--out", str(out)]) == 0
        passwords = [line.split()[1] for line in (out / "credentials.txt").read_text().splitlines()]
        assert not [p for p in passwords if p.startswith("-")], passwords


def test_an_edge_buffer_that_is_busy_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A buffer locked by another program (or a full disk, a disk error) may pass: exit 1, which the edge's
    systemd unit restarts, not 2 (a problem of the file, never restarted)."""
    buffer = tmp_path / "buffer.sqlite"
    config = tmp_path / "edge.yaml"
    config.write_text(f"site: hq\nedge: edge-f3\nuplink: {{port: 1}}\nfloor_broker: {{port: 1}}\n"
                      f"buffer: {{path: {buffer}}}\n")
    holder = sqlite3.connect(buffer, isolation_level=None)
    try:
        holder.execute("CREATE TABLE other (x)")
        holder.execute("BEGIN EXCLUSIVE")
        done = floorwatch("edge", "--config", str(config))
    finally:
        holder.close()
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"{config}:5: buffer.path: cannot open the buffer {buffer} (database is locked): not a problem of the "
        "file; free disk space, check the disk or stop what holds the file, then start again"]
