"""Options read off the settings dataclasses: each field is declared once, in its dataclass.

A field's type (from its annotation), default and help (its attribute docstring) give the TOML
key, the `FACILITY_*` variable and the flag, so the three can never drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from facility.errors import SettingsError

ENV_PREFIX = "FACILITY_"
_SECRET_NAMES = ("secret", "password", "token")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class ValueType:
    """How text (an env var, a flag) and TOML values become a field's value."""

    base: type
    optional: bool = False
    choices: tuple[str, ...] = ()
    many: bool = False
    """A tuple of `base`: repeated flags, a TOML array, an env var split at ';'."""

    def describe(self) -> str:
        name = "|".join(self.choices) if self.choices else self.base.__name__
        name = {"Path": "path", "str": "text", "bool": "true|false"}.get(name, name)
        if self.many:
            name = f"list of {name}"
        return f"{name} or none" if self.optional else name

    def from_text(self, text: str) -> Any:
        if self.many:
            return tuple(self._one(part.strip()) for part in text.split(";") if part.strip())
        if self.optional and text.strip().lower() in ("", "none"):
            return None
        return self._one(text)

    def from_toml(self, value: Any) -> Any:
        if self.many:
            if not isinstance(value, list):
                raise ValueError(f"must be an array of {self.base.__name__}, not {value!r}")
            return tuple(self._one_toml(v) for v in value)
        return self._one_toml(value)

    def _one(self, text: str) -> Any:
        if self.base is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(f"{text!r} is not true or false")
        if self.base is int:
            try:
                return int(text.strip())
            except ValueError:
                raise ValueError(f"{text!r} is not a whole number") from None
        if self.base is float:
            try:
                return float(text.strip())
            except ValueError:
                raise ValueError(f"{text!r} is not a number") from None
        return self._checked(Path(text) if self.base is Path else text)

    def _one_toml(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if self.base is bool and isinstance(value, bool):
            return value
        if self.base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if self.base in (str, Path) and isinstance(value, str):
            return self._one(value)
        raise ValueError(f"must be {self.describe()}, not {value!r}")

    def _checked(self, value: Any) -> Any:
        if self.choices and str(value) not in self.choices:
            raise ValueError(f"{str(value)!r} is not one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True, slots=True)
class Option:
    section: str
    key: str
    """The dataclass field and the TOML key of its section."""
    flag: str
    """The command-line flag without its dashes (unique among the options of one command)."""
    value_type: ValueType
    default: Any
    help: str
    secret: bool

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.key}".upper()


def value_type(annotation: Any) -> ValueType:
    """The ValueType of a field annotation (resolved, not the string)."""
    optional = False
    many = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"unsupported settings type {annotation!r}")
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is tuple:
        items = typing.get_args(annotation)
        if len(items) != 2 or items[1] is not Ellipsis:
            raise TypeError(f"unsupported settings type {annotation!r}")
        many = True
        annotation = items[0]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = tuple(str(c) for c in typing.get_args(annotation))
        return ValueType(str, optional=optional, choices=choices, many=many)
    if annotation not in (bool, int, float, str, Path):
        raise TypeError(f"unsupported settings type {annotation!r}")
    return ValueType(annotation, optional=optional, many=many)


@cache
def attribute_docs(cls: type) -> Mapping[str, str]:
    """Each field's attribute docstring (the string right under it in the class body)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for node, after in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def is_secret(key: str) -> bool:
    return key in _SECRET_NAMES or key.endswith(tuple("_" + s for s in _SECRET_NAMES))


def options_of(
    section: str,
    cls: type,
    *,
    prefix: str | None,
    flags: Mapping[str, str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> tuple[Option, ...]:
    """One Option per field of the dataclass `cls` (minus `skip`).

    The flag is `{prefix}-{field}` with dashes (just `{field}` when prefix is None), unless
    `flags` names another (kept for flags the README has always used, like `--port`).
    """
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    renamed = flags or {}
    options = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = _FACTORY
        else:
            raise TypeError(f"{cls.__name__}.{f.name} needs a default to be a setting")
        dashed = f.name.replace("_", "-")
        flag = renamed.get(f.name) or (f"{prefix}-{dashed}" if prefix else dashed)
        options.append(
            Option(
                section=section,
                key=f.name,
                flag=flag,
                value_type=value_type(hints[f.name]),
                default=default,
                help=docs.get(f.name, ""),
                secret=is_secret(f.name),
            )
        )
    return tuple(options)


class _Factory:
    """The default of a field with a default_factory (made fresh by the dataclass)."""

    def __repr__(self) -> str:
        return "(generated)"


_FACTORY: Any = _Factory()


def is_generated(value: object) -> bool:
    return value is _FACTORY


def check_value(option: Option, parse: Callable[[], Any], source: str) -> Any:
    """`parse()`'s value, or a SettingsError naming the option and where the value came from."""
    try:
        return parse()
    except ValueError as exc:
        raise SettingsError(option.name, f"{exc} (from {source})") from None
