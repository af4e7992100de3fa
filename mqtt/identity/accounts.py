"""The credentials directory `facility devices credentials` writes, and rotation.

```
DIR/credentials.csv   username,role,topic,password per account (mode 0600): for provisioning
DIR/passwd            Mosquitto password_file (PBKDF2-SHA512 hashes)
DIR/acl               Mosquitto acl_file
```

The secrets file is the source of truth. Running again keeps every secret it holds (and the
password-file line that still matches it, byte for byte), adds accounts for new devices and
drops those of devices no longer in the site file. `rotate_credential` gives one account a new
secret; the broker takes it (and forgets the old one) on its next reload.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from facility.site import Site
from mqtt.identity.acl import Account, Role, render_acl, site_accounts
from mqtt.identity.errors import IdentityError
from mqtt.identity.files import (
    BROKER_MODE,
    SECRET_MODE,
    prepare_dir,
    read_optional,
    write_atomic,
)
from mqtt.identity.passwords import (
    hash_password,
    new_password,
    parse_password_file,
    render_password_file,
    verify_password,
)

SECRETS_FILE = "credentials.csv"
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
COLUMNS = ("username", "role", "topic", "password")
ROLES: Mapping[str, Role] = {"device": "device", "gateway": "gateway", "simulator": "simulator"}


@dataclass(frozen=True, slots=True)
class Credential:
    account: Account
    password: str


@dataclass(frozen=True, slots=True)
class IssueReport:
    out: Path
    accounts: int
    added: tuple[str, ...]
    removed: tuple[str, ...]


def issue_credentials(site: Site, out: Path, *, simulator: bool = False) -> IssueReport:
    """Write (or bring up to date) the credentials directory for `site`."""
    prepare_dir(out)
    known = read_secrets(out / SECRETS_FILE)
    credentials: dict[str, Credential] = {}
    added: list[str] = []
    for account in site_accounts(site, simulator=simulator):
        kept = known.get(account.username)
        if kept is None or kept.account.role != account.role:
            added.append(account.username)
            credentials[account.username] = Credential(account, new_password())
        else:
            credentials[account.username] = Credential(account, kept.password)
    removed = tuple(name for name in known if name not in credentials)
    _write_all(out, site.id, credentials)
    return IssueReport(out, len(credentials), tuple(added), removed)


def rotate_credential(out: Path, username: str) -> Credential:
    """Give one account a new secret, in the secrets file and the password file."""
    path = out / SECRETS_FILE
    if not path.is_file():
        raise IdentityError(
            f"{path}: no such file (run `facility devices credentials --out {out}` first)"
        )
    credentials = read_secrets(path)
    old = credentials.get(username)
    if old is None:
        raise IdentityError(f"no account {username!r} in {path}")
    credentials[username] = Credential(old.account, new_password())
    write_atomic(path, render_secrets(credentials.values()), SECRET_MODE)
    _write_password_file(out / PASSWORD_FILE, credentials)
    return credentials[username]


def _write_all(out: Path, site_id: str, credentials: dict[str, Credential]) -> None:
    # The secrets first: a password file whose secrets were lost would lock every device out.
    write_atomic(out / SECRETS_FILE, render_secrets(credentials.values()), SECRET_MODE)
    _write_password_file(out / PASSWORD_FILE, credentials)
    accounts = [c.account for c in credentials.values()]
    write_atomic(out / ACL_FILE, render_acl(site_id, accounts), BROKER_MODE)


def _write_password_file(path: Path, credentials: dict[str, Credential]) -> None:
    """Hash each secret, keeping a line of the old file that still matches (no churn)."""
    old = parse_password_file(read_optional(path) or "")
    entries = {}
    for username, credential in credentials.items():
        hashed = old.get(username)
        if hashed is None or not verify_password(credential.password, hashed):
            hashed = hash_password(credential.password)
        entries[username] = hashed
    write_atomic(path, render_password_file(entries), BROKER_MODE)


def render_secrets(credentials: Iterable[Credential]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for credential in credentials:
        account = credential.account
        writer.writerow((account.username, account.role, account.topic, credential.password))
    return buffer.getvalue()


def read_secrets(path: Path) -> dict[str, Credential]:
    """The accounts of an existing secrets file (none when it does not exist yet)."""
    text = read_optional(path)
    if text is None:
        return {}
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise IdentityError(f"{path}:1: not a credentials file (header {','.join(COLUMNS)})")
    credentials: dict[str, Credential] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS) or row[1] not in ROLES or not row[0] or not row[3]:
            raise IdentityError(f"{path}:{number}: expected {','.join(COLUMNS)}")
        username, role, topic, password = row
        credentials[username] = Credential(Account(username, ROLES[role], topic), password)
    return credentials
