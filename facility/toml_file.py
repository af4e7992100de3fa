"""Reading TOML files people write: errors come back with the file, line and column."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from facility.errors import FileError

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
_TABLE_HEADER = re.compile(r"""^\s*\[\[?\s*[A-Za-z0-9_.\-"' ]+\s*\]\]?\s*(#.*)?$""")


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


class TomlLines:
    """Where things sit in a TOML text, for errors that name a line and column.

    tomllib drops positions, so errors about a value (not about syntax) find the line again:
    the n-th `[[array]]` header, then a `key = ` below it within that table.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def header_line(self, header: str, occurrence: int) -> int | None:
        """Line of the `occurrence`-th (0-based) `[[header]]`."""
        pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
        seen = -1
        for number, line in enumerate(self.lines, start=1):
            if pattern.match(line):
                seen += 1
                if seen == occurrence:
                    return number
        return None

    def key_line(self, start: int | None, key: str) -> tuple[int | None, int]:
        """Line of `key = ...` at or after `start` (before the next table) and the column
        where its value begins; (start, 0) when not found."""
        if start is None:
            return None, 0
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=\s*")
        for number in range(start, len(self.lines) + 1):
            line = self.lines[number - 1]
            match = pattern.match(line)
            if match:
                return number, match.end() + 1
            if number > start and _TABLE_HEADER.match(line):
                break
        return start, 0
