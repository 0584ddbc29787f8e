"""Operator steps of a scenario (start a drill, acknowledge, give a verdict, mark safe, all-clear, …),
performed through the server's own HTTP API, so they go through the same services and permission checks
as a person on the live page. Used by `floorwatch demo`, `floorwatch simulate --server URL` and the
scenario oracle test.

A step's `request` is ``METHOD /api/path [JSON body]``; in the path, ``{alarm:RULE:SUBJECT}`` stands for
the id of that open alarm and ``{evacuation}`` for the newest evacuation's. An alarm or evacuation the
step acts on may land a moment after the step's time (batching, the rule tick): it is waited for, up to
`patience_s`. Anything that cannot be done raises `OperatorError` saying what and what to do.

Only the standard library is used: the simulators install without the server's dependencies.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import partial
from typing import Any

import yaml

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
PLACEHOLDER = re.compile(r"\{(alarm:[^}]+|evacuation)\}")


class OperatorError(RuntimeError):
    """An operator step that could not be performed; the message says why and what to do."""


@dataclass(frozen=True)
class OperatorApi:
    base_url: str
    """The server, e.g. http://127.0.0.1:8000."""
    token: str
    """A bearer token whose roles may do the steps (an admin token, or e.g. on_site_command for a drill)."""
    patience_s: float = 10.0
    """Wall seconds to wait for the alarm or evacuation a step acts on to exist."""
    timeout_s: float = 30.0

    def perform(self, request: str) -> Any:
        """Do one step; returns the server's JSON answer."""
        method, path, body = parse_request(request)
        deadline = time.monotonic() + self.patience_s
        while True:
            missing: list[str] = []
            resolved = PLACEHOLDER.sub(partial(self._resolve, missing=missing), path)
            if not missing:
                break
            if time.monotonic() >= deadline:
                raise OperatorError(f"nothing to act on: {missing[0]} after waiting {self.patience_s:g} s "
                                    "(is the step timed after what it acts on, with the rule's delay?)")
            time.sleep(0.2)
        return self.call(method, resolved, body)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            hint = {401: "check the token", 403: "use a token with a role that may do this",
                    404: "check the ids in the request against the site file",
                    422: "check the request body"}.get(exc.code, "see the server's log")
            raise OperatorError(f"{method} {path} answered {exc.code}: {detail} ({hint})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OperatorError(f"{method} {path}: server {self.base_url} unreachable ({reason}); "
                                "check the server URL and that the server runs") from None
        return json.loads(text) if text else None

    def _resolve(self, match: re.Match[str], missing: list[str]) -> str:
        key = match.group(1)
        if key == "evacuation":
            evacuations = self.call("GET", "/api/evacuations")
            if not evacuations:
                missing.append("no evacuation yet")
                return ""
            return str(evacuations[0]["id"])
        parts = key.split(":", 2)
        if len(parts) != 3:
            raise OperatorError(f"{{{key}}}: write an alarm as {{alarm:RULE:SUBJECT}}")
        _, rule, subject = parts
        for alarm in self.call("GET", "/api/alarms?state=open&limit=5000"):
            if alarm["rule"] == rule and alarm["subject"] == subject:
                return str(alarm["id"])
        missing.append(f"no open {rule} alarm on {subject}")
        return ""


def parse_request(request: str) -> tuple[str, str, Any]:
    """``METHOD /api/path [JSON body]`` -> (method, path, body or None)."""
    method, _, rest = request.strip().partition(" ")
    path, _, text = rest.strip().partition(" ")
    if method not in METHODS or not path.startswith("/api/"):
        raise OperatorError(f"{request!r}: write a request as 'METHOD /api/path [JSON body]', "
                            f"METHOD one of {', '.join(sorted(METHODS))}")
    try:
        body = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise OperatorError(f"{request!r}: the body is not JSON: {getattr(exc, 'problem', exc)}") from None
    return method, path, body
