"""Server settings from the environment (prefix FLOORWATCH_, nested with a double underscore).

Every default is the embedded one: no broker, database or time-series server needs installing.
Examples: FLOORWATCH_MQTT__HOST=mqtt.example, FLOORWATCH_DATABASE_URL=postgresql+psycopg://...,
FLOORWATCH_INFLUX__URL=http://influx:8086.

pydantic-settings ignores a FLOORWATCH_* variable that names no field, so a typo such as
FLOORWATCH_MQTT_HOST (one underscore) would silently start the embedded broker: `unknown_variables` finds
them, and the commands refuse to start on one (server/cli.py `load_settings`).
"""

from __future__ import annotations

import difflib
import os
import socket
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.mqtt import MqttSettings

DEMO_SITE = Path(__file__).resolve().parent.parent / "simulators" / "floors" / "demo" / "site.yaml"


class InfluxSettings(BaseModel):
    """InfluxDB 2.x, or 3.x through its v2-compatible write endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: str
    token: SecretStr = SecretStr("")
    org: str = "floorwatch"
    bucket: str = "floorwatch"
    buffer_lines: int = Field(200_000, ge=1000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOORWATCH_", env_nested_delimiter="__", extra="forbid")

    site_file: Path = DEMO_SITE
    hr_file: Path | None = None
    """Leavers and visitor approvals (see server/adapters/hr_file.py); None: `hr.yaml` beside the site file, if any."""
    data_dir: Path = Path("var")
    """Where the embedded stores live (SQLite files, the embedded broker's persistence)."""
    mqtt: MqttSettings | None = None
    """None starts an embedded broker on 127.0.0.1 (the demo); set it to use a real one."""
    mqtt_client_id: str = "floorwatch-server"
    database_url: str | None = None
    """SQLAlchemy URL; None means SQLite in data_dir. PostgreSQL: postgresql+psycopg://user@host/db."""
    influx: InfluxSettings | None = None
    """None keeps readings in the embedded SQLite series store."""
    series_retention_days: int = Field(30, ge=1)
    series_buffer_points: int = Field(200_000, ge=1000)
    """Bound of the embedded store's write buffer (InfluxDB: `influx.buffer_lines`); when it is full, ingest
    waits for the store (see series_hold_s)."""
    series_hold_s: float = Field(5.0, ge=0, allow_inf_nan=False)
    """How long ingest waits for a time-series store that writes nothing while its buffer is full, before
    the oldest points are dropped and sup.series_dropped is raised (0: drop at once, never wait). While the
    store writes, ingest waits as long as it takes and the broker queues (back-pressure)."""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: SecretStr | None = None
    """Bearer token of the first admin; when unset, one is generated at first start and printed once."""
    command_keys_dir: Path | None = None
    """Per-edge command keys (`<edge>.key`, from `floorwatch keys`): every command is signed with its edge's
    key. None: commands go out unsigned and edges rely on the broker's ACL (the embedded demo)."""
    login_token_ttl_h: float = Field(12.0, gt=0)
    """How long a token from `POST /api/login` lasts (a shift plus margin); service tokens do not expire."""
    tick_s: float = Field(1.0, gt=0)
    """How often rule timers run (holds that ran out with no new reading, supervision, seq gaps)."""
    gap_window_s: float = Field(10.0, gt=0)
    """How long a seq gap may stay open before it counts as lost."""
    reading_max_age_s: float = Field(24 * 3600, gt=0)
    """Readings older than this (by their own timestamp) are stored but drive no rule."""
    reading_max_future_s: float = Field(120, gt=0)
    """Readings dated further ahead than this are a device clock fault: stored with the arrival time."""

    failover: bool = False
    """PostgreSQL only: this server is one of several workers of the site, which own it in turn through a
    lease (docs/deployment.md); `floorwatch worker` and `server --workers N` set it. Off: the one server
    owns the site without a lease (it waits out a database outage instead of giving the site up)."""
    lease_ttl_s: float = Field(8.0, ge=2, le=300, allow_inf_nan=False)
    """PostgreSQL only: how long a worker's partition lease lasts without renewal; a standby takes over a
    killed worker's partition this long after its last renewal (a clean stop hands it over at once)."""
    lease_renew_s: float = Field(2.0, gt=0, le=100, allow_inf_nan=False)
    """How often the owner renews its lease; must be under a third of `lease_ttl_s`."""
    worker_name: str | None = Field(None, min_length=1, max_length=120)
    """How this worker appears in the lease table and the logs; None: host:pid:random."""
    advertise_url: str | None = None
    """Failover: where the other workers reach this server's HTTP API while it owns the site (standbys
    forward every request there); None: http://<http_host, or this machine's name when it listens on
    every address>:<port>."""

    @field_validator("http_port", mode="before")
    @classmethod
    def _tcp_port(cls, value: object) -> int:
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise ValueError(f"{value!r} is not a TCP port: give a port from 1 to 65535")
        return int(text)

    @field_validator("mqtt")
    @classmethod
    def _readable_tls_files(cls, value: MqttSettings | None) -> MqttSettings | None:
        """A TLS file that cannot be read would stop the server at its first connection with a traceback."""
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(value, name, None)
            if path is not None and not (Path(path).is_file() and os.access(path, os.R_OK)):
                raise ValueError(f"FLOORWATCH_MQTT__{name.upper()} {path}: no such readable file; give the path of "
                                 "the broker's CA certificate (or the client's certificate and key) as the server "
                                 "process sees it")
        return value

    @field_validator("advertise_url")
    @classmethod
    def _reachable_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = _url_problem(value)
        if problem:
            raise ValueError(f"{value!r} {problem}: give http://HOST:PORT (or https://) where the other workers "
                             "of the site reach this server's port")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> Settings:
        if self.lease_renew_s * 3 > self.lease_ttl_s:
            raise ValueError(f"lease_renew_s ({self.lease_renew_s}) must be at most a third of lease_ttl_s "
                             f"({self.lease_ttl_s}), so that two renewals may fail before the lease expires")
        return self

    def advertised_url(self, port: int) -> str:
        """Where standbys forward requests to while this server owns the site; `port`: the one it listens on."""
        if self.advertise_url:
            return self.advertise_url
        host = socket.gethostname() if self.http_host in WILDCARD_HOSTS else self.http_host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'floorwatch.sqlite').as_posix()}"


WILDCARD_HOSTS = ("", "0.0.0.0", "::")
"""Listen on every address: no address another worker could use, so the advert names the machine."""


ADVERTISE_URL_MAX = 500
"""partition_leases.http_url's width."""


def _url_problem(value: str) -> str | None:
    """What keeps another worker from forwarding to `value`, or None."""
    if any(c.isspace() for c in value):
        return "contains white space"
    if len(value.rstrip("/")) > ADVERTISE_URL_MAX:
        return f"is longer than {ADVERTISE_URL_MAX} characters (the lease table's column)"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is no number or out of range
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "names no host"
    if parts.hostname in WILDCARD_HOSTS:
        return f"names {parts.hostname}, where a server listens, not an address others reach"
    if port == 0:
        return "names port 0"
    if parts.username is not None or parts.query or parts.fragment or parts.path not in ("", "/"):
        return "has a user, path, query or fragment (the API answers at the root of the address)"
    return None


PREFIX = "FLOORWATCH_"
MQTT_CREDENTIALS = "FLOORWATCH_MQTT__USERNAME and FLOORWATCH_MQTT__PASSWORD"
"""Where the server's broker credentials are set, named when the broker refuses them."""
OTHER_COMMANDS: dict[str, str] = {
    "FLOORWATCH_TOKEN": "`floorwatch simulate --server`",
    "FLOORWATCH_INFLUX_URL": "`floorwatch grafana push` and Grafana's datasource",
    "FLOORWATCH_INFLUX_DATABASE": "`floorwatch grafana push` and Grafana's datasource",
    "FLOORWATCH_INFLUX_TOKEN": "`floorwatch grafana push` and Grafana's datasource",
    "FLOORWATCH_INFLUX_BUCKET": "deploy/influxdb/create-dbrp.sh (the influxdb-init service)",
}
"""Variables other floorwatch commands read: allowed beside the server's, never settings of it."""
TOOLING = ("FLOORWATCH_TEST_", "FLOORWATCH_BENCH_", "FLOORWATCH_FUZZ_", "FLOORWATCH_LONG", "FLOORWATCH_SCHEMA_EXAMPLES")
"""Prefixes of the variables the tests, benchmarks and fuzzers read (docs: tests/README.md)."""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (`MqttSettings | None` -> [MqttSettings])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def setting_names(model: type[BaseModel] = Settings, prefix: str = PREFIX) -> set[str]:
    """Every environment variable the server's Settings read, nested models joined with `__`."""
    names: set[str] = set()
    for field, info in model.model_fields.items():
        name = prefix + field.upper()
        names.add(name)
        for nested in _models_in(info.annotation):
            names |= setting_names(nested, name + "__")
    return names


def unknown_variables(environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(problems, warnings) about FLOORWATCH_* variables that are no server setting. A problem names the
    variable and the setting it probably meant; a variable of another command is only a warning, when
    the server setting it resembles is unset (FLOORWATCH_INFLUX_URL without FLOORWATCH_INFLUX__URL)."""
    known = setting_names()
    present = {name.upper() for name in environ}
    problems: list[str] = []
    warnings: list[str] = []
    for name in sorted(present):
        if not name.startswith(PREFIX) or name in known or name.startswith(TOOLING):
            continue
        doubled = _doubled(name, known)
        if name in OTHER_COMMANDS:
            if doubled is not None and doubled not in present:
                warnings.append(f"{name} is read by {OTHER_COMMANDS[name]}, not by the server; the server's "
                                f"setting is {doubled} (unset: its default applies)")
            continue
        meant = doubled or _closest(name, known)
        hint = f"did you mean {meant}? " if meant else ""
        problems.append(f"{name} is not a Floorwatch setting and would be ignored: {hint}Nested settings take "
                        "two underscores (FLOORWATCH_MQTT__HOST); the list is in README.md, Configuration")
    return problems, warnings


def _doubled(name: str, known: set[str]) -> str | None:
    """The nested setting a name with one underscore where two belong spells (FLOORWATCH_MQTT_HOST)."""
    body = name[len(PREFIX):]
    for i, char in enumerate(body):
        if char == "_" and (candidate := PREFIX + body[:i] + "_" + body[i:]) in known:
            return candidate
    return None


def _closest(name: str, known: set[str]) -> str | None:
    """The setting a misspelt name most resembles, if any is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    return close[0] if close else None
