"""The fast path's hold on paho's private names: this fails when any of them is missing or
changes signature, so a paho upgrade cannot slip in under the fast path unnoticed."""

from __future__ import annotations

import ast
import inspect
import tomllib
import types
from pathlib import Path

import paho.mqtt as paho_package
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from facility.errors import SettingsError
from mqtt import choose_path, guard
from mqtt import fast as fast_module

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_paho_is_the_recorded_one_and_pyproject_pins_it() -> None:
    assert paho_package.__version__ == guard.PAHO_VERSION
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"paho-mqtt=={guard.PAHO_VERSION}" in project["dependencies"]


@pytest.mark.parametrize("name", sorted(guard.PRIVATE_METHODS))
def test_each_method_the_fast_path_uses_has_its_recorded_signature(name: str) -> None:
    method = getattr(paho.Client, name, None)
    assert method is not None, f"paho.Client.{name} is gone"
    assert str(inspect.signature(method)) == guard.PRIVATE_METHODS[name]


def test_each_attribute_the_fast_path_reads_is_there_and_in_packet_has_its_shape() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    for name in guard.PRIVATE_ATTRIBUTES:
        assert hasattr(client, name), f"paho.Client()._{name} is gone"
    assert set(client._in_packet) == guard.IN_PACKET_KEYS
    assert guard.differences() == []
    assert guard.refusal() is None


def _private_names_used(source: str) -> set[str]:
    """`self._x` and `super()._x` names in fast.py that paho's client (not ours) defines."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            names.add(node.attr)
    ours = set(vars(fast_module.FastClient)) | {
        "_read_buffer", "_read_pos", "_fills", "_unacked", "_unacked_changed", "_write_lock",
        "_sending",
    }  # fmt: skip
    client = paho.Client(CallbackAPIVersion.VERSION2)
    return {n for n in names - ours if hasattr(paho.Client, n) or hasattr(client, n)}


def test_the_record_names_every_private_paho_name_fast_py_uses() -> None:
    used = _private_names_used(inspect.getsource(fast_module))
    recorded = set(guard.PRIVATE_METHODS) | set(guard.PRIVATE_ATTRIBUTES)
    assert used - recorded == set(), "record these in mqtt/guard.py"
    overridden = {
        n for n in vars(fast_module.FastClient) if hasattr(paho.Client, n) and n[:2] != "__"
    }
    assert overridden <= set(guard.PRIVATE_METHODS)


class _Changed(paho.Client):
    def _packet_queue(self, command: int) -> None:  # type: ignore[override]
        """paho changed a signature."""

    _sock_recv = None  # type: ignore[assignment]


def test_a_changed_or_missing_name_is_named_and_refuses_the_fast_path() -> None:
    found = guard.differences(_Changed)
    assert any(line.startswith("Client._packet_queue(self, command") for line in found)
    assert "Client._sock_recv is gone" in found
    reason = guard.refusal(paho_package, _Changed)
    assert reason is not None
    assert "_packet_queue" in reason


def test_another_paho_release_refuses_the_fast_path() -> None:
    other = types.ModuleType("paho.mqtt")
    other.__version__ = "2.3.0"  # type: ignore[attr-defined]
    reason = guard.refusal(other)
    assert reason == (
        f"paho-mqtt 2.3.0 is installed; the fast path was written against {guard.PAHO_VERSION}"
    )


def test_auto_takes_the_fast_path_only_where_the_guard_allows_it() -> None:
    assert choose_path("auto", None)[0] == "fast"
    path, why = choose_path("auto", "paho-mqtt 2.3.0 is installed")
    assert (path, why) == ("plain", "paho-mqtt 2.3.0 is installed")
    assert choose_path("plain", None)[0] == "plain"
    assert choose_path("fast", None)[0] == "fast"
    with pytest.raises(SettingsError, match="packet-path") as raised:
        choose_path("fast", "paho-mqtt 2.3.0 is installed")
    assert raised.value.setting == "packet-path"
