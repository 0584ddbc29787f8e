"""Accounts and bearer tokens: scrypt password hashes, expiring login tokens, a login rate limit.

The hashing lives in server/credentials.py, beside the layers: the SQL user store uses it too.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from server.credentials import hash_password, new_token, token_hash, verify_password

__all__ = ["LoginLimiter", "hash_password", "new_token", "token_hash", "verify_password"]


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
