"""The transport package without a broker: reconnect policy, error mapping, settings, and the
one log line that says which packet path a client took."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import logging
import random
import ssl
import textwrap
from typing import Any

import paho.mqtt.client as paho_client
import paho.mqtt.exception as paho_exception
import paho.mqtt.subscribeoptions as paho_subscribeoptions
import pytest

from facility.errors import SettingsError
from gateway.mqtt import MqttSettings
from mqtt import MqttConnectError, MqttError, PacketPath, ReconnectPolicy, make_client
from mqtt.errors import mapped, paho_errors
from simulators.errors import PublishError
from simulators.publisher import MqttPublisher, PublisherSettings
from tests.services import free_port

SETTINGS = (MqttSettings, PublisherSettings)


def test_backoff_doubles_up_to_the_cap_with_jitter_around_each_step() -> None:
    policy = ReconnectPolicy(min_s=1.0, max_s=30.0)
    rng = random.Random(7)
    for failures, base in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (40, 30), (99, 30)]:
        waits = [policy.delay_s(failures, rng) for _ in range(200)]
        assert all(0.5 * base <= w <= 1.5 * base for w in waits)
        assert max(waits) - min(waits) > 0.5 * base  # spread, not one instant for everyone


def _paho_exception_types() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in (paho_client, paho_exception, paho_subscribeoptions):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("paho.")
            ):
                found.add(value)
    return found


def test_every_error_paho_defines_or_raises_is_mapped_to_ours() -> None:
    raised_by_paho = {OSError, ConnectionRefusedError, TimeoutError, ssl.SSLError, ValueError}
    types = _paho_exception_types() | raised_by_paho
    assert len(types) >= 7
    unmapped = {t.__name__ for t in types if mapped(t.__new__(t)) is None}
    assert unmapped == set()


def test_a_mapped_error_says_what_failed_and_keeps_the_cause() -> None:
    cause = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(MqttConnectError, match=r"cannot reach x: .*refused") as raised:  # noqa: SIM117
        with paho_errors("cannot reach x"):
            raise cause
    assert raised.value.__cause__ is cause
    assert isinstance(raised.value, MqttError)


@pytest.mark.parametrize("settings_type", SETTINGS)
@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"port": 0}, "port"),
        ({"protocol": "4"}, "protocol"),
        ({"client_id": ""}, "client-id"),
        ({"keepalive_s": 0}, "keepalive-s"),
        ({"reconnect_min_s": 0}, "reconnect-min-s"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 2}, "reconnect-max-s"),
        ({"packet_path": "fastest"}, "packet-path"),
        ({"ca_file": "/etc/ssl/ca.pem"}, "ca-file"),
        ({"cert_file": "/etc/facility/gateway.crt"}, "cert-file"),
        ({"tls": True, "key_file": "/etc/facility/gateway.key"}, "key-file"),
    ],
)
def test_a_bad_setting_fails_at_construction_naming_it(
    settings_type: type[MqttSettings | PublisherSettings], change: dict[str, object], setting: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_type(**change)  # type: ignore[arg-type]
    assert raised.value.setting == setting


@pytest.mark.parametrize(
    ("change", "setting"),
    [({"qos": 2}, "qos"), ({"max_inflight": 0}, "max-inflight"), ({"resume_timeout_s": 0},
     "resume-timeout-s")],
)  # fmt: skip
def test_a_bad_publisher_setting_names_it(change: dict[str, object], setting: str) -> None:
    with pytest.raises(SettingsError) as raised:
        PublisherSettings(**change)  # type: ignore[arg-type]
    assert raised.value.setting == setting


@pytest.mark.parametrize("settings_type", SETTINGS)
def test_settings_follow_the_composition_roots_conventions(settings_type: Any) -> None:
    """Frozen, slotted, keyword-only; every field has a default, a simple annotation and an
    attribute docstring (the root makes TOML keys, FACILITY_* variables and flags of them)."""
    params = settings_type.__dataclass_params__
    assert params.frozen
    assert "__slots__" in vars(settings_type)
    fields = dataclasses.fields(settings_type)
    assert all(f.kw_only for f in fields)
    assert all(f.default is not dataclasses.MISSING for f in fields)
    body = ast.parse(textwrap.dedent(inspect.getsource(settings_type))).body[0]
    assert isinstance(body, ast.ClassDef)
    documented = {
        node.target.id
        for node, after in zip(body.body, body.body[1:], strict=False)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }
    assert documented == {f.name for f in fields}


def test_the_factory_says_which_path_a_client_took(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mqtt.factory"):
        client = make_client(MqttSettings(client_id="gw-1", packet_path="plain"))
        auto = make_client(MqttSettings(client_id="gw-2"))
    assert (client.path, auto.path) == ("plain", "fast")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "MQTT client gw-1 takes the plain packet path: packet-path is plain",
        "MQTT client gw-2 takes the fast packet path: paho-mqtt 2.2.0, the release the fast "
        "path was written for",
    ]


@pytest.mark.parametrize("packet_path", ["fast", "plain"])
def test_a_publisher_with_no_broker_there_fails_at_once_with_the_cause(
    packet_path: PacketPath,
) -> None:
    publisher = MqttPublisher(PublisherSettings(port=free_port(), packet_path=packet_path))
    with pytest.raises(PublishError, match=r"cannot reach MQTT broker 127\.0\.0\.1") as raised:
        publisher.connect(5)
    assert isinstance(raised.value.__cause__, MqttConnectError)
    assert isinstance(raised.value.__cause__.__cause__, ConnectionRefusedError)
