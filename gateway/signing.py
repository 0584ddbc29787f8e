"""Signed commands: an HMAC-SHA256 over a command's canonical bytes, with a per-edge key.

MQTT does not tell a subscriber who published a message, so without a signature the edge trusts the
broker's ACL alone. With one, an edge executes only commands made by the holder of its key (the
server), whatever the broker lets through (anonymous access, a wrong ACL, a leaked edge password).

Signature text: ``v1:<key_id>:<64 hex>``. The key id is a fingerprint of the key (not a name someone
must keep in step), so an edge holding its current and previous key knows which one to check with, and
keys can rotate without a flag day. Pure: stdlib hmac/hashlib/json only, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Final, TypeVar

from gateway.contract import Command, CommandResult

Signable = Command | CommandResult
M = TypeVar("M", Command, CommandResult)

SCHEME: Final = "v1"
KEY_BYTES: Final = 32
"""Generated keys are 256 bits (`secrets.token_bytes(32)`); shorter keys are refused when parsed."""
CONTEXT: Final = "floorwatch-command"
"""First element of the canonical form: the same key can never be tricked into signing another kind of
message that happens to serialise alike."""
SIGNED_FIELDS: Final = ("v", "id", "device", "action", "reason", "issued_at", "expires_at")
"""Every Command field except `sig`, in a fixed order. A field added to Command must be added here (a
unit test fails until it is): an unsigned field would be a field anyone could change in transit."""
RESULT_CONTEXT: Final = "floorwatch-command-result"
RESULT_FIELDS: Final = ("v", "id", "ok", "ts", "error", "device", "reported")
"""The same for CommandResult, which the edge signs with the same key: the server then knows that a
"done" or "failed" comes from the edge, not from whoever could publish on its result topic."""
_FORMS: Final[dict[type[Signable], tuple[str, tuple[str, ...]]]] = {
    Command: (CONTEXT, SIGNED_FIELDS), CommandResult: (RESULT_CONTEXT, RESULT_FIELDS)}


def canonical(message: Signable) -> bytes:
    """The bytes that are signed: the fields as the contract encodes them (times as RFC 3339 UTC with
    milliseconds, enums as their values), in the kind's field order, as a compact JSON array (a result's
    `reported` metrics with sorted keys). Both ends compute it from the decoded model, so the publisher's
    JSON key order or spacing does not matter."""
    context, fields = _FORMS[type(message)]
    wire = message.model_dump(mode="json")
    return json.dumps([context, *(wire[name] for name in fields)], ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (12 hex characters); it reveals nothing useful about it."""
    return hashlib.sha256(b"floorwatch-command-key-id:" + key).hexdigest()[:12]


def sign(command: Signable, key: bytes) -> str:
    digest = hmac.new(key, canonical(command), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{key_id(key)}:{digest}"


def signed(command: M, key: bytes) -> M:
    """A copy of `command` (or a result) carrying its signature in `sig`."""
    return command.model_copy(update={"sig": sign(command, key)})


def signature_key_id(sig: str | None) -> str | None:
    """The key id a signature names, or None when it is not a well-formed v1 signature."""
    if sig is None:
        return None
    parts = sig.split(":")
    if len(parts) != 3 or parts[0] != SCHEME or len(parts[2]) != 64:
        return None
    return parts[1]


def verify(command: Signable, key: bytes) -> bool:
    """True when `command.sig` is this key's signature of this command (constant-time comparison)."""
    if command.sig is None or signature_key_id(command.sig) != key_id(key):
        return False
    return hmac.compare_digest(command.sig.encode(), sign(command, key).encode())


def refusal(command: Signable, keys: Iterable[bytes]) -> str | None:
    """None when one of `keys` (current, previous) signed the command; otherwise why not, for a log line
    (names key ids only, never a key)."""
    keys = list(keys)
    if command.sig is None:
        return "no signature"
    named = signature_key_id(command.sig)
    if named is None:
        return "malformed signature"
    if any(verify(command, key) for key in keys):
        return None
    if named not in {key_id(key) for key in keys}:
        return f"signed with key {named}, which is not this edge's key"
    return f"signature does not match the command (key {named})"


def parse_key(text: str) -> bytes:
    """A key file's content: the key as hex on one line (surrounding whitespace ignored)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("a command key file holds the key as hexadecimal") from None
    if len(key) < KEY_BYTES:
        raise ValueError(f"a command key must be at least {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)")
    return key


def format_key(key: bytes) -> str:
    return key.hex() + "\n"
