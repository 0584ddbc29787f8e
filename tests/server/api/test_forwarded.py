"""The owner's trust in a forwarded client address, and the proxies a standby trusts (server/api/forwarded.py)."""

from __future__ import annotations

from server.api.forwarded import CLIENT, KEY, TrustedPeers, plain_address, trusted_address

OWN_KEY = "k" * 64


def forwarded(client: str, key: str = OWN_KEY) -> dict[bytes, bytes]:
    return {CLIENT.lower().encode(): client.encode(), KEY.lower().encode(): key.encode()}


def test_a_forwarded_address_counts_with_the_owners_key_only_and_is_written_once() -> None:
    assert trusted_address(forwarded("10.0.0.9"), OWN_KEY) == "10.0.0.9"
    assert trusted_address(forwarded("::ffff:10.0.0.9"), OWN_KEY) == "10.0.0.9"  # one client, one count
    assert trusted_address(forwarded("10.0.0.9", "0" * 64), OWN_KEY) is None
    assert trusted_address(forwarded("10.0.0.9"), None) is None
    assert trusted_address(forwarded("not-an-address"), OWN_KEY) is None


def test_trusted_peers_read_as_uvicorn_reads_forwarded_allow_ips() -> None:
    peers = TrustedPeers("127.0.0.1, ::1, 10.8.0.0/16, proxy.internal")
    assert "127.0.0.1" in peers and "::ffff:127.0.0.1" in peers and "10.8.3.4" in peers and "::1" in peers
    assert "10.9.0.1" not in peers and "127.0.0.2" not in peers and "proxy.internal" not in peers
    assert "anything" in TrustedPeers("*")
    # the last address a trusted proxy did not add is the client; a peer's own claims are the header's
    assert peers.client("127.0.0.1", ["6.6.6.6, 10.1.1.1", "10.8.0.5"]) == "10.1.1.1"
    assert peers.client("127.0.0.1", ["10.8.0.5"]) == "10.8.0.5"
    assert peers.client("127.0.0.1", []) == "127.0.0.1"
    assert plain_address("::ffff:192.0.2.1") == "192.0.2.1" and plain_address("2001:db8::1") == "2001:db8::1"


def test_a_hop_that_is_no_ip_address_is_not_taken_as_the_client() -> None:
    peers = TrustedPeers("127.0.0.1")
    assert peers.client("127.0.0.1", ["10.1.1.1, proxy.internal"]) == "10.1.1.1"
    assert peers.client("127.0.0.1", ["unknown"]) == "127.0.0.1"  # none is an address: the peer
    # under `*` every hop is trusted, so the first one, which the client wrote, wins (docs/deployment.md)
    assert TrustedPeers("*").client("127.0.0.1", ["6.6.6.6, 10.1.1.1"]) == "6.6.6.6"
