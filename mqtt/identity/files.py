"""Writing the generated files: whole or not at all, with their mode set before any byte."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mqtt.identity.errors import IdentityError

SECRET_MODE = 0o600
"""Secrets and private keys: the owner only."""
BROKER_MODE = 0o640
"""What the broker reads (password hashes, ACL, its key): owner and group (`chgrp mosquitto`)."""
PUBLIC_MODE = 0o644
"""Certificates."""


def prepare_dir(out: Path) -> None:
    """Create `out` (0700 when new) or fail with one line saying why."""
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise IdentityError(f"{out}: not a directory") from None
    except OSError as exc:
        raise IdentityError(f"{out}: cannot create the directory: {exc.strerror}") from None
    if not out.is_dir():
        raise IdentityError(f"{out}: not a directory")
    if not os.access(out, os.W_OK | os.X_OK):
        raise IdentityError(f"{out}: not writable")


def write_atomic(path: Path, text: str, mode: int) -> None:
    """Replace `path` with `text`, created with `mode` (never readable by others meanwhile)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have taken bits away
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise IdentityError(f"{path}: cannot write: {exc.strerror or exc}") from None


def read_optional(path: Path) -> str | None:
    """The file's text, None when it does not exist, one-line error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"{path}: cannot read: {exc}") from None
