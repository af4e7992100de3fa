"""The dashboard's translation tables: every string the scripts ask for exists in both languages.

Reads the static files as text (no browser needed), so a key typed wrong or left out of one
table fails here rather than showing up as a raw key on a steward's phone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"

_TABLE = re.compile(r"^const (\w+) = \{\n(.*?)^\};", re.S | re.M)
_ENTRY = re.compile(r'^\s+"([^"]+)":\s*"((?:[^"\\]|\\.)*)",\s*$', re.M)
# t("key"), tOr("key", ...), and the template-literal form t(`status.${x}`) (a prefix).
_LITERAL = re.compile(r'\b(?:t|tOr)\(\s*"([^"]+)"')
_PREFIX = re.compile(r"\b(?:t|tOr)\(\s*`([^`$]+)\$\{")
# A key handed around before it is translated (e.g. a notice the login page shows).
_QUOTED = re.compile(r'"([a-z_]+(?:\.[a-z0-9_]+)+)"')
_MARKUP = re.compile(r'data-i18n(?:-title|-placeholder)?="([^"]+)"')
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def tables() -> dict[str, dict[str, str]]:
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    found = {name: dict(_ENTRY.findall(body)) for name, body in _TABLE.findall(source)}
    assert set(found) == {"en", "zh"}, f"expected the en and zh tables, found {sorted(found)}"
    return found


def _sources() -> list[str]:
    """Every script and template, with the tables themselves taken out of i18n.js."""
    texts = [
        p.read_text(encoding="utf-8") for p in [*STATIC.glob("*.js"), *TEMPLATES.glob("*.html")]
    ]
    return [_TABLE.sub("", text) for text in texts]


def used() -> tuple[set[str], set[str]]:
    """Keys asked for by t()/tOr() or markup, and the prefixes of keys built at run time."""
    literal: set[str] = set()
    prefixes: set[str] = set()
    for text in _sources():
        literal |= set(_LITERAL.findall(text)) | set(_MARKUP.findall(text))
        prefixes |= set(_PREFIX.findall(text))
    return literal, prefixes


def test_both_languages_have_the_same_keys() -> None:
    found = tables()
    assert set(found["en"]) ^ set(found["zh"]) == set()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_key_the_scripts_ask_for_exists(language: str) -> None:
    table = tables()[language]
    literal, prefixes = used()
    assert literal - set(table) == set()
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in table), f"nothing under {prefix!r}"


def test_no_key_is_left_unused() -> None:
    literal, prefixes = used()
    literal |= {key for text in _sources() for key in _QUOTED.findall(text)}
    unused = {
        key
        for key in tables()["en"]
        if key not in literal and not any(key.startswith(p) for p in prefixes)
    }
    assert unused == set()


def test_placeholders_match_between_languages() -> None:
    found = tables()
    for key, text in found["en"].items():
        assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(found["zh"][key])), key


def test_chinese_strings_are_translated() -> None:
    """A Chinese string equal to the English one is a copy someone forgot to translate."""
    found = tables()
    same = {
        key
        for key, text in found["en"].items()
        if text == found["zh"][key] and re.search(r"[A-Za-z]{3,}", _PLACEHOLDER.sub("", text))
    }
    assert same == set()
