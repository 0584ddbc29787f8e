"""The `floorwatch` command: demo, server, site, edge, simulate, contract, broker, keys, grafana.

Each subcommand imports what it needs when it runs, so `floorwatch edge` works on an edge box that
installed only `floorwatch[edge]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway import cli_args

T = TypeVar("T")


class UsageError(Exception):
    """A bad argument or setting: printed as `floorwatch <command>: <message>`, exit code 2."""


def _server(args: argparse.Namespace) -> int:
    import uvicorn

    from server.adapters.sql.database import MigrationBlocked
    from server.adapters.sql.leases import LeaseConflict
    from server.app import GRACEFUL_STOP_S, create_app
    from server.domain.site import SiteError
    from server.runtime import collector_paused
    from server.settings import Settings
    from server.site_check import load_site
    from server.standby import StandbyServer
    from server.workers import (
        DatabaseUnreachable,
        WorkerRefused,
        hold_sqlite,
        keeper_for,
        migrate_database,
        run_servers,
        uses_leases,
    )

    settings = load_settings(Settings)
    try:  # a bad site file: its problems, not a traceback from the lifespan
        with collector_paused(freeze=True):
            site = load_site(settings.site_file)
    except SiteError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the site file (FLOORWATCH_SITE_FILE); nothing started. "
              "`floorwatch site --check FILE` checks it without starting", file=sys.stderr)
        return 2
    if args.workers > 1:
        try:
            return run_servers(settings, args.workers)
        except WorkerRefused as exc:
            raise UsageError(str(exc)) from None
    # The port first: a standby holds it too, so two servers on one machine never share one silently.
    listener = socket.socket(socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.http_host, settings.http_port))
    except OSError as exc:
        listener.close()
        raise UsageError(f"FLOORWATCH_HTTP_PORT={settings.http_port}: cannot listen on {settings.http_host}:"
                         f"{settings.http_port} ({exc.strerror}); give each server on this machine a port of "
                         "its own") from None
    try:
        sqlite_lock = hold_sqlite(settings)  # noqa: F841  (held open while the server runs)
    except WorkerRefused as exc:
        listener.close()
        raise UsageError(str(exc)) from None
    if settings.failover and not uses_leases(settings):
        listener.close()
        raise UsageError("FLOORWATCH_FAILOVER=1 needs PostgreSQL (FLOORWATCH_DATABASE_URL=postgresql+psycopg://"
                         "user@host/db): workers share a site through it; on SQLite run one server without it")
    try:  # here, not first in the app's startup, whose failure uvicorn prints as a traceback
        migrate_database(settings)
    except (MigrationBlocked, DatabaseUnreachable) as exc:  # not a usage error: the same start succeeds later
        listener.close()
        print(f"floorwatch server: {exc}", file=sys.stderr)
        return 1
    lease = None
    if uses_leases(settings):  # FLOORWATCH_FAILOVER: wait as a standby while another worker owns the site
        try:
            lease = keeper_for(settings, http_url=settings.advertised_url(listener.getsockname()[1]))
            standby = StandbyServer(listener, lease)
            try:
                if lease.acquire() is None:
                    return 0
                lease.start()  # renewing before the standby's exchanges end, which may take a few seconds
            except KeyboardInterrupt:  # Ctrl-C while a standby: nothing of the site was started
                lease.release()  # a lease taken in that moment goes back at once
                return 0
            finally:
                standby.stop()
        except LeaseConflict as exc:
            raise UsageError(str(exc)) from None
    app = create_app(settings, lease=lease, site=site, owns_process=True)
    uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=GRACEFUL_STOP_S)
                   ).run(sockets=[listener])
    return 0


def _worker(args: argparse.Namespace) -> int:
    from server.adapters.sql.database import MigrationBlocked
    from server.adapters.sql.leases import LeaseConflict
    from server.domain.site import SiteError
    from server.settings import Settings
    from server.site_check import load_site
    from server.workers import DatabaseUnreachable, WorkerRefused, run_worker

    settings = load_settings(Settings)
    try:
        load_site(settings.site_file)
    except SiteError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the site file (FLOORWATCH_SITE_FILE); nothing started",
              file=sys.stderr)
        return 2
    try:
        return run_worker(settings)
    except (WorkerRefused, LeaseConflict) as exc:
        raise UsageError(str(exc)) from None
    except (MigrationBlocked, DatabaseUnreachable) as exc:  # the same start succeeds later (exit 1: restart)
        print(f"floorwatch worker: {exc}", file=sys.stderr)
        return 1


def _site(args: argparse.Namespace) -> int:
    from server.site_check import main as check_site

    return check_site(Path(args.check), [Path(p) for p in args.edge])


def _demo(args: argparse.Namespace) -> int:
    from server.demo import DEFAULT_PORT, run_demo

    if args.scenario != "none":
        from simulators.scenario import list_scenarios

        if args.scenario not in list_scenarios():
            raise UsageError(f"--scenario {args.scenario!r}: no such scenario; choose none or one of "
                             f"{', '.join(list_scenarios())}")
    data_dir = Path(args.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is a file; give a folder (default var/demo)")
    host = args.host or os.environ.get("FLOORWATCH_HTTP_HOST") or "127.0.0.1"
    port = args.port if args.port is not None else _env_port(DEFAULT_PORT)
    return run_demo(scenario=args.scenario, speed=args.speed, host=host, port=port, data_dir=data_dir,
                    fresh=not args.keep)


def _env_port(default: int) -> int:
    value = os.environ.get("FLOORWATCH_HTTP_PORT", "").strip()
    if not value:
        return default
    try:
        return cli_args.port(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"FLOORWATCH_HTTP_PORT: {exc}") from None


def load_settings(factory: Callable[[], T]) -> T:
    """Settings from FLOORWATCH_* variables; a bad or unknown one is a UsageError naming the variable."""
    from pydantic import ValidationError

    from server.settings import unknown_variables

    problems, warnings = unknown_variables(os.environ)
    for warning in warnings:
        print(f"floorwatch: {warning}", file=sys.stderr)
    if problems:
        raise UsageError("; ".join(problems))
    try:
        return factory()
    except ValidationError as exc:
        lines = [f"FLOORWATCH_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise UsageError("bad setting in the environment: " + "; ".join(lines)) from None


def _count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"{value!r} is not a worker count (1-64)")
    return int(value)


def _contract_schema(args: argparse.Namespace) -> int:
    from gateway.contract import json_schemas

    schemas = json_schemas()
    if args.out is None:
        json.dump(schemas, sys.stdout, indent=2)
        print()
        return 0
    out = _out_dir(args.out, "--out")
    for name, schema in schemas.items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(schemas)} schemas to {out}")
    return 0


def _out_dir(value: str | Path, option: str) -> Path:
    out = Path(value)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        hint = " or run the command as root (sudo)" if isinstance(exc, PermissionError) else ""
        raise UsageError(f"{option} {value}: cannot make the folder ({exc.strerror}); give a folder path{hint}"
                         ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {value}: the folder is not writable by this user (uid {os.geteuid()}); run the "
                         "command as root (sudo) or as the folder's owner, or give a folder you can write")
    return out


MOSQUITTO_IMAGE_UID = 1883
"""The `mosquitto` user of the eclipse-mosquitto image, which reads the bind-mounted password file."""


def _broker_files(args: argparse.Namespace) -> int:
    """Production Mosquitto files for one site: config, ACL and (optionally) a password file.

    Existing credentials are kept unless --force: edges and the server already use those passwords.
    `--debian`: the files of a Mosquitto installed from Debian's package, beside its own mosquitto.conf."""
    from gateway import contract

    for kind, value in [("--site", args.site), *(("--edge", edge) for edge in args.edge)]:
        if not contract.ID_RE.match(value):
            raise UsageError(f"{kind} {value!r}: an id is 1-64 characters of a-z, 0-9 and '-'")
    if args.debian:
        return _broker_files_debian(args)
    out = _out_dir(args.out or "var/broker", "--out")
    passwd, credentials = out / "passwd", out / "credentials.txt"
    _refuse_replacing(passwd, credentials, force=args.force)
    _write_broker_files(args, out / "mosquitto.conf", out / "acl", passwd, credentials, image=True)
    print(f"wrote mosquitto.conf, acl, passwd and credentials.txt (mode 600) to {out}")
    # Mosquitto 2 opens its password file after dropping to its own user: a mode-600 file of the installer's
    # is unreadable to it, and the broker exits at start ("Unable to open pwfile").
    print(f"Mosquitto reads passwd as its own user: `sudo chown {MOSQUITTO_IMAGE_UID} {passwd}` for the "
          "eclipse-mosquitto image (docker-compose.yml), `sudo chown mosquitto` for a Mosquitto of the machine "
          "(whose conf then needs the paths of this folder instead of /mosquitto/...), or use --debian")
    return 0


DEBIAN_ETC = "/etc/mosquitto"
"""Where Debian's mosquitto package keeps its configuration; its mosquitto.conf includes conf.d/."""


def _broker_files_debian(args: argparse.Namespace) -> int:
    """conf.d/floorwatch.conf and floorwatch.{acl,passwd} beside the package's mosquitto.conf, which keeps
    its persistence and log settings; passwd goes to the broker's user when run as root."""
    import pwd

    etc = _out_dir(args.out or DEBIAN_ETC, "--out")
    conf_d = _out_dir(etc / "conf.d", "--out")
    passwd, credentials = etc / "floorwatch.passwd", etc / "floorwatch-credentials.txt"
    _refuse_replacing(passwd, credentials, force=args.force)
    _write_broker_files(args, conf_d / "floorwatch.conf", etc / "floorwatch.acl", passwd, credentials, image=False)
    try:
        account = pwd.getpwnam("mosquitto")
    except KeyError:
        account = None
    handed = os.geteuid() == 0 and account is not None
    if handed and account is not None:
        os.chown(passwd, account.pw_uid, account.pw_gid)  # Mosquitto opens it after dropping to this user
    print(f"wrote {conf_d / 'floorwatch.conf'}, {etc / 'floorwatch.acl'}, {passwd} and {credentials} (mode 600)")
    if not handed:
        print(f"Mosquitto reads {passwd} as its own user: `sudo chown mosquitto {passwd}`")
    main = etc / "mosquitto.conf"
    include = f"include_dir {conf_d}"
    try:
        includes = any(line.split() == include.split() for line in main.read_text(encoding="utf-8").splitlines())
    except OSError:
        includes = False
    if not includes:
        print(f"{main} has no `{include}` line: Mosquitto reads none of conf.d until you add it")
    print("then `sudo systemctl restart mosquitto`; edges and the server use the passwords in "
          f"{credentials}")
    return 0


def _refuse_replacing(passwd: Path, credentials: Path, *, force: bool) -> None:
    existing = [path.name for path in (passwd, credentials) if path.exists()]
    if existing and not force:
        raise UsageError(f"{passwd.parent} already holds {' and '.join(existing)}: the edges and the server use "
                         "those passwords. Keep them, or pass --force to make new ones (then update every client)")


def _write_broker_files(args: argparse.Namespace, conf: Path, acl: Path, passwd: Path, credentials: Path, *,
                        image: bool) -> None:
    """The config, ACL, password file and the passwords in clear (mode 600). `image`: the paths inside the
    eclipse-mosquitto container; else the files' own paths, beside a packaged main file."""
    from gateway.broker_config import Listener, render_acl, render_conf, render_password_file
    from server.credentials import new_token

    etc = conf.parent if image else acl.parent
    listeners = [Listener(1883, "0.0.0.0")]
    if args.tls:
        certs = "/mosquitto/certs" if image else str(etc / "certs")
        listeners.append(Listener(8883, "0.0.0.0", f"{certs}/server.crt", f"{certs}/server.key", f"{certs}/ca.crt"))
    if image:
        text = render_conf(listeners, "/mosquitto/data", anonymous=False, password_file="/mosquitto/config/passwd",
                           acl_file="/mosquitto/config/acl")
    else:
        text = render_conf(listeners, None, anonymous=False, password_file=str(passwd), acl_file=str(acl),
                           included=True)
    conf.write_text(text)
    acl.write_text(render_acl(args.site, args.edge))
    users = {name: new_token(18) for name in ["floorwatch-server", "display", *args.edge]}
    _write_private(passwd, render_password_file(users))  # Mosquitto refuses a readable one
    _write_private(credentials, "".join(f"{u} {p}\n" for u, p in users.items()))


def _broker_session(args: argparse.Namespace) -> int:
    from gateway.mqtt import SessionError, create_session
    from server.domain.site import SiteError
    from server.runtime import server_filters
    from server.settings import MQTT_CREDENTIALS, Settings
    from server.site_check import load_site

    settings = load_settings(Settings)
    if settings.mqtt is None:
        raise UsageError("FLOORWATCH_MQTT__HOST is not set: the server then runs its own embedded broker and makes "
                         "its session itself; set the FLOORWATCH_MQTT__* variables of the server's broker")
    try:
        site = load_site(settings.site_file)
    except SiteError as exc:
        raise UsageError(f"FLOORWATCH_SITE_FILE {settings.site_file}: {len(exc.problems)} problem(s), first: "
                         f"{exc.problems[0]}; `floorwatch site --check FILE` lists them") from None
    filters = server_filters(site.id)
    try:
        existed = create_session(settings.mqtt, settings.mqtt_client_id, filters, timeout=args.timeout,
                                 credentials_from=MQTT_CREDENTIALS)
    except SessionError as exc:
        print(f"floorwatch broker session: {exc}", file=sys.stderr)
        return 1
    print(f"session {settings.mqtt_client_id} on {settings.mqtt.host}:{settings.mqtt.port}: "
          f"{'already present' if existed else 'created'}, {len(filters)} subscriptions granted; "
          "the broker now keeps what edges publish until the server takes it", flush=True)
    return 0


def _write_private(path: Path, content: str) -> None:
    """Mode 600 from the start: a password never sits readable by others, not even briefly."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(content)
    os.replace(tmp, path)


def _keys(args: argparse.Namespace) -> int:
    """One command key per edge (`<edge>.key`, mode 600): the server's FLOORWATCH_COMMAND_KEYS_DIR holds them
    all, each edge its own as `commands.key_file`. An existing key is kept unless --force (rotation: see
    docs/reliability.md §3: the edges take the new key before the server does)."""
    import secrets

    from gateway import contract, signing

    for edge in args.edge:
        if not contract.ID_RE.match(edge):
            raise UsageError(f"--edge {edge!r}: an id is 1-64 characters of a-z, 0-9 and '-'")
    out = _out_dir(args.out, "--out")
    for edge in args.edge:
        path = out / f"{edge}.key"
        if path.exists() and not args.force:
            kept = signing.key_id(signing.parse_key(path.read_text()))
            print(f"{path} exists: kept (key {kept}); --force replaces it")
            continue
        key = secrets.token_bytes(signing.KEY_BYTES)
        tmp = path.with_suffix(".key.tmp")
        # Created with mode 600 from the start: the key is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(signing.format_key(key))
        os.replace(tmp, path)
        print(f"wrote {path} (mode 600, key {signing.key_id(key)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its autogenerate plugins at INFO on import: lines before any error, none useful.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="floorwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run everything on embedded defaults (broker, SQLite, simulated floor)")
    demo.add_argument("--scenario", default="strip-overload", help="scenario to play (none: only the live floor)")
    demo.add_argument("--speed", type=cli_args.positive, default=1.0, help="scenario clock speed (default 1)")
    demo.add_argument("--host", help="address to listen on (default 127.0.0.1, or FLOORWATCH_HTTP_HOST); "
                                     "0.0.0.0 lets a phone on the LAN open the page")
    demo.add_argument("--port", type=cli_args.port, help="HTTP port (default FLOORWATCH_HTTP_PORT, else 8000)")
    demo.add_argument("--data-dir", default="var/demo")
    demo.add_argument("--keep", action="store_true", help="keep alarms and history of an earlier demo run")
    demo.set_defaults(run=_demo)

    server = sub.add_parser("server", help="run the server (configured by FLOORWATCH_* environment variables)")
    server.add_argument("--workers", type=_count, default=1,
                        help="N server processes on this machine, on ports PORT..PORT+N-1 (PostgreSQL): one owns "
                             "the site, the others are standbys; a worker that exits is started again")
    server.set_defaults(run=_server)
    worker = sub.add_parser("worker", help="a worker of a site without HTTP: owns it while it holds the lease "
                                           "(PostgreSQL), else waits as a standby")
    worker.set_defaults(run=_worker)

    site = sub.add_parser("site", help="check a site file (and the edge files that go with it)")
    site.add_argument("--check", required=True, metavar="FILE", help="the site YAML file")
    site.add_argument("--edge", action="append", default=[], metavar="FILE",
                      help="an edge YAML file to compare with the site file (repeat)")
    site.set_defaults(run=_site)

    sub.add_parser("edge", help="run an edge agent (see `floorwatch edge --help`)", add_help=False)
    sub.add_parser("simulate", help="run a simulated floor or scenario (see `floorwatch simulate --help`)",
                   add_help=False)
    sub.add_parser("bench", help="ingest throughput and alarm latency (see `floorwatch bench --help`)",
                   add_help=False)
    sub.add_parser("grafana", help="push the boards to a Grafana (see `floorwatch grafana push --help`)",
                   add_help=False)
    sub.add_parser("backup", help="back up the database (see `floorwatch backup --help`)", add_help=False)
    sub.add_parser("restore", help="restore a backup, server stopped (see `floorwatch restore --help`)", add_help=False)

    contract = sub.add_parser("contract", help="the wire contract")
    contract_sub = contract.add_subparsers(dest="what", required=True)
    schema = contract_sub.add_parser("schema", help="write JSON Schema for every payload")
    schema.add_argument("--out", help="folder to write into (default: print to stdout)")
    schema.set_defaults(run=_contract_schema)

    broker = sub.add_parser("broker", help="production broker files; the server's session before the first edge")
    broker_sub = broker.add_subparsers(dest="what", required=True)
    files = broker_sub.add_parser("files", help="mosquitto.conf, ACL and password file for a site")
    files.add_argument("--site", required=True)
    files.add_argument("--edge", action="append", required=True, help="an edge id (repeat)")
    files.add_argument("--out", help="folder to write into (default var/broker; with --debian /etc/mosquitto)")
    files.add_argument("--debian", action="store_true",
                       help="for Mosquitto from Debian's package: conf.d/floorwatch.conf, floorwatch.acl and "
                            "floorwatch.passwd beside its mosquitto.conf (passwd handed to user mosquitto)")
    files.add_argument("--tls", action="store_true")
    files.add_argument("--force", action="store_true", help="replace existing passwd and credentials.txt")
    files.set_defaults(run=_broker_files)
    session = broker_sub.add_parser(
        "session", help="make the server's persistent session on its broker before any edge starts "
                        "(configured by the server's FLOORWATCH_* variables)")
    session.add_argument("--timeout", type=cli_args.positive, default=15.0, help="seconds to wait for the SUBACK")
    session.set_defaults(run=_broker_session)

    keys = sub.add_parser("keys", help="per-edge command signing keys (one <edge>.key per edge, mode 600)")
    keys.add_argument("--edge", action="append", required=True, help="an edge id (repeat)")
    keys.add_argument("--out", default="var/keys")
    keys.add_argument("--force", action="store_true", help="replace existing keys (rotation)")
    keys.set_defaults(run=_keys)

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(parser, argv)
    except UsageError as exc:
        print(f"floorwatch {argv[0] if argv else ''}: {exc}".replace("  ", " "), file=sys.stderr)
        return 2


def _dispatch(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    # Delegate whole argument lists to the parts that own them.
    if argv and argv[0] == "edge":
        from edge.cli import main as edge_main

        return edge_main(argv[1:])
    if argv and argv[0] == "simulate":
        from simulators.cli import main as simulate_main

        return simulate_main(argv[1:])
    if argv and argv[0] == "bench":
        from benchmarks.cli import main as bench_main

        return bench_main(argv[1:])
    if argv and argv[0] == "grafana":
        from dashboards.push import main as grafana_main

        if argv[1:2] != ["push"] and argv[1:2] not in (["-h"], ["--help"]):
            raise UsageError("usage: floorwatch grafana push [--url URL] [--token TOKEN] ... "
                             "(see `floorwatch grafana push --help`)")
        return grafana_main(argv[2:] if argv[1:2] == ["push"] else argv[1:])
    if argv and argv[0] in ("backup", "restore"):
        from server.backup import backup_main, restore_main

        return (backup_main if argv[0] == "backup" else restore_main)(argv[1:])
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
