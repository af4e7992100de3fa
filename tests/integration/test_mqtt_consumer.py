"""At-least-once through the gateway's consumer on a real Mosquitto, on both packet paths.

QoS 1, a fixed client id and a persistent session: a message the gateway took but did not
ack (its batch was not durable) comes back on the next connection; one it acked does not;
a broker restart loses nothing. The same tests run on the fast path and on paho's plain one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from facility.batch import Batch
from facility.clock import now_ms
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import InboundMessage, MqttConsumer, MqttSettings
from gateway.pipeline import Gateway, PipelineSettings
from mqtt import MqttProtocol, PacketPath
from tests.integration.helpers import wait_for
from tests.integration.load import Publisher, stream, synthetic_site
from tests.services import ServiceProcess

pytestmark = pytest.mark.integration

TOPIC = "facility/v1/s1/b1/pump/pump-{}/telemetry"
FILTER = "facility/v1/#"


@pytest.fixture(params=["fast", "plain"])
def packet_path(request: pytest.FixtureRequest) -> PacketPath:
    path: PacketPath = request.param
    return path


class Consumers:
    """Consumers a test started (one session: the same client id), stopped at the end."""

    def __init__(self, port: int, packet_path: PacketPath, protocol: MqttProtocol) -> None:
        self.settings = MqttSettings(
            port=port,
            client_id="at-least-once",
            protocol=protocol,
            packet_path=packet_path,
            reconnect_max_s=2,
        )
        self.started: list[MqttConsumer] = []

    def start(self) -> MqttConsumer:
        consumer = MqttConsumer(self.settings, FILTER)
        self.started.append(consumer)
        consumer.start()
        consumer.wait_connected(30)
        assert consumer.path == self.settings.packet_path
        return consumer

    def stop_all(self) -> None:
        for consumer in self.started:
            consumer.stop()


@pytest.fixture(params=["5", "3.1.1"])
def consumers(
    request: pytest.FixtureRequest, mosquitto: ServiceProcess, packet_path: PacketPath
) -> Iterator[Consumers]:
    started = Consumers(mosquitto.port, packet_path, request.param)
    try:
        yield started
    finally:
        started.stop_all()


def publish(port: int, count: int, first: int = 0) -> list[bytes]:
    payloads = [b'{"n":%d}' % i for i in range(first, first + count)]
    publisher = Publisher(port, client_id=f"publisher-{first}")
    try:
        publisher.publish_all([(TOPIC.format(i % 5), p) for i, p in enumerate(payloads)])
    finally:
        publisher.close()
    return payloads


def take(consumer: MqttConsumer, expected: list[bytes], *, ack: bool) -> list[InboundMessage]:
    """Take until every expected payload arrived (QoS 1 may repeat a message, never drop one)."""
    got: list[InboundMessage] = []
    missing = set(expected)

    def more() -> int:
        taken = consumer.take(1000, 0.2)
        if ack:
            consumer.ack(taken)
        got.extend(taken)
        missing.difference_update(m.payload for m in taken)
        return len(missing)

    wait_for(more, lambda n: n == 0, timeout_s=60, what=f"{len(expected)} messages")
    return got


def first_seen(got: list[InboundMessage]) -> list[bytes]:
    return list(dict.fromkeys(m.payload for m in got))


def test_messages_taken_but_not_acked_come_back_on_the_next_connection(
    consumers: Consumers, mosquitto: ServiceProcess
) -> None:
    consumer = consumers.start()  # the session exists from here on
    sent = publish(mosquitto.port, 500)
    assert first_seen(take(consumer, sent, ack=False)) == sent
    consumer.stop()  # as if the gateway died before the batch was durable

    again = consumers.start()
    assert first_seen(take(again, sent, ack=True)) == sent


def test_acked_messages_do_not_come_back_and_the_rest_do(
    consumers: Consumers, mosquitto: ServiceProcess
) -> None:
    consumer = consumers.start()
    sent = publish(mosquitto.port, 400)
    got = take(consumer, sent, ack=False)
    consumer.ack(got[:200])  # the first half became durable
    consumer.stop()

    again = consumers.start()
    redelivered = take(again, sent[200:], ack=True)
    assert first_seen(redelivered) == sent[200:]
    assert not again.take(1000, 1.0)  # nothing else is pending for the session


def test_a_broker_restart_loses_nothing(consumers: Consumers, mosquitto: ServiceProcess) -> None:
    consumer = consumers.start()
    sent = publish(mosquitto.port, 300)
    got = take(consumer, sent, ack=True)
    mosquitto.restart()  # a clean stop saves the session and its queue
    wait_for(lambda: consumer.connects, lambda n: n >= 2, timeout_s=60, what="a reconnect")
    after = publish(mosquitto.port, 300, first=300)
    got += take(consumer, after, ack=True)
    assert first_seen(got) == sent + after


class FlakyStore:
    """The durable sink: refuses every batch until `up` is set, then keeps them."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.tried = threading.Event()
        self.kept: list[Batch] = []

    def handle(self, batch: Batch) -> None:
        self.tried.set()
        if not self.up.is_set():
            raise ConnectionError("store down")
        self.kept.append(batch)


def run_gateway(
    consumer: MqttConsumer, store: FlakyStore
) -> tuple[threading.Event, threading.Thread]:
    site = synthetic_site(5)
    gateway = Gateway(
        Decoder(site),
        [],
        MemoryDeadLetters(),
        durable=store,
        settings=PipelineSettings(retry_min_s=0.05, retry_max_s=0.2, flush_interval_s=0.05),
    )
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(consumer, stop), daemon=True)
    thread.start()
    return stop, thread


def test_the_gateway_acks_nothing_before_the_batch_is_durable(
    consumers: Consumers, mosquitto: ServiceProcess
) -> None:
    data = stream(synthetic_site(5), 20, 5, now_ms() - 120_000)
    consumer = consumers.start()
    down = FlakyStore()
    stop, thread = run_gateway(consumer, down)
    publisher = Publisher(mosquitto.port)
    try:
        publisher.publish_all(data.messages)
    finally:
        publisher.close()
    assert down.tried.wait(60)
    stop.set()  # the gateway goes away while the store is still down
    thread.join(30)
    assert not thread.is_alive(), "the gateway did not stop while its store was down"
    consumer.stop()
    assert not down.kept

    up = FlakyStore()
    up.up.set()
    stop, thread = run_gateway(consumers.start(), up)
    try:
        wait_for(lambda: sum(len(b) for b in up.kept), lambda n: n >= data.readings,
                 timeout_s=60, what=f"{data.readings} readings stored")  # fmt: skip
    finally:
        stop.set()
        thread.join(30)
    assert sum(len(b) for b in up.kept) == data.readings


def test_a_consumer_whose_session_is_taken_over_stays_away_when_it_may_not_reconnect(
    mosquitto: ServiceProcess, packet_path: PacketPath
) -> None:
    """A stale shard leader: the new leader connects with the same client id, the broker
    disconnects the old one, and the old one's gate (its lost lock) keeps it from taking the
    session back: no reconnect fight, and the new one keeps the stream."""
    settings = MqttSettings(
        port=mosquitto.port,
        client_id="shard-takeover",
        packet_path=packet_path,
        reconnect_min_s=0.1,
        reconnect_max_s=0.2,
    )
    allowed = threading.Event()  # the old leader's lock: gone
    stale = MqttConsumer(settings, FILTER, may_reconnect=allowed.is_set)
    fresh = MqttConsumer(settings, FILTER)
    try:
        stale.start()
        stale.wait_connected(30)
        fresh.start()
        fresh.wait_connected(30)
        wait_for(lambda: stale.connected, lambda c: c is False, timeout_s=30,
                 what="the broker to disconnect the stale consumer")  # fmt: skip
        wait_for(lambda: stale.refused_reconnects, lambda n: n == 1, timeout_s=30,
                 what="the stale consumer to be refused its reconnection")  # fmt: skip
        sent = publish(mosquitto.port, 200)
        take(fresh, sent, ack=True)
        assert fresh.connected
        assert fresh.connects == 1  # never taken over back
        assert not stale.connected
        assert stale.take(10, 0.1) == []
    finally:
        stale.stop()
        fresh.stop()
