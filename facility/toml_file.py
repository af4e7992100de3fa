"""Reading TOML files people write: errors come back with the file, line and column."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from facility.errors import FileError

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def read_text(path: Path, error: type[FileError]) -> str:
    """A UTF-8 file's text, or `error(path, None, why)` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(path, None, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, None, f"cannot read: {exc}") from exc


def parse_toml(text: str, path: Path | str, error: type[FileError]) -> dict[str, Any]:
    """The parsed document, or `error(path, line, message)` for invalid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 only puts the position in the message: "... (at line 3, column 7)".
        found = _POSITION.search(str(exc))
        message = _POSITION.sub("", str(exc))
        line = int(found.group(1)) if found else None
        column = f", column {found.group(2)}" if found else ""
        raise error(path, line, f"not valid TOML{column}: {message}") from exc
