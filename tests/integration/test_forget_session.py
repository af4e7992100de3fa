"""Retiring a gateway client id (issue "Outages end fast", 6), on a real Mosquitto.

A persistent session with messages queued for it is removed by `facility mqtt forget-session`:
the id connecting again with clean start off finds no session and receives nothing, while a
second retired id that was not forgotten (the control) still has its session and its queue.
The gateway's /metrics shows the broker-wide `$SYS` figures, among them the persistent
sessions with nobody connected, which drop by the one forgotten.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import DEMO_SITE
from tests.integration.gateway_process import GatewayProcess
from tests.integration.helpers import ROOT, facility_argv, wait_for
from tests.integration.mqtt_probe import Client
from tests.services import ServiceProcess, free_port, start_mosquitto

pytestmark = pytest.mark.integration

TOPIC = "facility/v1/shangri-la/b01/pump/pump-1/telemetry"
QUEUED = 50


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServiceProcess]:
    """Mosquitto as the other tests run it, publishing $SYS every second instead of 10."""
    service = start_mosquitto(tmp_path / "mosquitto", extra="sys_interval 1")
    try:
        yield service
    finally:
        service.stop()


class Session:
    """A client id connecting with clean start off (a persistent session, one hour)."""

    def __init__(self, port: int, client_id: str, protocol: str = "5") -> None:
        self.v5 = protocol == "5"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if self.v5 else False,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
        )
        self.present: bool | None = None
        self.received: list[bytes] = []
        self._lock = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._set("subscribed")
        self.subscribed = False
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
        self.client.connect(
            "127.0.0.1", port, 30,
            clean_start=False if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )  # fmt: skip
        self.client.loop_start()
        with self._lock:
            assert self._lock.wait_for(lambda: self.present is not None, 10), "no CONNACK"

    def _set(self, name: str) -> None:
        with self._lock:
            setattr(self, name, True)
            self._lock.notify_all()

    def _on_connect(self, _c: object, _u: object, flags: paho.ConnectFlags, *_: object) -> None:
        with self._lock:
            self.present = bool(flags.session_present)
            self._lock.notify_all()

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append(bytes(message.payload))
            self._lock.notify_all()

    def subscribe(self) -> None:
        self.client.subscribe("facility/v1/#", qos=1)
        with self._lock:
            assert self._lock.wait_for(lambda: self.subscribed, 10), "no SUBACK"

    def wait_received(self, count: int, timeout_s: float = 5) -> int:
        with self._lock:
            self._lock.wait_for(lambda: len(self.received) >= count, timeout_s)
            return len(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retire(port: int, client_id: str, protocol: str = "5") -> None:
    """A gateway that subscribed with a persistent session and went away for good."""
    session = Session(port, client_id, protocol)
    session.subscribe()
    session.close()


def publish(port: int, count: int) -> None:
    device = Client(port)
    assert device.connect() == "accepted"
    try:
        for i in range(count):
            assert not device.publish(TOPIC, b'{"n": %d}' % i).is_failure
    finally:
        device.close()


def forget(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        facility_argv("mqtt", "forget-session", *args),
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_forget_session_removes_a_retired_ids_session_and_queue(
    broker: ServiceProcess, protocol: str
) -> None:
    port = str(broker.port)
    retire(broker.port, "retired-a", protocol)
    retire(broker.port, "retired-b", protocol)  # the control: not forgotten
    publish(broker.port, QUEUED)

    done = forget("--mqtt-port", port, "--mqtt-client-id", "retired-a", "--mqtt-protocol", protocol)
    assert done.returncode == 0, done.stderr
    assert "removed the session of client id 'retired-a'" in done.stdout
    again = forget("--mqtt-port", port, "--mqtt-client-id", "retired-a")
    assert again.returncode == 0, again.stderr
    assert "no session for client id 'retired-a'" in again.stdout

    forgotten = Session(broker.port, "retired-a", protocol)
    control = Session(broker.port, "retired-b", protocol)
    try:
        assert control.present is True
        assert control.wait_received(QUEUED) == QUEUED  # its queue is still there
        assert forgotten.present is False
        time.sleep(1)  # anything of an old queue would have come with the control's
        assert forgotten.received == []
    finally:
        forgotten.close()
        control.close()


def test_bad_input_is_one_clear_error_line(broker: ServiceProcess) -> None:
    closed = free_port()
    cases = [
        ("--mqtt-host", "no-such-broker.invalid", "--mqtt-client-id", "x"),
        ("--mqtt-port", str(closed), "--mqtt-client-id", "x"),
        ("--mqtt-port", str(broker.port), "--mqtt-client-id", ""),
        ("--mqtt-port", str(broker.port), "--mqtt-client-id", "bad\x01id"),
    ]
    errors: list[str] = []
    for args in cases:
        done = forget(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith("facility: error: "), (args, lines)
        errors.append(lines[0])
    assert "mqtt-client-id" in errors[2]
    assert f"127.0.0.1:{closed}" in errors[1]


def test_the_gateway_serves_the_brokers_sys_figures(tmp_path: Path, broker: ServiceProcess) -> None:
    retire(broker.port, "retired-gateway")
    publish(broker.port, QUEUED)
    gateway = GatewayProcess(
        tmp_path, DEMO_SITE, broker.port, 0, "",
        store_args=("--store", "sqlite", "--sqlite-path", str(tmp_path / "telemetry.sqlite3")),
    )  # fmt: skip
    try:
        metrics = wait_for(
            gateway.metrics, lambda m: m.get("facility_broker_sessions_disconnected") == 1,
            timeout_s=30, what="the retired session in the broker's $SYS figures",
        )  # fmt: skip
        assert metrics["facility_broker_store_messages"] >= QUEUED
        assert metrics["facility_broker_store_bytes"] > 0
        assert "facility_broker_messages_dropped_total" in metrics
        done = forget("--mqtt-port", str(broker.port), "--mqtt-client-id", "retired-gateway")
        assert done.returncode == 0, done.stderr
        wait_for(
            gateway.metrics, lambda m: m.get("facility_broker_sessions_disconnected") == 0,
            timeout_s=30, what="the forgotten session to leave the broker's figures",
        )  # fmt: skip
    finally:
        gateway.stop()
