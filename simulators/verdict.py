"""After a scenario run with `--server`: did the server raise what the scenario expects, and nothing it forbids?

The run prints what it *expects*; a tester also wants to know what *happened*. The server's alarms raised
since the run started (GET /api/alarms) are matched by rule and, where the scenario names one, subject.
Expected alarms are waited for up to `patience_s` (a rule's tick, an edge's batch may land them a moment
after the last injection). Only the standard library is used, as in `operator.py`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simulators.operator import OperatorApi


@dataclass(frozen=True)
class Verdict:
    lines: tuple[str, ...]
    unmet: int
    """Expected alarms not raised plus forbidden ones raised."""


def _matches(alarm: Mapping[str, Any], rule: str, subject: str | None) -> bool:
    return bool(alarm.get("rule") == rule and (not subject or alarm.get("subject") == subject))


def _raised(api: OperatorApi, since: datetime) -> list[dict[str, Any]]:
    alarms = api.call("GET", "/api/alarms?limit=5000") or []
    return [a for a in alarms if datetime.fromisoformat(str(a["raised_at"]).replace("Z", "+00:00")) >= since]


def check(api: OperatorApi, since: datetime, expected: Sequence[Mapping[str, Any]],
          forbidden: Sequence[Mapping[str, Any]], *, patience_s: float = 10.0) -> Verdict:
    """Compare the server's alarms raised since `since` (aware) with the scenario's expectations."""
    deadline = time.monotonic() + patience_s
    while True:
        raised = _raised(api, since)
        missing = [e for e in expected if not any(_matches(a, e["rule"], e.get("subject")) for a in raised)]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    local = since.astimezone()
    lines = [f"on the server {api.base_url} (alarms raised since the run started, {local:%H:%M:%S}):"]
    unmet = 0
    for e in expected:
        what = e["rule"] + (f" on {e['subject']}" if e.get("subject") else "")
        hits = [a for a in raised if _matches(a, e["rule"], e.get("subject"))]
        if hits:
            first = min(hits, key=lambda a: str(a["raised_at"]))
            at = datetime.fromisoformat(str(first["raised_at"]).replace("Z", "+00:00")).astimezone()
            lines.append(f"  raised      {what} ({first.get('severity')}) at {at:%H:%M:%S}")
        else:
            unmet += 1
            lines.append(f"  NOT RAISED  {what}")
    for f in forbidden:
        what = f["rule"] + (f" on {f['subject']}" if f.get("subject") else "")
        hits = [a for a in raised if _matches(a, f["rule"], f.get("subject"))]
        if hits:
            unmet += 1
            lines.append(f"  RAISED, FORBIDDEN  {what} ({len(hits)} alarm(s))")
        else:
            lines.append(f"  not raised  {what} (as it must not be)")
    if unmet:
        lines.append(f"{unmet} expectation(s) not met. At --speed above 1 a rule with a duration fires later on the "
                     "server's clock than on the scenario's: play it with --speed 1 to judge it.")
    return Verdict(tuple(lines), unmet)
