"""Errors of the notification stage."""

from __future__ import annotations

from facility.errors import FacilityError, FileError


class NotifySettingsError(FileError):
    """The alerts settings file is wrong: names the file, and the line where TOML knows it."""


class CursorError(FacilityError):
    """A channel's cursor file is unreadable: refusing beats notifying every old event again."""
