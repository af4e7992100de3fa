"""One MQTT client for the gateway or a simulator: a packet path kept connected.

paho's network thread (`loop_start`) runs the connection and reconnects by itself; its own
delay is set to zero and the one reconnect policy (reconnect.py) waits in `on_pre_connect`
instead, before every attempt but the first, so a lost broker is retried with exponential
backoff and jitter whatever paho release runs. Subscriptions are made again on every connect.
Each successful connection gets a new `generation`: acks name the generation their messages
came on and are dropped on any other (their packet ids mean nothing there; the broker
redelivers those messages from the persistent session).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt.errors import MqttConnectError, MqttTimeoutError, check_rc, paho_errors
from mqtt.interface import ClientOptions, PathClient, PathName
from mqtt.reconnect import ReconnectPolicy

log = logging.getLogger(__name__)


class _StoppingError(ConnectionAbortedError):
    """Raised in `on_pre_connect` to end paho's reconnecting when the client stops (paho's
    loop lets OSError through to its own handling)."""


ACK_BARRIER_TOPIC = "facility/ack-barrier"
"""Never subscribed: unsubscribing from it is a round trip that changes nothing."""


class MqttClient:
    """A packet path's paho client, its connection kept by paho's thread and our policy."""

    def __init__(
        self,
        client: PathClient,
        options: ClientOptions,
        *,
        subscriptions: Sequence[str] = (),
        session_expiry_s: int | None = None,
        on_connected: Callable[[], None] | None = None,
        may_reconnect: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self.subscriptions = tuple(subscriptions)
        self.policy = ReconnectPolicy(options.reconnect_min_s, options.reconnect_max_s)
        self._paho = client
        self._session_expiry_s = session_expiry_s
        self._on_connected = on_connected
        self._may_reconnect = may_reconnect
        self.refused_reconnects = 0
        """Reconnections `may_reconnect` refused: the client stayed away until stopped."""
        self._rng = rng or random.Random()
        self._state = threading.Condition()
        self._failures = 0
        """Attempts since the last good connection: the next wait grows with it."""
        self._attempted = False
        self._stopping = False
        self._paused = False
        self._connected = threading.Event()
        """Connected and subscribed (the broker confirmed every SUBSCRIBE)."""
        self._linked = threading.Event()
        """Connected (CONNACK taken), subscribed or not: messages received can be acked."""
        self._disconnected = threading.Event()
        self._unconfirmed: set[int] = set()
        """Packet ids of this connection's SUBSCRIBEs the broker has not confirmed yet."""
        self._refusal = ""
        self.generation = 0
        """Successful connections so far (the consumer's `connects`)."""
        client.reconnect_delay_set(0, 0)  # the policy waits in _before_connect
        client.on_pre_connect = self._before_connect
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_subscribe = self._paho_subscribed
        self._barrier_passed = threading.Event()
        client.on_unsubscribe = lambda *_args: self._barrier_passed.set()

    @property
    def path(self) -> PathName:
        return self._paho.name

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def where(self) -> str:
        return f"MQTT broker {self.options.host}:{self.options.port}"

    # -- lifecycle -----------------------------------------------------------------------

    def _reset(self) -> None:
        with self._state:
            self._stopping = self._paused = self._attempted = False
            self._failures = 0

    def _session(self) -> tuple[paho.CleanStartOption, Properties | None]:
        """MQTT 5's clean start and session expiry (3.1.1 sets its clean session flag when
        the client is built)."""
        if self.options.protocol != "5" or self._session_expiry_s is None:
            return paho.MQTT_CLEAN_START_FIRST_ONLY, None
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        return False, props

    def start(self) -> None:
        """Connect in the background, and again whenever the connection is lost."""
        self._reset()
        o = self.options
        clean_start, properties = self._session()
        with paho_errors(f"cannot connect to {self.where}"):
            self._paho.connect_async(
                o.host, o.port, o.keepalive_s, clean_start=clean_start, properties=properties
            )
        self._paho.loop_start()

    def connect(self, timeout_s: float) -> None:
        """Connect now (MqttConnectError at once when the broker cannot be reached, or when it
        did not accept us within `timeout_s`), then stay connected as after `start()`."""
        self._reset()
        o = self.options
        clean_start, properties = self._session()
        with paho_errors(f"cannot reach {self.where}"):
            rc = self._paho.connect(
                o.host, o.port, o.keepalive_s, clean_start=clean_start, properties=properties
            )
        check_rc(rc, f"cannot reach {self.where}")
        self._paho.loop_start()
        if not self._connected.wait(timeout_s):
            refusal = self._refusal
            self.stop()
            raise MqttConnectError(
                f"{self.where} did not accept the connection within {timeout_s:g} s"
                + (f": {refusal}" if refusal else "")
            )

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect and end paho's thread; `start()` or `connect()` may follow.

        paho sends the DISCONNECT after what is queued before it (the last acks), and calls
        back once it is out: waiting for that keeps acks already given from being lost, which
        ending its thread at once could (the broker would send those messages again)."""
        with self._state:
            self._stopping = True
            self._state.notify_all()
        connected = self._linked.is_set()
        if connected:
            self._ack_barrier(timeout_s)
        self._paho.disconnect()
        if connected:
            self._disconnected.wait(timeout_s)
        self._paho.loop_stop()
        self._connected.clear()
        self._linked.clear()

    def _ack_barrier(self, timeout_s: float) -> None:
        """Wait until the broker has read everything sent so far (the last acks): it answers an
        UNSUBSCRIBE only after the packets before it. Without this, a new connection with our
        client id (a restart) can take the session over while our acks still sit unread in the
        broker's socket buffer, and the broker sends those messages again."""
        self._barrier_passed.clear()
        result, _mid = self._paho.unsubscribe(ACK_BARRIER_TOPIC)
        if result == paho.MQTT_ERR_SUCCESS:
            self._barrier_passed.wait(timeout_s)

    def pause(self, timeout_s: float = 10.0) -> None:
        """Drop the connection as a broker or network failure would, and stay away until
        `resume()` (the simulators' broker-disconnect fault)."""
        with self._state:
            self._paused = True
        sock = self._paho.socket()
        if isinstance(sock, socket.socket):  # TLS sockets too; paho's websockets are not used
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
        if self._linked.is_set():
            self._disconnected.wait(timeout_s)  # paho's thread has seen it: nothing more goes out

    def resume(self) -> None:
        with self._state:
            self._paused = False
            self._failures = 0
            self._state.notify_all()

    def _before_connect(self, client: paho.Client, userdata: object) -> None:
        """paho calls this before each connection attempt; the policy's wait happens here."""
        with self._state:
            if self._attempted:
                delay = self.policy.delay_s(self._failures, self._rng)
                self._failures += 1
                if not self._paused:
                    log.info("reconnecting to %s in %.1f s", self.where, delay)
                deadline = time.monotonic() + delay
                while not self._stopping and (self._paused or time.monotonic() < deadline):
                    self._state.wait(None if self._paused else deadline - time.monotonic())
            attempted, self._attempted = self._attempted, True
            if self._stopping:
                raise _StoppingError("the client is stopping")
        if attempted and self._may_reconnect is not None and not self._may_reconnect():
            self.refused_reconnects += 1
            log.warning("MQTT %s stays away from %s: it may not reconnect now",
                        self.options.client_id, self.where)  # fmt: skip
            with self._state:
                while not self._stopping:  # parked until stop(): the owner decides what next
                    self._state.wait()
            raise _StoppingError("the client is stopping")

    # -- paho callbacks (paho's thread) ----------------------------------------------------

    def _paho_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refusal = str(reason_code)
            log.error("%s refused the connection: %s", self.where, reason_code)
            return
        with self._state:
            self._failures = 0
        self.generation += 1
        self._linked.set()
        with self._state:
            self._unconfirmed = set()
            for topic_filter in self.subscriptions:
                _result, mid = client.subscribe(topic_filter, qos=1)
                if mid is not None:
                    self._unconfirmed.add(mid)
        log.info(
            "MQTT %s connected to %s:%s on the %s path (session present: %s)%s",
            self.options.client_id,
            self.options.host,
            self.options.port,
            self.path,
            flags.session_present,
            f", subscribed to {', '.join(self.subscriptions)}" if self.subscriptions else "",
        )
        self._paho.link_up()
        self._disconnected.clear()
        with self._state:
            confirmed = not self._unconfirmed
        if confirmed:
            self._now_connected()

    def _paho_subscribed(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        """Connected counts from the broker's SUBACK: a new session gets no message published
        before its subscription is in place, so waiting for less would lose the first ones."""
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("%s refused the subscription: %s", self.where, ", ".join(refused))
            return
        with self._state:
            self._unconfirmed.discard(mid)
            confirmed = not self._unconfirmed
        if confirmed and not self._connected.is_set():
            self._now_connected()

    def _now_connected(self) -> None:
        self._connected.set()
        if self._on_connected is not None:
            self._on_connected()

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._linked.clear()
        self._connected.clear()
        self._disconnected.set()
        self._barrier_passed.set()  # a stop waiting for the broker to read its acks: it never will
        self._paho.link_down()
        with self._state:
            quiet = self._stopping or self._paused
        if not quiet:
            log.warning("MQTT %s disconnected from %s: %s", self.options.client_id, self.where,
                        reason_code)  # fmt: skip

    # -- messages ------------------------------------------------------------------------

    def ack_many(self, mids: Sequence[int], generation: int, qos: int = 1) -> None:
        """Acknowledge, in this order, messages received on connection `generation`; on any
        other connection they are not acked (the broker sends them again).

        The connection counts from its CONNACK, not from the SUBACK: a persistent session's
        queue arrives ahead of the SUBACK, and its messages' acks must go out (dropped, they
        held the broker's in-flight window full and the stream stopped)."""
        if not mids or generation != self.generation or not self._linked.is_set():
            return
        if qos == 1:
            self._paho.ack_many(mids)
        else:
            for mid in mids:
                self._paho.ack(mid, qos)

    def publish_many(
        self, messages: Sequence[tuple[str, bytes]], qos: int, max_inflight: int, timeout_s: float
    ) -> None:
        try:
            self._paho.publish_many(messages, qos, max_inflight, timeout_s)
        except TimeoutError as exc:
            raise MqttTimeoutError(f"{self.where}: {exc}") from exc

    def wait_acked(self, timeout_s: float) -> bool:
        return self._paho.wait_acked(timeout_s)

    def unacked(self) -> int:
        return self._paho.unacked()

    @property
    def refused(self) -> int:
        return self._paho.refused
