"""The simulator's publisher on a real Mosquitto, on both packet paths (the fast path's bulk
QoS 1 writes and paho's plain `publish`).

A persistent-session consumer (the gateway's own, on the same path) counts what arrived: every
message, in order, through the in-flight limit, a deliberate disconnect and a broker restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from gateway.mqtt import InboundMessage, MqttConsumer, MqttSettings
from mqtt import MqttProtocol, PacketPath
from simulators.errors import PublishError
from simulators.publisher import MqttPublisher, PublisherSettings
from tests.services import ServiceProcess

pytestmark = pytest.mark.integration

TOPIC = "facility/v1/s1/b1/pump/pump-{}/telemetry"


def messages(count: int, first: int = 0) -> list[tuple[str, bytes]]:
    return [(TOPIC.format(i % 7), b'{"n":%d}' % i) for i in range(first, first + count)]


@pytest.fixture(params=["fast", "plain"])
def packet_path(request: pytest.FixtureRequest) -> PacketPath:
    path: PacketPath = request.param
    return path


@pytest.fixture
def consumer(mosquitto: ServiceProcess, packet_path: PacketPath) -> Iterator[MqttConsumer]:
    settings = MqttSettings(
        port=mosquitto.port, client_id="publisher-test-consumer", packet_path=packet_path
    )
    consumer = MqttConsumer(settings, "facility/v1/#")
    consumer.start()
    consumer.wait_connected(30)
    yield consumer
    consumer.stop()


def received(consumer: MqttConsumer, count: int, timeout_s: float = 60) -> list[InboundMessage]:
    """What arrives until `count` distinct payloads have, acked as taken. The distinct ones
    are counted as they come: counting them all again each take (tens of thousands, with the
    redeliveries after a restart) slowed the acks, and with them the stream, to a drip."""
    got: list[InboundMessage] = []
    distinct: set[bytes] = set()
    deadline = time.monotonic() + timeout_s
    while len(distinct) < count and time.monotonic() < deadline:
        taken = consumer.take(5000, 0.2)
        consumer.ack(taken)
        got.extend(taken)
        distinct.update(m.payload for m in taken)
    return got


def first_seen(got: list[InboundMessage]) -> list[bytes]:
    """Payloads in order of first arrival: QoS 1 may repeat a message, never reorder."""
    seen: dict[bytes, None] = {}
    for message in got:
        seen.setdefault(message.payload, None)
    return list(seen)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_every_message_arrives_once_in_order_within_the_inflight_limit(
    mosquitto: ServiceProcess,
    consumer: MqttConsumer,
    protocol: MqttProtocol,
    packet_path: PacketPath,
) -> None:
    publisher = MqttPublisher(
        PublisherSettings(
            port=mosquitto.port, protocol=protocol, max_inflight=300, packet_path=packet_path
        )
    )
    assert publisher.path == packet_path
    publisher.connect()
    sent = messages(20_000)
    try:
        for first in range(0, len(sent), 1000):
            publisher.publish_many(sent[first : first + 1000])
        publisher.flush(60)
    finally:
        publisher.close()

    got = received(consumer, len(sent))
    assert [m.payload for m in got] == [payload for _, payload in sent]
    assert [m.topic for m in got] == [topic for topic, _ in sent]
    assert publisher.published == len(sent)


def test_messages_published_while_suspended_are_sent_on_resume(
    mosquitto: ServiceProcess, consumer: MqttConsumer, packet_path: PacketPath
) -> None:
    settings = PublisherSettings(
        port=mosquitto.port, max_inflight=100, resume_timeout_s=1, packet_path=packet_path
    )
    publisher = MqttPublisher(settings)
    publisher.connect()
    try:
        publisher.publish_many(messages(500))
        publisher.flush(60)
        publisher.suspend()
        publisher.publish_many(messages(100, first=500))  # kept: as many as may be in flight
        with pytest.raises(PublishError, match="unacknowledged"):
            publisher.publish_many(messages(1, first=600))  # no room until the broker is back
        publisher.resume()
        publisher.publish_many(messages(500, first=600))
        publisher.flush(60)
    finally:
        publisher.close()

    got = received(consumer, 1100)
    assert first_seen(got) == [payload for _, payload in messages(1100)]


def test_a_broker_restart_loses_nothing_the_publisher_was_not_told_was_stored(
    mosquitto: ServiceProcess, consumer: MqttConsumer, packet_path: PacketPath
) -> None:
    """Messages in flight when the broker stops are resent (marked DUP) when it is back."""
    publisher = MqttPublisher(
        PublisherSettings(
            port=mosquitto.port, max_inflight=2000, reconnect_max_s=2, packet_path=packet_path
        )
    )
    publisher.connect()
    sent = messages(40_000)

    def publish_all() -> None:
        for first in range(0, len(sent), 500):
            publisher.publish_many(sent[first : first + 500])

    publishing = threading.Thread(target=publish_all)
    try:
        publishing.start()
        while publisher.published < 10_000:
            time.sleep(0.01)
        mosquitto.restart()  # a clean stop saves the consumer's session and its queue
        publishing.join(120)
        assert not publishing.is_alive()
        publisher.flush(120)
    finally:
        publisher.close()

    got = received(consumer, len(sent), timeout_s=120)
    assert first_seen(got) == [payload for _, payload in sent]
    assert publisher.connects >= 2
