"""The broker's own figures from `$SYS`, for the gateway's /metrics.

A retired gateway client id keeps a persistent session that queues every message for a day,
and nothing on the gateway's side sees it. Mosquitto 2.0 publishes no per-client queue length
under `$SYS`; what it does publish (retained, every `sys_interval`, default 10 s) and what this
reads is broker-wide: the messages and bytes in its store, the persistent sessions whose client
is away, and the messages it dropped (a queue at its limit). A growing store with the gateway
keeping up, or more disconnected sessions than expected, is the sign of an orphaned session.

A separate connection (clean session, QoS 0), so `$SYS` messages never reach the gateway's
consumer; paho reconnects it in the background. A broker that publishes none of these topics,
or an ACL that denies them, leaves the metrics out.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from facility.prometheus import Metric
from mqtt.errors import paho_errors
from mqtt.interface import ClientOptions

log = logging.getLogger(__name__)

TOPICS: dict[str, tuple[str, Literal["counter", "gauge"], str]] = {
    "$SYS/broker/store/messages/count": (
        "facility_broker_store_messages", "gauge",
        "Messages in the broker's store, for every client and retained ($SYS, broker-wide: "
        "not the gateway's queue alone).",
    ),
    "$SYS/broker/store/messages/bytes": (
        "facility_broker_store_bytes", "gauge",
        "Payload bytes in the broker's store ($SYS, broker-wide).",
    ),
    "$SYS/broker/clients/disconnected": (
        "facility_broker_sessions_disconnected", "gauge",
        "Persistent sessions the broker keeps for clients that are not connected ($SYS, "
        "broker-wide): a retired gateway client id stays here, queueing, until it expires.",
    ),
    "$SYS/broker/publish/messages/dropped": (
        "facility_broker_messages_dropped_total", "counter",
        "Messages the broker dropped, e.g. a session's queue at its limit ($SYS, broker-wide).",
    ),
}  # fmt: skip
"""Mosquitto's `$SYS` topics read, and the metric each becomes."""


class BrokerStats:
    """Keeps the latest value of each `$SYS` topic in TOPICS."""

    def __init__(self, options: ClientOptions, client_id: str) -> None:
        self.options = options
        self.client_id = client_id
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        with paho_errors(f"MQTT client {client_id}"):
            self._client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=None if options.protocol == "5" else True,
                protocol=paho.MQTTv5 if options.protocol == "5" else paho.MQTTv311,
            )
            if options.username is not None:
                self._client.username_pw_set(options.username, options.password)
            if options.tls:
                self._client.tls_set(
                    ca_certs=options.ca_file,
                    certfile=options.cert_file,
                    keyfile=options.key_file,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
        self._client.reconnect_delay_set(
            max(1, round(options.reconnect_min_s)), max(1, round(options.reconnect_max_s))
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def start(self) -> None:
        o = self.options
        with paho_errors(f"MQTT client {self.client_id}"):
            self._client.connect_async(o.host, o.port, o.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, _u: object, _f: object,
                    reason: ReasonCode, _p: object) -> None:  # fmt: skip
        if not reason.is_failure:
            client.subscribe([(topic, 0) for topic in TOPICS])

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        try:
            value = float(message.payload)
        except ValueError:
            return
        with self._lock:
            self._values[message.topic] = value

    def values(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def prometheus(self) -> list[Metric]:
        values = self.values()
        return [
            Metric.single(name, kind, help_text, values[topic])
            for topic, (name, kind, help_text) in TOPICS.items()
            if topic in values
        ]
