"""Random secrets as text a person or a script can pass on a command line."""

from __future__ import annotations

import secrets


def random_secret(nbytes: int) -> str:
    """`secrets.token_urlsafe(nbytes)` (`A-Z a-z 0-9 - _`) that does not start with `-`: a
    secret that does would be read as an option after `--mqtt-password` or `--password` (the
    integration tests met one: "expected one argument"). Drawing again keeps it uniform over
    the secrets that remain."""
    while True:
        secret = secrets.token_urlsafe(nbytes)
        if not secret.startswith("-"):
            return secret
