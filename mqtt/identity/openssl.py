"""The `openssl` command, and where the certificate directory keeps what it makes
(`facility devices certs` issues into it, `facility devices revoke` revokes from it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

from mqtt.identity.errors import IdentityError

CA_CERT: Final = "ca.crt"
CA_KEY: Final = "ca.key"
CLIENTS_DIR: Final = "clients"
CRL_FILE: Final = "crl.pem"
"""The revocation list the broker reads (`crlfile`)."""
CA_STATE_DIR: Final = "ca-state"
"""openssl's record of revoked certificates (`index.txt`) and the list's number."""
_SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
REVOKED_DIR: Final = "revoked"
"""Revoked client certificates, kept as a record (`NAME-SERIAL.crt`); their keys are deleted."""


def openssl_binary() -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise IdentityError("no openssl command (Debian: apt-get install openssl)")
    return openssl


def run_openssl(binary: str, cwd: Path, *args: str) -> str:
    """`openssl ARGS` in `cwd`; its standard output, or one line saying why it failed."""
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise IdentityError(f"openssl {args[0]} failed: {last}")
    return done.stdout


def check_name(name: str) -> None:
    """An account name fit to be a certificate's CN and a file name in the directory."""
    if not _SAFE_NAME.match(name):
        raise IdentityError(f"{name!r} cannot be a certificate's common name")
