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
        address = ipaddress.ip_address(client.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return str(_plain(address))


def _plain(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 client on a dual-stack socket is ::ffff:a.b.c.d: it is a.b.c.d (one limiter count, one rule)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def plain_address(text: str) -> str:
    """A peer's address as written once (IPv4-mapped IPv6 as IPv4); anything else (a name) as it is."""
    try:
        return str(_plain(ipaddress.ip_address(text.strip())))
    except ValueError:
        return text.strip()


class TrustedPeers:
    """The proxies whose X-Forwarded-For and X-Forwarded-Proto count, written as uvicorn reads
    FORWARDED_ALLOW_IPS: addresses and networks separated by commas, or `*` for every peer."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:  # a name (a unix socket's peer): no TCP peer's address matches it
                continue

    def __contains__(self, address: str) -> bool:
        if self.everyone:
            return True
        try:
            ip = _plain(ipaddress.ip_address(address))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client behind trusted `peer`: as uvicorn does, the last address in X-Forwarded-For that is not
        a trusted proxy (the first one when all are); `peer` when the header names none. A hop that is no IP
        address (a name, "unknown") is left out: the owner takes only an address."""
        hops = [plain_address(h) for value in forwarded_for for h in value.split(",") if _is_ip(h)]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer
