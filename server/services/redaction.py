"""Secrets never reach a log: contact URLs carry tokens (a webhook's path or query) and passwords, and
libraries log those URLs at DEBUG (apprise logs the path token; urllib3 the request line).

Installed once per process as a log-record factory, so every record from every logger is masked when
it is created, whichever handler (console, file, JSON shipper, pytest) receives it later. Masked:
the secrets given (parts of the site's contact URLs), any `Bearer <token>`, and the password in any
`scheme://user:password@host` URL.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
MIN_SECRET = 8
"""Path segments and query values shorter than this are words (hooks, p-lead, POST), not tokens."""
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_USERINFO = re.compile(r"(://[^/\s:@]*:)[^@\s/]+@")

_lock = threading.Lock()
_secrets: list[str] = []
_installed = False


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that may be secret: its password, long path segments and query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found = {parts.password} if parts.password else set()
    found.update(unquote(s) for s in parts.path.split("/") if len(s) >= MIN_SECRET)
    found.update(v for _, v in parse_qsl(parts.query) if len(v) >= MIN_SECRET)
    if parts.username and len(parts.username) >= MIN_SECRET and parts.password is None:
        found.add(parts.username)  # a token passed as the user name (several apprise schemes do this)
    return {s for s in found if s}


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _USERINFO.sub(rf"\g<1>{MASK}@", _BEARER.sub(rf"\g<1>{MASK}", text))


def install(secrets: Iterable[str]) -> None:
    """Mask these secrets (added to those already known) in every log record from now on."""
    global _installed, _secrets
    with _lock:
        _secrets = sorted(set(_secrets) | {s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a broken format string is the logger's problem, not ours to raise
                return record
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
