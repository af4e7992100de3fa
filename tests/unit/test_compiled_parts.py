"""The gateway's C extensions (setup.py): built wherever the tests require the real thing, and
named in the gateway's start-up warning when one is missing."""

from __future__ import annotations

import pytest

from ingest import line_protocol
from runtime.services import gateway
from tests.services import require_services


def test_every_extension_is_built_where_services_are_required() -> None:
    parts = gateway.compiled_parts()
    assert set(parts) == {
        "decoding",
        "line protocol",
        "MQTT packets",
        "rule windows",
        "rule episodes",
    }
    if not require_services() and not all(parts.values()):
        pytest.skip(f"not built here: {parts}")
    assert all(parts.values()), parts


def test_a_missing_extension_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_protocol, "COMPILED", False)
    parts = gateway.compiled_parts()
    assert parts["line protocol"] is False
    assert [name for name, built in parts.items() if not built] == ["line protocol"]
