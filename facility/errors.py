"""Errors of the shared kernel.

FacilityError
 ├── SiteFileError      a site file cannot be read or is wrong (names file and line)
 ├── SettingsError      a setting is invalid (names the setting)
 └── SinkBusyError      a sink cannot take a batch yet and has waited itself: retry, unacked
"""

from __future__ import annotations

from pathlib import Path


class FacilityError(Exception):
    """Base of every error this project raises on purpose."""


class FileError(FacilityError):
    """A mistake in a file written by people (site, scenario, rules): where it is, and what."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


class SiteFileError(FileError):
    pass


class SettingsError(FacilityError):
    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"setting {setting}: {message}")


class SinkBusyError(FacilityError):
    """A batch sink cannot make the batch safe yet (the spool is full) and already waited a
    while for room: the gateway tries the batch again at once, without acking it and without
    the backoff a failure gets, so acks resume as soon as there is room (back-pressure)."""
