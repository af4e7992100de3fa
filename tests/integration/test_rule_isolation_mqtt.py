"""A rule that raises mid-stream, through a real Mosquitto: every reading is stored and acked.

The gateway is wired in the test as the composition root wires it (MQTT consumer with the
persistent session, the rules with a buggy rule function, a memory store as the durable
stage). The broker itself shows the acks: after the gateway disconnects, a marker is published
and the same session is resumed; anything left unacked would be redelivered ahead of it.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.site import Site
from facility.wire import subscription
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import InboundMessage, MqttConsumer, MqttSettings
from gateway.pipeline import Gateway, PipelineSettings
from ingest.memory import MemoryWriter
from simulators.publisher import MqttPublisher, PublisherSettings
from tests.fakes import PoisonedCondition
from tests.integration.helpers import wait_for
from tests.services import ServiceProcess
from tests.unit.test_rule_isolation import BUGGY, PUMP, STREAM, T0, sink_with_buggy_rule

pytestmark = pytest.mark.integration

CLIENT_ID = "rule-isolation-gateway"


class Acks:
    """The real consumer, with the mids the gateway acked through it counted."""

    def __init__(self, consumer: MqttConsumer) -> None:
        self.consumer = consumer
        self.acked = 0
        self._lock = threading.Lock()

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        return self.consumer.take(max_messages, timeout_s, max_bytes)

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        self.consumer.ack(messages)
        with self._lock:
            self.acked += len(messages)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WorkOrderStore]:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'wo.sqlite3'}"))
    store.migrate()
    yield store
    store.engine.dispose()


def _consumer(port: int) -> MqttConsumer:
    consumer = MqttConsumer(MqttSettings(port=port, client_id=CLIENT_ID), subscription())
    consumer.start()
    consumer.wait_connected(30)
    return consumer


def _publish(port: int, messages: Sequence[tuple[str, bytes]]) -> None:
    publisher = MqttPublisher(PublisherSettings(port=port, client_id="rule-isolation-devices"))
    publisher.connect()
    try:
        publisher.publish_many(messages)
        publisher.flush(30)
    finally:
        publisher.close()


def test_a_rule_raising_mid_stream_stops_neither_storage_nor_acks(
    mosquitto: ServiceProcess, demo_site: Site, store: WorkOrderStore
) -> None:
    sink = sink_with_buggy_rule(
        demo_site, store, PoisonedCondition("motor_temp_c", above=90.0, poison=150.0)
    )
    writer = MemoryWriter()
    gateway = Gateway(
        Decoder(demo_site),
        [sink],
        MemoryDeadLetters(),
        durable=writer,
        settings=PipelineSettings(max_batch_messages=3, flush_interval_s=0.05, retry_max_s=1.0),
        clock_ms=lambda: T0 + 30_000,
    )
    consumer = _consumer(mosquitto.port)
    source = Acks(consumer)
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(source, stop), name="gateway")
    runner.start()
    try:
        # one message at a time, so the batches (and the batch the rule raises on) come in order
        for count, message in enumerate(STREAM, 1):
            _publish(mosquitto.port, [(message.topic, message.payload)])
            wait_for(lambda: writer.readings, functools.partial(operator.le, count),
                     timeout_s=30, what=f"message {count} to be stored")  # fmt: skip
        wait_for(lambda: source.acked, lambda n: n >= len(STREAM), timeout_s=30,
                 what="every message to be acked")  # fmt: skip
    finally:
        stop.set()
        runner.join(30)
        consumer.stop()

    assert writer.readings == len(STREAM)
    assert source.acked == len(STREAM)
    assert [f.rule_id for f in sink.engine.quarantine.failures()] == [BUGGY]
    orders = {o.rule_id: o for o in store.list_work_orders(statuses=("open",))}
    assert {BUGGY, "gate.forced_open", "pump.leak"} <= set(orders)
    assert orders[BUGGY].cleared_ms is None
    assert gateway.metrics.snapshot()["sink_failures"] == 0

    # The broker's view: resume the session after a marker; only the marker may come back.
    marker = b'{"ts": %d, "seq": 99, "running": false}' % (T0 + 40_000)
    _publish(mosquitto.port, [(PUMP, marker)])
    again = _consumer(mosquitto.port)
    try:
        redelivered: list[bytes] = []
        deadline = time.monotonic() + 30
        while marker not in redelivered and time.monotonic() < deadline:
            taken = again.take(100, 0.5)
            again.ack(taken)
            redelivered += [m.payload for m in taken]
    finally:
        again.stop()
    assert redelivered == [marker]
