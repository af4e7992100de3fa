"""The one place MQTT clients are built, for the gateway and the simulators alike."""

from __future__ import annotations

import functools
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from typing import Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from facility.errors import SettingsError
from mqtt import guard
from mqtt.client import MqttClient
from mqtt.errors import paho_errors
from mqtt.fast import FastClient
from mqtt.interface import (
    ClientOptions,
    PacketPath,
    PathClient,
    PathName,
    PublishSink,
    ignore,
)
from mqtt.plain import PlainClient

log = logging.getLogger(__name__)

PATHS: Final[dict[PathName, type[PathClient]]] = {"fast": FastClient, "plain": PlainClient}


@functools.cache
def fast_path_refusal() -> str | None:
    """The guard's verdict on the installed paho, once per process."""
    return guard.refusal()


def choose_path(requested: PacketPath, refusal: str | None) -> tuple[PathName, str]:
    """The packet path to take and why. "fast" on a paho the guard refuses is a settings
    error: running it there could misread packets."""
    if requested == "plain":
        return "plain", "packet-path is plain"
    if refusal is None:
        return "fast", f"paho-mqtt {guard.PAHO_VERSION}, the release the fast path was written for"
    if requested == "fast":
        raise SettingsError("packet-path", f"fast is not possible here: {refusal}")
    return "plain", refusal


def make_client(
    options: ClientOptions,
    *,
    deliver: PublishSink | None = None,
    subscriptions: Sequence[str] = (),
    session_expiry_s: int | None = None,
    on_connected: Callable[[], None] | None = None,
    may_reconnect: Callable[[], bool] | None = None,
    rng: random.Random | None = None,
) -> MqttClient:
    """A client on the packet path the options ask for (chosen and logged here).

    A client given `deliver` is a consumer: it gets every PUBLISH there, on paho's thread, and
    acks QoS 1 only through `ack_many` (paho's `manual_ack`). `session_expiry_s` asks for a
    persistent session (clean start off; MQTT 5: kept that long after a disconnect).
    `may_reconnect`, asked before each reconnection, keeps the client away while it says no
    (a gateway that lost its shard's lock must not take the session back).
    """
    path, why = choose_path(options.packet_path, fast_path_refusal())
    message = "MQTT client %s takes the %s packet path: %s"
    if path == "plain" and options.packet_path == "auto":
        log.warning(message, options.client_id, path, why)
    else:
        log.info(message, options.client_id, path, why)
    v5 = options.protocol == "5"
    with paho_errors(f"MQTT client {options.client_id}"):
        client = PATHS[path](
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=None if v5 else session_expiry_s is None,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=deliver is not None,
            deliver=ignore if deliver is None else deliver,
        )
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.tls:
            client.tls_set(
                ca_certs=options.ca_file,
                certfile=options.cert_file,
                keyfile=options.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
    return MqttClient(
        client,
        options,
        subscriptions=subscriptions,
        session_expiry_s=session_expiry_s,
        on_connected=on_connected,
        may_reconnect=may_reconnect,
        rng=rng,
    )
