"""Password and token hashing: scrypt password hashes and SHA-256 token digests (standard library only).

Tokens are random (256 bits) and stored only as SHA-256: a stolen database yields no usable token.
Passwords are hashed with scrypt (RFC 7914; memory-hard, in the standard library) at n=2**14, r=8,
p=1 — the parameters live in the stored string, so raising them later needs no migration.

Outside the layers (not domain: it draws random salts and tokens): the login service and the SQL user
store both use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

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


def new_token(nbytes: int = 32) -> str:
    """A URL-safe secret that never starts with "-": one that does reads as an option on a command line
    (`floorwatch simulate --token -x…`, `mosquitto_pub -P -x…`) and argparse refuses it."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
