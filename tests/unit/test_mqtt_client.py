"""The consumer's packet paths (mqtt/fast.py and paho's plain one) through `MqttConsumer`,
against a scripted broker on a loopback socket.

The scripted broker answers CONNECT and SUBSCRIBE, then writes exactly the bytes a test gives
it, cut where the test says: packets split across reads, runs longer than one read chunk, MQTT
5 properties, a truncated packet. It records what the client sends back (the PUBACKs).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from gateway.mqtt import InboundMessage, MqttConsumer, MqttSettings
from mqtt import MqttProtocol, PacketPath
from mqtt.fast import READ_CHUNK
from mqtt.packets import remaining_length

TOPIC = "facility/v1/s1/b1/pump/pump-1/telemetry"


def publish(
    topic: str | bytes, payload: bytes, mid: int, *, v5: bool, properties: bytes = b""
) -> bytes:
    name = topic.encode() if isinstance(topic, str) else topic
    body = len(name).to_bytes(2, "big") + name + mid.to_bytes(2, "big")
    if v5:
        body += remaining_length(len(properties)) + properties
    body += payload
    return bytes([0x32]) + remaining_length(len(body)) + body  # PUBLISH, QoS 1


class ScriptedBroker:
    """Accepts connections one at a time; each gets CONNACK, SUBACK, then its script.

    `before_suback`: what a persistent session's queue sends right after CONNACK, ahead of the
    SUBACK of the client's subscription (as Mosquitto does), which then waits `suback_delay_s`.
    """

    def __init__(
        self,
        scripts: Sequence[Sequence[bytes]],
        *,
        before_suback: bytes = b"",
        suback_delay_s: float = 0.0,
    ) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._scripts = list(scripts)
        self.received: list[bytes] = []
        self.connections = 0
        self._before_suback = before_suback
        self._suback_delay_s = suback_delay_s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read_packet(self, conn: socket.socket) -> tuple[int, bytes]:
        header = conn.recv(1)
        if not header:
            raise ConnectionError
        length, shift = 0, 0
        while True:
            byte = conn.recv(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        return header[0], body

    def _serve(self) -> None:
        for script in self._scripts:
            conn, _ = self._listener.accept()
            self.connections += 1
            with conn:
                _, connect = self._read_packet(conn)
                v5 = connect[6] == 5  # protocol level after the "MQTT" name
                conn.sendall(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
                _, subscribe = self._read_packet(conn)
                if self._before_suback:
                    conn.sendall(self._before_suback)
                    time.sleep(self._suback_delay_s)
                granted = b"\x00\x01" if v5 else b"\x01"  # v5: empty properties, then QoS 1
                conn.sendall(bytes([0x90, 2 + len(granted)]) + subscribe[:2] + granted)
                for piece in script:
                    conn.sendall(piece)
                    time.sleep(0.02)  # the client reads what is there, then waits for more
                conn.settimeout(0.5)
                try:
                    while data := conn.recv(65536):
                        self.received.append(data)
                except OSError:
                    pass
        self._listener.close()

    def pubacks(self) -> list[int]:
        """What the client acked, once it has closed its last connection."""
        self._thread.join(10)
        assert not self._thread.is_alive(), "the client did not close its connection"
        data = b"".join(self.received)
        acks = []
        while data:
            if data[0] == 0x40:
                acks.append(int.from_bytes(data[2:4], "big"))
                data = data[4:]
            else:
                data = data[2 + data[1] :]  # PINGREQ / DISCONNECT
        return acks


@pytest.fixture(params=["fast", "plain"])
def packet_path(request: pytest.FixtureRequest) -> PacketPath:
    """Every test here runs on both packet paths."""
    path: PacketPath = request.param
    return path


@pytest.fixture
def consumers() -> Iterator[list[MqttConsumer]]:
    started: list[MqttConsumer] = []
    yield started
    for consumer in started:
        consumer.stop()


def started(
    consumers: list[MqttConsumer],
    broker: ScriptedBroker,
    packet_path: PacketPath,
    protocol: MqttProtocol = "5",
) -> MqttConsumer:
    """A consumer of everything the scripted broker sends, started (and stopped by the
    `consumers` fixture)."""
    settings = MqttSettings(
        port=broker.port, protocol=protocol, reconnect_min_s=1, packet_path=packet_path
    )
    consumer = MqttConsumer(settings, "facility/v1/#")
    consumers.append(consumer)
    consumer.start()
    return consumer


def consume(
    consumers: list[MqttConsumer],
    broker: ScriptedBroker,
    protocol: MqttProtocol,
    count: int,
    packet_path: PacketPath,
) -> list[InboundMessage]:
    consumer = started(consumers, broker, packet_path, protocol)
    assert consumer.path == packet_path
    got: list[InboundMessage] = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        taken = consumer.take(count, 0.2)
        consumer.ack(taken)
        got.extend(taken)
    return got


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_packets_cut_anywhere_arrive_whole_in_order_and_are_acked_in_order(
    consumers: list[MqttConsumer], protocol: MqttProtocol, packet_path: PacketPath
) -> None:
    v5 = protocol == "5"
    small = [publish(TOPIC, b'{"n":%d}' % i, i + 1, v5=v5) for i in range(3000)]
    big = publish(TOPIC, bytes(range(256)) * (READ_CHUNK // 256 * 3 + 7), 3001, v5=v5)
    split = publish(TOPIC, b'{"n":"split"}', 3002, v5=v5)
    pingresp = b"\xd0\x00"  # a packet that is not a PUBLISH, in the middle of a run
    run = b"".join(small[:1500]) + pingresp + b"".join(small[1500:])
    script = [run[:1000], run[1000:], big[:3], big[3:], split[:1], split[1:2], split[2:]]
    broker = ScriptedBroker([script])

    got = consume(consumers, broker, protocol, 3002, packet_path)

    assert [m.mid for m in got] == list(range(1, 3003))
    assert {m.topic for m in got} == {TOPIC}
    assert [m.payload for m in got[:3]] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert got[3000].payload == bytes(range(256)) * (READ_CHUNK // 256 * 3 + 7)
    assert got[3001].payload == b'{"n":"split"}'
    consumers[0].stop()
    assert broker.pubacks() == list(range(1, 3003))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_session_s_messages_that_come_before_the_suback_are_acked(
    consumers: list[MqttConsumer], protocol: MqttProtocol, packet_path: PacketPath
) -> None:
    """A persistent session's queue comes right after CONNACK, ahead of the SUBACK of the
    consumer's subscription; the consumer takes those messages at once, and their acks must
    reach the broker (dropped, they held the broker's in-flight window full: once it had sent
    its limit of messages, the stream stopped for good)."""
    v5 = protocol == "5"
    backlog = b"".join(publish(TOPIC, b'{"n":%d}' % i, i + 1, v5=v5) for i in range(50))
    broker = ScriptedBroker([[]], before_suback=backlog, suback_delay_s=1.0)

    got = consume(consumers, broker, protocol, 50, packet_path)

    assert [m.mid for m in got] == list(range(1, 51))
    consumers[0].stop()
    assert broker.pubacks() == list(range(1, 51))


def test_takes_smaller_than_a_run_keep_its_order_and_their_limits(
    consumers: list[MqttConsumer], packet_path: PacketPath
) -> None:
    """500 messages in one read (the fast path cuts them as one run), taken 7 at a time and
    about 20 bytes at a time: each take within its limits (the last message may reach the byte
    cap), all in order, all acked in order."""
    script = [b"".join(publish(TOPIC, b'{"n":%d}' % i, i + 1, v5=True) for i in range(500))]
    broker = ScriptedBroker([script])
    consumer = started(consumers, broker, packet_path)
    got: list[InboundMessage] = []
    deadline = time.monotonic() + 20
    while len(got) < 500 and time.monotonic() < deadline:
        taken = consumer.take(7, 0.2, max_bytes=20)
        assert len(taken) <= 7
        assert sum(len(m.payload) for m in taken[:-1]) < 20
        consumer.ack(taken)
        got.extend(taken)
    assert [m.mid for m in got] == list(range(1, 501))
    assert got[499].payload == b'{"n":499}'
    consumer.stop()
    assert broker.pubacks() == list(range(1, 501))


def test_what_was_received_and_not_taken_is_counted_when_dropped(
    consumers: list[MqttConsumer], packet_path: PacketPath
) -> None:
    """A term that ends leaves what the consumer holds to the broker: every message received
    and not taken, counted once."""
    script = [b"".join(publish(TOPIC, b'{"n":%d}' % i, i + 1, v5=True) for i in range(300))]
    consumer = started(consumers, ScriptedBroker([script]), packet_path)
    assert [m.mid for m in consumer.take(1, 20)] == [1]
    dropped = 0
    deadline = time.monotonic() + 20
    while dropped < 299 and time.monotonic() < deadline:
        dropped += consumer.drop_pending()
        time.sleep(0.02)
    assert dropped == 299
    assert consumer.take(10, 0.1) == []


def test_mqtt5_properties_are_skipped_not_read_as_payload(
    consumers: list[MqttConsumer], packet_path: PacketPath
) -> None:
    user_property = b"\x26" + b"\x00\x03src" + b"\x00\x03sim"
    expiry = b"\x02" + (3600).to_bytes(4, "big")
    packets = [
        publish(TOPIC, b'{"a":1}', 7, v5=True, properties=user_property + expiry),
        publish(TOPIC, b"", 8, v5=True, properties=expiry),
    ]
    broker = ScriptedBroker([[b"".join(packets)]])

    got = consume(consumers, broker, "5", 2, packet_path)

    assert [(m.mid, m.payload) for m in got] == [(7, b'{"a":1}'), (8, b"")]


def test_a_topic_that_is_not_utf8_arrives_marked_for_the_decoder_to_reject(
    consumers: list[MqttConsumer], packet_path: PacketPath
) -> None:
    broker = ScriptedBroker([[publish(b"facility/v1/\xff/x", b"{}", 1, v5=False)]])

    (message,) = consume(consumers, broker, "3.1.1", 1, packet_path)

    assert "\ufffd" in message.topic  # the fast path keeps the rest: "facility/v1/\ufffd/x"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_truncated_publish_drops_the_connection_and_the_consumer_reconnects(
    consumers: list[MqttConsumer], protocol: MqttProtocol, packet_path: PacketPath
) -> None:
    v5 = protocol == "5"
    good = publish(TOPIC, b'{"n":1}', 1, v5=v5)
    name = TOPIC.encode()
    lying = bytes([0x32, 6]) + (len(name) + 50).to_bytes(2, "big") + name[:4]  # topic too long
    after = publish(TOPIC, b'{"n":2}', 2, v5=v5)
    broker = ScriptedBroker([[good + lying], [after]])

    got = consume(consumers, broker, protocol, 2, packet_path)

    assert [m.payload for m in got] == [b'{"n":1}', b'{"n":2}']
    assert broker.connections == 2
    assert consumers[0].connects == 2
