"""Commands from the server: each is answered once, with what the device reported back.

`CommandTracker` is pure: it remembers which state report would confirm each command in flight (from
`drivers.CONFIRMATION`, e.g. relay_off waits for relay_on=false) and says which commands a reading
confirms and which have waited too long. `load_keys` reads the command keys (gateway/signing.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from edge.config import CommandsConfig, ConfigError
from edge.drivers.base import CONFIRMATION, Metrics
from gateway import signing
from gateway.contract import Command, Reading

log = logging.getLogger(__name__)


class KeyFileError(ConfigError):
    """A configured command key that cannot be used; `loc` is its key in the edge file (commands.key_file)."""

    def __init__(self, loc: tuple[str, str], message: str) -> None:
        super().__init__([f"{'.'.join(loc)}: {message}"])
        self.loc = loc
        self.message = message


def load_keys(config: CommandsConfig) -> list[bytes]:
    """The keys a command may be signed with, current first; empty when none is configured.

    A configured key that cannot be read is a start-up error, never a quiet fall-back to unsigned
    commands. A key file others can read is allowed but warned about (its path only, never its bytes)."""
    keys: list[bytes] = []
    for name in ("key_file", "previous_key_file"):
        path = getattr(config, name)
        if path is None:
            continue
        try:
            text = path.read_text(encoding="ascii")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise KeyFileError(("commands", name), f"cannot read {path}: {reason}; give the key `floorwatch keys` "
                               "wrote for this edge (relative to this file's folder, or absolute)") from None
        try:
            keys.append(signing.parse_key(text))
        except ValueError as exc:
            raise KeyFileError(("commands", name), f"{path}: {exc}") from None
        if mode & 0o077:
            log.warning("command key %s is readable by others (mode %o): chmod 600 it", path, mode & 0o777)
    return keys


@dataclass(slots=True)
class Pending:
    command: Command
    metric: str
    value: bool
    deadline: float
    last: Metrics = field(default_factory=dict)
    """The device's latest report while waiting (sent back with a refusal, to show what it said)."""


class CommandTracker:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pending: dict[str, list[Pending]] = {}

    def expect(self, command: Command, now: float) -> None:
        metric, value = CONFIRMATION[command.action]
        self._pending.setdefault(command.device, []).append(
            Pending(command, metric, value, now + self.timeout_s))

    def observe(self, reading: Reading) -> list[tuple[Command, Metrics]]:
        """Commands this reading confirms, with the metrics to report back."""
        waiting = self._pending.get(reading.device)
        if not waiting:
            return []
        confirmed = []
        for pending in list(waiting):
            pending.last.update(reading.metrics)
            if reading.metrics.get(pending.metric) is pending.value:
                confirmed.append((pending.command, dict(reading.metrics)))
                waiting.remove(pending)
        if not waiting:
            del self._pending[reading.device]
        return confirmed

    def expired(self, now: float) -> list[Pending]:
        late: list[Pending] = []
        for device, waiting in list(self._pending.items()):
            late += [p for p in waiting if p.deadline <= now]
            waiting[:] = [p for p in waiting if p.deadline > now]
            if not waiting:
                del self._pending[device]
        return late

    def deadline(self) -> float | None:
        deadlines = [p.deadline for waiting in self._pending.values() for p in waiting]
        return min(deadlines) if deadlines else None

    def __len__(self) -> int:
        return sum(len(w) for w in self._pending.values())


class RateLimitedLog:
    """Allows one log line per key per period (decode errors: once per device per minute)."""

    def __init__(self, period_s: float = 60.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def allow(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        return True

    def take_suppressed(self, key: str) -> int:
        return self.suppressed.pop(key, 0)
