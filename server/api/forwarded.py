"""Requests a standby forwards to the site's owner: the headers they carry, and the owner trusting the
client address in them only from a worker of its own site.

A standby (server/standby.py) answers the client itself and passes the request on, so the owner's socket
sees the standby's address. It sends the client's address in CLIENT with the owner's forwarding key in KEY
(a random secret of the lease's epoch, kept in the lease row where only workers of the site read it). The
owner puts that address in place of the peer's only when the key matches, compared in constant time;
otherwise both headers are dropped, so no client sets its own address (the login limiter keys on it).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

CLIENT = "X-Floorwatch-Client"
"""The address of the client that asked the standby."""
KEY = "X-Floorwatch-Forward-Key"
"""The owner's forwarding key of its epoch, as the standby read it from the lease row."""
FORWARDED_BY = "X-Floorwatch-Forwarded-By"
"""On a forwarded request: the standby that forwarded it (a standby that receives one is in a loop)."""
SERVED_BY = "X-Floorwatch-Served-By"
"""On a forwarded answer: the worker that owns the site and answered."""

_CLIENT, _KEY = CLIENT.lower().encode(), KEY.lower().encode()


class ForwardedClient:
    """ASGI middleware: the client address a standby forwarded becomes the request's client, with the key."""

    def __init__(self, app: ASGIApp, key: Callable[[], str | None]) -> None:
        self.app = app
        self.key = key
        """The owner's forwarding key now; None while it owns no lease (then nothing is trusted)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if any(name in (_CLIENT, _KEY) for name, _value in headers):
                scope = {**scope, "headers": [(n, v) for n, v in headers if n not in (_CLIENT, _KEY)]}
                address = trusted_address(dict(headers), self.key())
                if address is not None:
                    scope["client"] = (address, 0)
        await self.app(scope, receive, send)


def trusted_address(headers: dict[bytes, bytes], own_key: str | None) -> str | None:
    """The forwarded client address when the request carries the owner's key, else None."""
    given, client = headers.get(_KEY), headers.get(_CLIENT)
    if not own_key or given is None or client is None or not hmac.compare_digest(given, own_key.encode()):
        return None
    try:
        return str(ipaddress.ip_address(client.decode("ascii").strip()))
    except (UnicodeDecodeError, ValueError):
        return None
