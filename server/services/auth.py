"""Accounts and bearer tokens: scrypt password hashes, expiring login tokens, a login rate limit.

Tokens are random (256 bits) and stored only as SHA-256: a stolen database yields no usable token.
Passwords are hashed with scrypt (RFC 7914; memory-hard, in the standard library) at n=2**14, r=8,
p=1 — the parameters live in the stored string, so raising them later needs no migration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import deque
from datetime import datetime, timedelta

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                   dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginLimiter:
    """At most `attempts` failed logins per key (user name, client address) within `window`.

    In memory: one server process guards its own door; several processes behind a balancer each
    apply the limit (documented, and still a limit).
    """

    def __init__(self, attempts: int = 5, window: timedelta = timedelta(minutes=5)) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: datetime) -> float:
        """Seconds until the next attempt is allowed; 0 when it is allowed now."""
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                return 0.0
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if len(failures) < self.attempts:
                return 0.0
            return (failures[0] + self.window - now).total_seconds()

    def failed(self, key: str, now: datetime) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
