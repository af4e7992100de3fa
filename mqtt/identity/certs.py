"""Mutual TLS: a CA, the broker's certificate and a client certificate per account.

`facility devices certs` writes, with the `openssl` command (no Python dependency):

```
DIR/ca.crt, DIR/ca.key          the CA (its key 0600: keep it off the broker in production)
DIR/server.crt, DIR/server.key  the broker's (SAN 127.0.0.1 and localhost, plus --server-name)
DIR/clients/NAME.crt, NAME.key  one per account; the certificate's CN is the account name
DIR/acl                         the same acl_file `facility devices credentials` writes
DIR/crl.pem                     the revocation list (`crlfile`): empty until `revoke`
```

A broker listener with `require_certificate true` and `use_identity_as_username true` takes
the CN as the username, so the ACL confines a device holding its certificate exactly as it
confines one logging in with its password. Existing files are kept: running again issues
certificates only for new accounts. Keys are EC P-256.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facility.site import Site
from mqtt.identity.acl import render_acl, site_accounts
from mqtt.identity.errors import IdentityError
from mqtt.identity.files import (
    BROKER_MODE,
    PUBLIC_MODE,
    SECRET_MODE,
    prepare_dir,
    write_atomic,
)
from mqtt.identity.openssl import (
    CA_CERT,
    CA_KEY,
    CA_STATE_DIR,
    CLIENTS_DIR,
    CRL_FILE,
    check_name,
    openssl_binary,
    run_openssl,
)
from mqtt.identity.revocation import write_crl

SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
ACL_FILE = "acl"
DEFAULT_DAYS = 825
DEFAULT_SERVER_NAMES = ("127.0.0.1", "localhost")
ORGANISATION = "Facility Monitor"

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {san}
"""


@dataclass(frozen=True, slots=True)
class CertReport:
    out: Path
    issued: tuple[str, ...]
    """What was made this run: "ca", "server" and account names."""
    kept: int
    """Certificates already there and left alone."""


def issue_certs(
    site: Site,
    out: Path,
    *,
    simulator: bool = False,
    days: int = DEFAULT_DAYS,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
) -> CertReport:
    """Write (or complete) the certificate directory for `site`."""
    if days < 1:
        raise IdentityError(f"--days must be at least 1, not {days}")
    if not server_names:
        raise IdentityError("the broker's certificate needs at least one --server-name")
    openssl = openssl_binary()
    accounts = site_accounts(site, simulator=simulator)
    for account in accounts:
        check_name(account.username)
    out = out.absolute()  # openssl runs in the staging directory: a relative path would miss
    prepare_dir(out)
    clients = out / CLIENTS_DIR
    prepare_dir(clients)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".certs-", dir=out))
    except OSError as exc:
        raise IdentityError(f"{out}: cannot write: {exc.strerror}") from None
    try:
        tool = _OpenSsl(openssl, staging, days, server_names)
        issued: list[str] = []
        kept = 0
        if _pair_exists(out / CA_CERT, out / CA_KEY):
            kept += 1
        else:
            tool.make_ca(f"{ORGANISATION} device CA ({site.id})", out / CA_CERT, out / CA_KEY)
            issued.append("ca")
        ca = (out / CA_CERT, out / CA_KEY)
        if _pair_exists(out / SERVER_CERT, out / SERVER_KEY):
            kept += 1
        else:
            tool.make_leaf("server", server_names[0], ca, out / SERVER_CERT, out / SERVER_KEY)
            issued.append("server")
        for account in accounts:
            cert, key = clients / f"{account.username}.crt", clients / f"{account.username}.key"
            if _pair_exists(cert, key):
                kept += 1
            else:
                tool.make_leaf("client", account.username, ca, cert, key)
                issued.append(account.username)
        if "ca" in issued:  # a new CA: the old one's revocations and list mean nothing now
            shutil.rmtree(out / CA_STATE_DIR, ignore_errors=True)
        if "ca" in issued or not (out / CRL_FILE).exists():
            write_crl(openssl, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_atomic(out / ACL_FILE, render_acl(site.id, accounts), BROKER_MODE)
    return CertReport(out, tuple(issued), kept)


def _pair_exists(cert: Path, key: Path) -> bool:
    """Both there: keep them. One without the other is a damaged directory, not a fresh one."""
    if cert.exists() and key.exists():
        return True
    if cert.exists() or key.exists():
        missing = key if cert.exists() else cert
        raise IdentityError(f"{missing}: missing (its pair is there); remove both to reissue")
    return False


def _san(names: Sequence[str]) -> str:
    entries = []
    for name in names:
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name):
                raise IdentityError(f"{name!r} is not a host name or IP address") from None
            entries.append(f"DNS:{name}")
    return ", ".join(entries)


class _OpenSsl:
    """The openssl command, run in a private staging directory; results moved into place."""

    def __init__(self, binary: str, staging: Path, days: int, server_names: Sequence[str]) -> None:
        self.binary = binary
        self.staging = staging
        self.days = days
        self.config = staging / "openssl.cnf"
        self.config.write_text(_OPENSSL_CONFIG.format(san=_san(server_names)), encoding="utf-8")

    def make_ca(self, common_name: str, cert: Path, key: Path) -> None:
        new_cert, new_key = self.staging / "ca.crt", self.staging / "ca.key"
        self._run(
            "req", "-config", str(self.config), "-x509", "-new", *self._new_key(new_key),
            "-out", str(new_cert), "-days", str(self.days), "-extensions", "ca",
            "-subj", f"/O={ORGANISATION}/CN={common_name}",
        )  # fmt: skip
        _install(new_key, key, SECRET_MODE)
        _install(new_cert, cert, PUBLIC_MODE)

    def make_leaf(
        self, profile: str, common_name: str, ca: tuple[Path, Path], cert: Path, key: Path
    ) -> None:
        new_cert, new_key = self.staging / "leaf.crt", self.staging / "leaf.key"
        request = self.staging / "leaf.csr"
        self._run(
            "req", "-config", str(self.config), "-new", *self._new_key(new_key),
            "-out", str(request), "-subj", f"/O={ORGANISATION}/CN={common_name}",
        )  # fmt: skip
        self._run(
            "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(self.days),
            "-extfile", str(self.config), "-extensions", profile, "-out", str(new_cert),
        )  # fmt: skip
        _install(new_key, key, BROKER_MODE if profile == "server" else SECRET_MODE)
        _install(new_cert, cert, PUBLIC_MODE)

    @staticmethod
    def _new_key(path: Path) -> tuple[str, ...]:
        return ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(path))  # fmt: skip

    def _run(self, *args: str) -> None:
        run_openssl(self.binary, self.staging, *args)


def _install(source: Path, target: Path, mode: int) -> None:
    try:
        source.chmod(mode)
        source.replace(target)
    except OSError as exc:
        raise IdentityError(f"{target}: cannot write: {exc.strerror}") from None
