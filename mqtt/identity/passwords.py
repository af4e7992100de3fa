"""Mosquitto's password file: `username:$7$<iterations>$<salt>$<hash>` per line.

`$7$` is the PBKDF2-SHA512 format Mosquitto 2.x writes with `mosquitto_passwd` (and the only
one it writes by default): a 12-byte random salt and the 64-byte derived key, both in standard
base64 with padding. Mosquitto reads the iteration count from each line. Its default, 101, is
kept: the secrets made here are 192 random bits, which no amount of stretching makes harder or
easier to guess, and every CONNECT pays the derivation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from facility.secret_text import random_secret

ITERATIONS = 101
"""mosquitto_passwd's default."""
SALT_BYTES = 12
"""mosquitto_passwd's salt length."""
PASSWORD_BYTES = 24
"""Random bytes per generated secret (192 bits; 32 URL-safe characters)."""


def new_password() -> str:
    """A random secret for an account: 32 characters of `A-Z a-z 0-9 - _`, not starting with
    `-` (`facility.secret_text`)."""
    return random_secret(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `$7$...` hash Mosquitto checks `password` against."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(derived)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `hashed` (a `$7$` hash) is of `password`; False for any other or damaged hash."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (binascii.Error, ValueError):
        return False
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(derived, expected)


def check_username(username: str) -> None:
    """A name the password file (`name:hash`) and the ACL (`user name`) can hold."""
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValueError(f"{username!r} cannot be an MQTT account name (no ':' or spaces)")


def parse_password_file(text: str) -> dict[str, str]:
    """Username -> hash of each `name:hash` line (blank lines and `#` comments skipped)."""
    entries: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        username, hashed = line.split(":", 1)
        entries[username] = hashed
    return entries


def render_password_file(entries: Mapping[str, str]) -> str:
    """The file Mosquitto's `password_file` reads: one `name:hash` line per account."""
    for username in entries:
        check_username(username)
    return "".join(f"{username}:{hashed}\n" for username, hashed in entries.items())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
