"""Push the datasource, the "Floorwatch" folder and the boards to a Grafana through its HTTP API.

Idempotent: each object is looked up by its uid first; it is created when missing, updated when it
differs, and left alone when it is the same, so a second push changes nothing. Dashboards are written
with ``overwrite: true`` (by uid). Used by ``floorwatch grafana push`` (``main(argv)``).

Grafana HTTP API calls made (through grafana-client): ``GET/POST /api/datasources``,
``GET/PUT /api/datasources/uid/{uid}``, ``GET /api/folders/{uid}``, ``POST /api/folders``,
``PUT /api/folders/{uid}``, ``GET /api/dashboards/uid/{uid}``, ``POST /api/dashboards/db``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dashboards.build import build
from dashboards.builder import DATASOURCE_NAME, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID, Json

Auth = str | tuple[str, str] | None
"""A service-account token (sent as ``Authorization: Bearer``) or (user, password) for basic auth."""


@dataclass
class PushReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"created {len(self.created)}, updated {len(self.updated)}, unchanged {len(self.unchanged)}"
            + "".join(f"\n  created {x}" for x in self.created)
            + "".join(f"\n  updated {x}" for x in self.updated)
        )


def datasource_model(influx_url: str, database: str = "floorwatch", token: str = "") -> Json:
    """An InfluxDB datasource in InfluxQL mode.

    Against InfluxDB 2.x/3.x, InfluxQL reads a bucket through a DBRP mapping whose database name is
    ``database``; the token goes in an ``Authorization: Token ...`` header (Grafana's documented way
    for InfluxQL against InfluxDB 2). Against InfluxDB 1.x leave the token empty (or use user/password
    in Grafana).
    """
    model: Json = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": "influxdb",
        "access": "proxy",
        "url": influx_url,
        "database": database,
        "isDefault": False,
        "jsonData": {"version": "InfluxQL", "dbName": database, "httpMode": "POST"},
    }
    if token:
        model["jsonData"]["httpHeaderName1"] = "Authorization"
        model["secureJsonData"] = {"httpHeaderValue1": f"Token {token}"}
    return model


def _client(url: str, auth: Auth, timeout: float) -> Any:
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(url=url, credential=auth, timeout=timeout)


def _get_or_none(call: Any, *args: Any) -> Any:
    from grafana_client.client import GrafanaClientError

    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _same_datasource(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key in ("name", "type", "access", "url", "database", "isDefault"):
        if current.get(key) != wanted.get(key):
            return False
    current_json = current.get("jsonData") or {}
    if any(current_json.get(k) != v for k, v in wanted.get("jsonData", {}).items()):
        return False
    # Secrets cannot be read back; Grafana says only whether each one is set.
    secure_set = current.get("secureJsonFields") or {}
    return all(secure_set.get(k) for k in wanted.get("secureJsonData", {}))


def _comparable(board: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k not in ("id", "version")}


def push(
    url: str,
    auth: Auth,
    *,
    influx_url: str,
    influx_database: str = "floorwatch",
    influx_token: str = "",
    boards: Mapping[str, Json] | None = None,
    update_secret: bool = False,
    timeout: float = 10.0,
) -> PushReport:
    """Create or update the datasource, the folder and the boards; returns what changed.

    ``update_secret`` re-sends the datasource even when it looks unchanged (to rotate the token,
    which Grafana never returns).
    """
    api = _client(url, auth, timeout)
    report = PushReport()

    wanted_ds = datasource_model(influx_url, influx_database, influx_token)
    current_ds = _get_or_none(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if current_ds is None:
        api.datasource.create_datasource(wanted_ds)
        report.created.append(f"datasource {DATASOURCE_UID}")
    elif update_secret or not _same_datasource(current_ds, wanted_ds):
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted_ds)
        report.updated.append(f"datasource {DATASOURCE_UID}")
    else:
        report.unchanged.append(f"datasource {DATASOURCE_UID}")

    folder = _get_or_none(api.folder.get_folder, FOLDER_UID)
    if folder is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.created.append(f"folder {FOLDER_UID}")
    elif folder.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        report.updated.append(f"folder {FOLDER_UID}")
    else:
        report.unchanged.append(f"folder {FOLDER_UID}")

    for board in (boards if boards is not None else build()).values():
        uid = board["uid"]
        current = _get_or_none(api.dashboard.get_dashboard, uid)
        if current is not None and (
            _comparable(current.get("dashboard", {})) == _comparable(board)
            and (current.get("meta") or {}).get("folderUid") == FOLDER_UID
        ):
            report.unchanged.append(f"dashboard {uid}")
            continue
        api.dashboard.update_dashboard(
            {
                "dashboard": {**board, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "floorwatch grafana push",
            }
        )
        (report.created if current is None else report.updated).append(f"dashboard {uid}")
    return report


def _printable_url(url: str) -> str:
    """The URL to print: scheme, host and path only. A password written into it (https://user:pass@host) or a
    token in its query or fragment (?auth_token=...) stays out of the terminal."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment=""))


def main(argv: Sequence[str] | None = None) -> int:
    """``floorwatch grafana push``: options fall back to environment variables."""
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="floorwatch grafana push",
        description="Push the Floorwatch datasource, folder and boards to Grafana.",
    )
    parser.add_argument("--url", default=env.get("GRAFANA_URL", ""), help="Grafana URL (or GRAFANA_URL)")
    parser.add_argument("--token", default=env.get("GRAFANA_TOKEN", ""),
                        help="service-account token (or GRAFANA_TOKEN)")
    parser.add_argument(
        "--basic-auth", default=env.get("GRAFANA_BASIC_AUTH", ""), metavar="USER:PASSWORD",
        help="basic auth instead of a token (or GRAFANA_BASIC_AUTH)",
    )
    parser.add_argument("--influx-url", default=env.get("FLOORWATCH_INFLUX_URL", "http://influxdb:8086"))
    parser.add_argument("--influx-database", default=env.get("FLOORWATCH_INFLUX_DATABASE", "floorwatch"))
    parser.add_argument(
        "--influx-token", default=env.get("FLOORWATCH_INFLUX_TOKEN", ""),
        help="InfluxDB 2/3 token for InfluxQL (sent as 'Authorization: Token ...')",
    )
    parser.add_argument("--update-secret", action="store_true", help="re-send the datasource token")
    args = parser.parse_args(argv)
    for option, value in (("--url", args.url), ("--influx-url", args.influx_url)):
        if (value or option != "--url") and not value.startswith(("http://", "https://")):
            parser.error(f"{option} {value!r}: give an http:// or https:// URL")
    missing = [what for what, given in (
        ("no Grafana given: pass --url URL or set GRAFANA_URL", args.url),
        ("no credentials given: pass --token TOKEN or set GRAFANA_TOKEN (or --basic-auth USER:PASSWORD, "
         "GRAFANA_BASIC_AUTH)", args.token or args.basic_auth),
    ) if not given]
    if missing:
        parser.error("; ".join(missing))
    if args.basic_auth and ":" not in args.basic_auth:
        parser.error("--basic-auth: give USER:PASSWORD")
    auth: Auth = None
    if args.basic_auth:
        user, _, password = args.basic_auth.partition(":")
        auth = (user, password)
    elif args.token:
        auth = args.token
    try:
        report = push(
            args.url, auth, influx_url=args.influx_url, influx_database=args.influx_database,
            influx_token=args.influx_token, update_secret=args.update_secret,
        )
    except OSError as exc:  # the HTTP client's connection errors and timeouts are OSErrors
        print(f"grafana push failed: cannot reach Grafana at {_printable_url(args.url)} ({type(exc).__name__}): "
              "check --url "
              "(or GRAFANA_URL) and that Grafana is running and reachable from here", file=sys.stderr)
        return 1
    except Exception as exc:  # a CLI: say what failed, without a traceback or any secret
        print(f"grafana push failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
