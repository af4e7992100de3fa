"""Settings from their four sources, lowest first: defaults < TOML file < FACILITY_* < flags.

Every value remembers where it came from, so a bad one is reported with its source
("setting mqtt.port: 70000 is not a port number (from FACILITY_MQTT_PORT)") and
`facility config show` can say why a setting has the value it has.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from facility.errors import SettingsError
from runtime.settings.options import Option, check_value, is_generated
from runtime.settings.tree import SECTIONS

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT = "default"
OTHER_ENV = frozenset(
    {"FACILITY_CONFIG", "FACILITY_REQUIRE_SERVICES", "FACILITY_TEST_POSTGRES"}
)  # fmt: skip
"""FACILITY_* variables that are not settings of the tree (read by the CLI or the tests)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """The effective settings of one command: one dataclass per section, and their sources."""

    sections: Mapping[str, Any]
    options: tuple[Option, ...]
    sources: Mapping[str, str]
    """Option name -> "default", "file PATH", "env FACILITY_..." or "flag --...";"""

    def get(self, cls: type[T]) -> T:
        for value in self.sections.values():
            if type(value) is cls:
                return value
        raise KeyError(f"no section of type {cls.__name__} for this command")

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    def source(self, name: str) -> str:
        return self.sources.get(name, DEFAULT)


def all_options(sections: Collection[str] | None = None) -> tuple[Option, ...]:
    names = SECTIONS if sections is None else sections
    return tuple(o for name in names for o in SECTIONS[name].options)


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """The file's tables; unknown sections and keys fail, naming the file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError("config", f"{path}: no such file") from None
    except OSError as exc:
        raise SettingsError("config", f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError("config", f"{path}: {exc}") from None
    tables: dict[str, dict[str, Any]] = {}
    for name, table in doc.items():
        if name not in SECTIONS:
            hint = _hint(name, SECTIONS)
            raise SettingsError("config", f"{path}: unknown section [{name}]{hint}")
        if not isinstance(table, dict):
            raise SettingsError("config", f"{path}: {name} must be a table: [{name}]")
        keys = {o.key for o in SECTIONS[name].options}
        for key in table:
            if key not in keys:
                raise SettingsError(
                    "config", f"{path}: unknown setting {key!r} in [{name}]{_hint(key, keys)}"
                )
        tables[name] = table
    return tables


def resolve(
    sections: Collection[str],
    *,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    config_path: Path | None = None,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
    skip: Collection[str] = (),
) -> Resolved:
    """`flags` maps option names to values already parsed by argparse (given flags only)."""
    options = tuple(o for o in all_options(sections) if o.name not in skip)
    _warn_unknown_env(env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in options:
        table = (config or {}).get(option.section, {})
        if option.key in table:
            where = f"file {config_path}" if config_path else "file"
            raw = table[option.key]
            values[option.name] = check_value(
                option, partial(option.value_type.from_toml, raw), where
            )
            sources[option.name] = where
        if option.env in env:
            text = env[option.env]
            where = f"env {option.env}"
            values[option.name] = check_value(
                option, partial(option.value_type.from_text, text), where
            )
            sources[option.name] = where
        if option.name in flags:
            values[option.name] = flags[option.name]
            sources[option.name] = f"flag --{option.flag}"
    built = {
        name: _build(name, [o for o in options if o.section == name], values, sources)
        for name in sections
    }
    return Resolved(built, options, sources)


def _build(
    section: str, options: list[Option], values: Mapping[str, Any], sources: Mapping[str, str]
) -> Any:
    kwargs = {
        o.key: values.get(o.name, o.default)
        for o in options
        if o.name in values or not is_generated(o.default)
    }
    try:
        return SECTIONS[section].settings_type(**kwargs)
    except SettingsError as exc:
        option = next((o for o in options if exc.setting in (o.flag, o.key, o.name)), None)
        if option is None:
            raise
        where = sources.get(option.name, DEFAULT)
        message = str(exc).removeprefix(f"setting {exc.setting}: ")
        raise SettingsError(option.name, f"{message} (from {where})") from None


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {o.env for o in all_options()} | OTHER_ENV
    for name in env:
        if name.startswith("FACILITY_") and name not in known:
            log.warning("%s is not a setting; ignored%s", name, _hint(name, known))


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
