"""Revoking a client certificate: the certificate revocation list the broker checks.

A device's certificate is good until it expires (825 days by default); a stolen device, or a
lost one, must be shut out before that. `revoke` records the certificate as revoked in the
certificate directory's own CA state (openssl's `index.txt`), writes `crl.pem` again, signed
by the directory's CA, and moves the certificate to `revoked/` (its key is deleted, so the
next `facility devices certs` issues the account a new pair). The broker's listener reads the
list (`crlfile`) at start and again on SIGHUP: from then on the revoked certificate's TLS
handshake fails. A connection it already has stays open until it closes: restart the broker
to end it at once.

The list is valid until the CA expires: a list past its "next update" would make OpenSSL
refuse every client, so it never lapses before the certificates it could list do.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mqtt.identity.errors import IdentityError
from mqtt.identity.files import PUBLIC_MODE, prepare_dir
from mqtt.identity.openssl import (
    CA_CERT,
    CA_KEY,
    CA_STATE_DIR,
    CLIENTS_DIR,
    CRL_FILE,
    REVOKED_DIR,
    check_name,
    openssl_binary,
    run_openssl,
)

_CA_CONFIG = """\
[ca]
default_ca = facility
[facility]
database = {state}/index.txt
crlnumber = {state}/crlnumber
default_md = sha256
"""


@dataclass(frozen=True, slots=True)
class Revoked:
    name: str
    serial: str
    """The certificate's serial number (hex), as the list names it."""
    kept_as: Path
    crl: Path
    listed: int
    """Certificates the list names now."""


def revoke(out: Path, name: str) -> Revoked:
    """Revoke account `name`'s client certificate in the certificate directory `out`."""
    check_name(name)
    out = out.absolute()
    openssl = openssl_binary()
    _need_ca(out)
    cert, key = out / CLIENTS_DIR / f"{name}.crt", out / CLIENTS_DIR / f"{name}.key"
    if not cert.exists():
        raise IdentityError(
            f"{cert}: no certificate of {name!r} here (revoked already? a name in the site "
            "file? `facility devices certs` issues them)"
        )
    state = _ca_state(out)
    serial = run_openssl(openssl, out, "x509", "-in", str(cert), "-noout", "-serial")
    serial = serial.strip().removeprefix("serial=")
    if serial not in _revoked_serials(state):  # else a run that failed after it: go on
        run_openssl(
            openssl, out, "ca", "-config", str(state / "ca.cnf"), "-revoke", str(cert),
            "-keyfile", str(out / CA_KEY), "-cert", str(out / CA_CERT),
        )  # fmt: skip
    listed = _write_crl(openssl, out, state)
    revoked = out / REVOKED_DIR
    prepare_dir(revoked)
    kept_as = revoked / f"{name}-{serial}.crt"
    try:
        cert.replace(kept_as)
        key.unlink(missing_ok=True)
    except OSError as exc:
        raise IdentityError(f"{cert}: cannot move it to {revoked}: {exc.strerror}") from None
    return Revoked(name, serial, kept_as, out / CRL_FILE, listed)


def write_crl(openssl: str, out: Path) -> int:
    """Write `out/crl.pem` from the directory's CA state, valid until the CA expires; the
    number of certificates it lists."""
    return _write_crl(openssl, out, _ca_state(out))


def _write_crl(openssl: str, out: Path, state: Path) -> int:
    until = run_openssl(openssl, out, "x509", "-in", str(out / CA_CERT), "-noout", "-enddate")
    expires = datetime.strptime(until.strip().removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
    left_s = (expires.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    days = max(1, math.ceil(left_s / 86_400))  # to the CA's last day, not one short
    try:
        staging = Path(tempfile.mkdtemp(prefix=".crl-", dir=out))
    except OSError as exc:
        raise IdentityError(f"{out}: cannot write: {exc.strerror}") from None
    try:
        new = staging / CRL_FILE
        run_openssl(
            openssl, out, "ca", "-config", str(state / "ca.cnf"), "-gencrl",
            "-keyfile", str(out / CA_KEY), "-cert", str(out / CA_CERT),
            "-crldays", str(days), "-out", str(new),
        )  # fmt: skip
        new.chmod(PUBLIC_MODE)
        new.replace(out / CRL_FILE)
    except OSError as exc:
        raise IdentityError(f"{out / CRL_FILE}: cannot write: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(_revoked_serials(state))


def _revoked_serials(state: Path) -> set[str]:
    """The serials openssl's index marks revoked (`R`, expiry, revocation time, serial, ...)."""
    index = (state / "index.txt").read_text(encoding="utf-8")
    return {line.split("\t")[3] for line in index.splitlines() if line.startswith("R\t")}


def _need_ca(out: Path) -> None:
    for name in (CA_CERT, CA_KEY):
        if not (out / name).exists():
            raise IdentityError(
                f"{out / name}: missing: revoking needs the directory `facility devices certs` "
                "wrote, with its CA's key"
            )


def _ca_state(out: Path) -> Path:
    """The CA's state directory, made on first use: openssl's index and the list's number."""
    state = out / CA_STATE_DIR
    prepare_dir(state)
    try:
        (state / "index.txt").touch(exist_ok=True)
        number = state / "crlnumber"
        if not number.exists():
            number.write_text("01\n", encoding="ascii")
        (state / "ca.cnf").write_text(_CA_CONFIG.format(state=state), encoding="utf-8")
    except OSError as exc:
        raise IdentityError(f"{state}: cannot write: {exc.strerror}") from None
    return state
