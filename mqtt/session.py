"""Forgetting a retired client id's persistent session at the broker.

A gateway's fixed client id keeps a persistent session: while it is away the broker queues
every message of its subscription for it, up to the session expiry (a day by default). When
a gateway is retired or renamed, that queue grows with nobody to read it. `forget_session`
connects once with the old id and ends its session: MQTT 5 resumes it (clean start off, to
learn whether there was one) with a session expiry of 0, so the broker deletes it, queue and
subscriptions, when the connection closes; MQTT 3.1.1 looks with clean session off, then
connects again with clean session on, which discards it.

Connecting with an id takes it over: a client still connected with it is disconnected by the
broker (and, if it reconnects, makes a new session). Use it only for ids no process runs.
Written on paho's public API: it is a one-shot admin connection, not a consumer.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from facility.errors import SettingsError
from mqtt.errors import MqttConnectError, MqttTimeoutError, check_rc, paho_errors
from mqtt.interface import ClientOptions, MqttProtocol

MAX_CLIENT_ID_BYTES = 65_535
QUIET_S = 0.3
"""How long the broker may go without sending more of the old queue before we disconnect."""


@dataclass(frozen=True, slots=True)
class ForgottenSession:
    client_id: str
    broker: str
    present: bool
    """The broker held a session for the id (CONNACK session present)."""
    queued_seen: int
    """Queued messages the broker began to send on resuming it: a lower bound of the queue
    (a broker sends at most its inflight limit before acks, and these were never acked)."""

    def describe(self) -> str:
        if not self.present:
            return f"no session for client id {self.client_id!r} on {self.broker}: nothing removed"
        return (
            f"removed the session of client id {self.client_id!r} on {self.broker} "
            f"(at least {self.queued_seen} queued message(s) were waiting in it)"
        )


def check_client_id(client_id: str) -> None:
    """What MQTT allows: 1 to 65,535 bytes of UTF-8, no control characters."""
    if not client_id:
        raise SettingsError("mqtt-client-id", "must not be empty")
    if len(client_id.encode("utf-8", "surrogatepass")) > MAX_CLIENT_ID_BYTES:
        raise SettingsError("mqtt-client-id", f"must be at most {MAX_CLIENT_ID_BYTES} bytes")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in client_id):
        raise SettingsError("mqtt-client-id", "must not contain control characters")


class _Connection:
    """One connection and what the broker answered on it."""

    def __init__(self, options: ClientOptions, client_id: str, protocol: MqttProtocol,
                 *, clean: bool) -> None:  # fmt: skip
        self.where = f"MQTT broker {options.host}:{options.port}"
        self.v5 = protocol == "5"
        self._done = threading.Condition()
        self.reason: str | None = None
        self.refused = False
        self.present = False
        self.received = 0
        with paho_errors(f"cannot reach {self.where}"):
            self.client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=None if self.v5 else clean,
                protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
                manual_ack=True,  # nothing of the old queue is acked
            )
            if options.username is not None:
                self.client.username_pw_set(options.username, options.password)
            if options.tls:
                self.client.tls_set(
                    ca_certs=options.ca_file,
                    certfile=options.cert_file,
                    keyfile=options.key_file,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self._options = options
        self._clean = clean

    def _on_connect(self, _c: paho.Client, _u: object, flags: paho.ConnectFlags,
                    reason: ReasonCode, _p: object) -> None:  # fmt: skip
        with self._done:
            self.reason = str(reason)
            self.refused = reason.is_failure
            self.present = bool(flags.session_present)
            self._done.notify_all()

    def _on_message(self, _c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        with self._done:
            self.received += 1
            self._done.notify_all()

    def _on_disconnect(self, _c: paho.Client, _u: object, _f: object, reason: object,
                       _p: object) -> None:  # fmt: skip
        with self._done:
            if self.reason is None:
                self.reason = f"closed by the broker: {reason}"
                self.refused = True
            self._done.notify_all()

    def open(self, timeout_s: float) -> None:
        o = self._options
        properties = None
        if self.v5:  # the session ends with this connection
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0
        with paho_errors(f"cannot reach {self.where}"):
            rc = self.client.connect(
                o.host, o.port, o.keepalive_s,
                clean_start=self._clean if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )  # fmt: skip
        check_rc(rc, f"cannot reach {self.where}")
        self.client.loop_start()
        with self._done:
            answered = self._done.wait_for(lambda: self.reason is not None, timeout_s)
        if not answered:
            self.close()
            raise MqttTimeoutError(f"{self.where} did not answer within {timeout_s:g} s")
        if self.refused:
            self.close()
            raise MqttConnectError(f"{self.where} refused the connection: {self.reason}")

    def drain(self, timeout_s: float) -> None:
        """Let the broker send what it resumes, until it is quiet (or `timeout_s`)."""
        with self._done:
            seen = -1
            while seen != self.received and timeout_s > 0:
                seen = self.received
                self._done.wait(QUIET_S)
                timeout_s -= QUIET_S

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(
    options: ClientOptions, client_id: str, protocol: MqttProtocol = "5", timeout_s: float = 10.0
) -> ForgottenSession:
    """End the persistent session of `client_id` at the broker `options` name."""
    check_client_id(client_id)
    look = _Connection(options, client_id, protocol, clean=False)
    look.open(timeout_s)
    if look.present:
        look.drain(min(timeout_s, 2.0))
    look.close()
    if protocol != "5" and look.present:  # 3.1.1: a clean session discards the old one
        clean = _Connection(options, client_id, protocol, clean=True)
        clean.open(timeout_s)
        clean.close()
    return ForgottenSession(client_id, look.where, look.present, look.received)
