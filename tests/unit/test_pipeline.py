"""The gateway loop with fakes at its seams: a fake message source and in-memory sinks."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import orjson
import pytest

from facility.batch import Batch, BatchSink
from facility.errors import SinkBusyError
from facility.site import Site
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import InboundMessage
from gateway.pipeline import Gateway, PipelineSettings
from ingest.memory import MemoryWriter
from tests.conftest import DEMO_SITE, ROOT
from tests.fakes import MessageList

NOW_MS = 1_790_000_000_000
PUMP_TOPIC = "facility/v1/shangri-la/estate/pump/pump-1/telemetry"
GATE_TOPIC = "facility/v1/shangri-la/estate/gate/gate-north/telemetry"
NO_WAIT = PipelineSettings(
    max_batch_messages=3, flush_interval_s=0.0, retry_min_s=0.0, retry_max_s=0.0
)


class FakeSource:
    """Hands out prepared messages in order, then sets `stop`; records acks."""

    def __init__(self, messages: Sequence[InboundMessage], stop: threading.Event) -> None:
        self.pending = list(messages)
        self.acked: list[int] = []
        self.stop = stop

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        taken, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        if not taken:
            self.stop.set()
        return taken

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        self.acked.extend(m.mid for m in messages)


class FlakySink:
    """Fails its first `failures` calls, then records batches."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.batches: list[Batch] = []

    def handle(self, batch: Batch) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("store down")
        self.batches.append(batch)


def _message(mid: int, topic: str, payload: bytes) -> InboundMessage:
    return InboundMessage(topic, payload, mid, 1, 1)


def _pump(mid: int, seq: int, suction_bar: float = 1.5) -> InboundMessage:
    payload = orjson.dumps(
        {"ts": NOW_MS - 1000 + seq, "seq": seq, "running": True, "suction_bar": suction_bar}
    )
    return _message(mid, PUMP_TOPIC, payload)


def _gateway(
    site: Site,
    sinks: Sequence[BatchSink],
    letters: MemoryDeadLetters | None = None,
    *,
    durable: BatchSink | None = None,
) -> Gateway:
    """A gateway without waits; pipelined (store and rules on their threads) with `durable`."""
    return Gateway(
        Decoder(site),
        sinks,
        letters or MemoryDeadLetters(),
        durable=durable,
        settings=NO_WAIT,
        clock_ms=lambda: NOW_MS,
    )


def test_bad_messages_are_dead_lettered_and_the_loop_goes_on(demo_site: Site) -> None:
    messages = [
        _pump(1, 1),
        _message(2, PUMP_TOPIC, b"{oops"),
        _message(3, "not/a/telemetry/topic", b"{}"),
        _pump(4, 2),
        _message(5, GATE_TOPIC, orjson.dumps({"ts": NOW_MS, "seq": 1, "door_open": "yes"})),
        _message(6, PUMP_TOPIC, orjson.dumps({"ts": NOW_MS, "seq": 3, "suction_bar": 99.0})),
        _pump(7, 4),
    ]
    stop = threading.Event()
    source = FakeSource(messages, stop)
    writer, letters = MemoryWriter(), MemoryDeadLetters()
    gateway = _gateway(demo_site, [writer], letters)

    gateway.run(source, stop)

    assert writer.readings == 3
    assert source.acked == [1, 2, 3, 4, 5, 6, 7]
    assert sorted(letter.reason for letter in letters.recent(10)) == [
        "bad_topic",
        "bad_type",
        "malformed_json",
        "out_of_range",
    ]
    snapshot = gateway.metrics.snapshot()
    assert snapshot["messages_received"] == 7
    assert snapshot["readings_accepted"] == 3
    assert snapshot["rejected_total"] == 4


def test_a_failing_sink_is_retried_and_nothing_is_acked_before_it_succeeds(demo_site: Site) -> None:
    stop = threading.Event()
    source = FakeSource([_pump(1, 1), _pump(2, 2)], stop)
    sink = FlakySink(failures=2)
    gateway = _gateway(demo_site, [sink], MemoryDeadLetters())

    result = gateway.decode(source.take(10, 0))
    assert source.acked == []
    assert gateway.deliver(result, stop) is True
    assert sink.calls == 3
    assert [len(b) for b in sink.batches] == [2]
    assert gateway.metrics.snapshot()["sink_failures"] == 2


def test_stopping_while_the_sink_is_down_leaves_the_messages_unacked(demo_site: Site) -> None:
    stop = threading.Event()
    stop.set()
    source = FakeSource([_pump(1, 1)], threading.Event())
    gateway = _gateway(demo_site, [FlakySink(failures=1_000)], MemoryDeadLetters())

    gateway.run(source, stop)  # stop is already set: the loop must not even start
    result = gateway.decode(source.take(10, 0))
    assert gateway.deliver(result, stop) is False
    assert source.acked == []


def test_sequence_gaps_are_counted(demo_site: Site) -> None:
    stop = threading.Event()
    source = FakeSource([_pump(1, 1), _pump(2, 2), _pump(3, 6)], stop)
    gateway = _gateway(demo_site, [MemoryWriter()], MemoryDeadLetters())
    gateway.run(source, stop)
    assert gateway.metrics.snapshot()["sequence_gaps"] == 3


@pytest.mark.parametrize("payload", [b"", b"null", b"\xff\xfe", b"{}" * 200_000])
def test_hostile_payloads_never_raise(demo_site: Site, payload: bytes) -> None:
    stop = threading.Event()
    source = FakeSource([_message(1, PUMP_TOPIC, payload), _pump(2, 1)], stop)
    writer, letters = MemoryWriter(), MemoryDeadLetters()
    _gateway(demo_site, [writer], letters).run(source, stop)
    assert writer.readings == 1
    assert len(letters.recent(10)) == 1
    assert source.acked == [1, 2]


class RecordingSink:
    """Records the order in which batches arrive (by their first seq, or `each` seq)."""

    def __init__(self, log: list[str], name: str, *, each: bool = False) -> None:
        self.log = log
        self.name = name
        self.each = each

    def handle(self, batch: Batch) -> None:
        seqs = batch.kinds["pump"].seq.tolist()
        self.log.extend(f"{self.name}:{int(s)}" for s in (seqs if self.each else seqs[:1]))


class AckLog(FakeSource):
    """A source that does not stop the gateway when it runs dry: the test stops it."""

    def __init__(self, messages: Sequence[InboundMessage], log: list[str]):
        super().__init__(messages, threading.Event())
        self.log = log

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        super().ack(messages)
        self.log.append(f"ack:{messages[0].mid}")


def test_pipelined_acks_follow_durability_in_receive_order(demo_site: Site) -> None:
    log: list[str] = []
    stop = threading.Event()
    messages = [_pump(mid, mid) for mid in range(1, 10)]
    source = AckLog(messages, log)
    rules = RecordingSink(log, "rules", each=True)  # batches queued for it come together
    gateway = _gateway(demo_site, [rules], durable=RecordingSink(log, "store"))
    finished = threading.Event()

    def stop_when_drained() -> None:
        while len(source.acked) < len(messages):
            finished.wait(0.01)
        stop.set()

    threading.Thread(target=stop_when_drained, daemon=True).start()
    gateway.run(source, stop)

    assert source.acked == list(range(1, 10))
    stores = [entry for entry in log if entry.startswith(("store", "ack"))]
    assert stores == ["store:1", "ack:1", "store:4", "ack:4", "store:7", "ack:7"]
    for batch_start in (1, 4, 7):
        assert log.index(f"rules:{batch_start}") < log.index(f"ack:{batch_start}")


class HeldRules:
    """A rules sink whose first batch is held until `release` is set; records each batch's
    seqs and the progress it was told."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.batches: list[list[int]] = []
        self.starts: list[int | None] = []
        self.progress: list[int] = []

    def handle(self, batch: Batch) -> None:
        if not self.batches:
            assert self.release.wait(10), "the gateway never queued the next batches"
        self.batches.append([int(s) for s in batch.kinds["pump"].seq.tolist()])
        self.starts.append(batch.message_start_ms)

    def caught_up(self, as_of_ms: int) -> None:
        self.progress.append(as_of_ms)


class CountingSource(MessageList):
    """Sets `queued` at the take after its last batch: by then the batches the rules stage
    has not taken wait in its queue (the store stage holds the first, unacked)."""

    def __init__(self, messages: Sequence[InboundMessage], queued: threading.Event) -> None:
        super().__init__(messages, threading.Event())
        self.queued = queued

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        taken = super().take(max_messages, timeout_s, max_bytes)
        if not taken:
            self.queued.set()
        return taken


def test_batches_queued_for_a_busy_rules_stage_are_evaluated_together(demo_site: Site) -> None:
    """Three batches: the rules hold their first evaluation until the other batches wait for
    them, then take what waits in one evaluation, readings in receive order; every message
    is acked once, in order, and the evaluations are counted."""
    queued = threading.Event()
    rules = HeldRules(queued)
    source = CountingSource([_pump(mid, mid) for mid in range(1, 10)], queued)
    store = MemoryWriter()
    gateway = _gateway(demo_site, [rules], durable=store)
    gateway.run(source, source.stop)  # the source stops it once every message is acked

    # Where the first evaluation ends depends on whether batch 2 was queued before the stage
    # took batch 1; what was still queued behind it is then taken at once.
    assert len(rules.batches) <= 2
    assert [s for batch in rules.batches for s in batch] == list(range(1, 10))
    assert rules.starts == [NOW_MS - 1000 + batch[-1] for batch in rules.batches]
    assert source.acked == list(range(1, 10))
    assert store.readings == 9
    metrics = gateway.metrics.snapshot()
    assert (metrics["batches_handled"], metrics["rules_evaluations"]) == (3, len(rules.batches))


def test_pipelined_nothing_is_acked_while_the_store_fails(demo_site: Site) -> None:
    stop = threading.Event()
    source = FakeSource([_pump(1, 1), _pump(2, 2)], threading.Event())
    rules = MemoryWriter()
    gateway = _gateway(demo_site, [rules], durable=FlakySink(failures=1_000_000))
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    gateway.run(source, stop)
    timer.cancel()
    assert rules.readings == 2  # the rules saw the batch ...
    assert source.acked == []  # ... but it was never durable, so the broker keeps it


def test_pipelined_nothing_is_acked_while_the_rules_fail(demo_site: Site) -> None:
    stop = threading.Event()
    source = FakeSource([_pump(1, 1), _pump(2, 2)], threading.Event())
    store = MemoryWriter()
    gateway = _gateway(demo_site, [FlakySink(failures=1_000_000)], durable=store)
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    gateway.run(source, stop)
    timer.cancel()
    assert store.readings == 2  # durable ...
    assert source.acked == []  # ... but the rules never saw it, so the broker keeps it


class FullSink:
    """Says it is full (having waited itself) `times` times, then takes the batch."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.batches: list[Batch] = []

    def handle(self, batch: Batch) -> None:
        if self.times:
            self.times -= 1
            raise SinkBusyError("spool full")
        self.batches.append(batch)


def test_a_full_sink_holds_the_batch_unacked_and_retries_without_backoff(
    demo_site: Site,
) -> None:
    stop = threading.Event()
    source = FakeSource([_pump(1, 1)], stop)
    sink = FullSink(times=3)
    slow = PipelineSettings(max_batch_messages=3, flush_interval_s=0.0, retry_min_s=600.0)
    gateway = Gateway(
        Decoder(demo_site), [sink], MemoryDeadLetters(), settings=slow, clock_ms=lambda: NOW_MS
    )

    result = gateway.decode(source.take(10, 0))
    assert gateway.deliver(result, stop) is True  # a 600 s backoff would hang the test here
    assert [len(b) for b in sink.batches] == [1]
    snapshot = gateway.metrics.snapshot()
    assert snapshot["backpressure_retries"] == 3
    assert snapshot["sink_failures"] == 0


class BegunStore:
    """A durable sink with `begin` / `finish`, like `ingest.delivery.Delivery`: logs both; the
    first `finish` waits until the next batch has begun (or gives up after 10 s), and
    `finish` of batch `fail_at` raises once (the gateway then hands it the batch afresh)."""

    def __init__(self, log: list[str], fail_at: int | None = None) -> None:
        self.log = log
        self.fail_at = fail_at
        self.begun = threading.Condition()

    @staticmethod
    def _first(batch: Batch) -> int:
        return int(batch.kinds["pump"].seq[0])

    def begin(self, batch: Batch) -> int:
        with self.begun:
            self.log.append(f"begin:{self._first(batch)}")
            self.begun.notify_all()
        return self._first(batch)

    def finish(self, batch: Batch, started: int) -> None:
        assert started == self._first(batch)
        if started == 1:
            with self.begun:
                self.begun.wait_for(lambda: "begin:4" in self.log, 10)
        if started == self.fail_at:
            self.fail_at = None
            self.log.append(f"failed:{started}")
            raise ConnectionError("the store went away")
        self.log.append(f"finish:{started}")

    def handle(self, batch: Batch) -> None:
        self.log.append(f"handle:{self._first(batch)}")


def test_the_next_batch_s_writes_begin_before_the_batch_ahead_is_durable(
    demo_site: Site,
) -> None:
    """Batch 2's store writes begin while batch 1's are still awaited; acks still follow
    durability, in receive order."""
    log: list[str] = []
    source = MessageList([_pump(mid, mid) for mid in range(1, 10)], threading.Event())
    gateway = _gateway(demo_site, [MemoryWriter()], durable=BegunStore(log))
    gateway.run(source, source.stop)

    assert source.acked == list(range(1, 10))
    assert log.index("begin:4") < log.index("finish:1")
    assert [entry for entry in log if entry.startswith("finish")] == [
        "finish:1",
        "finish:4",
        "finish:7",
    ]
    assert not [entry for entry in log if entry.startswith("handle")]


def test_a_begun_batch_that_fails_is_retried_whole_and_acked_only_then(demo_site: Site) -> None:
    log: list[str] = []
    stop = threading.Event()
    source = AckLog([_pump(mid, mid) for mid in range(1, 10)], log)
    gateway = _gateway(demo_site, [MemoryWriter()], durable=BegunStore(log, fail_at=4))
    finished = threading.Event()

    def stop_when_drained() -> None:
        while len(source.acked) < 9:
            finished.wait(0.01)
        stop.set()

    threading.Thread(target=stop_when_drained, daemon=True).start()
    gateway.run(source, stop)

    assert source.acked == list(range(1, 10))
    assert log.index("failed:4") < log.index("handle:4") < log.index("ack:4")
    assert "finish:4" not in log
    assert gateway.metrics.snapshot()["sink_failures"] == 1


class BacklogRules:
    """A rules sink that logs when it is told the gateway is behind or caught up."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handle(self, batch: Batch) -> None:
        self.log.append(f"batch:{int(batch.kinds['pump'].seq[0])}")

    def behind(self) -> None:
        self.log.append("behind")

    def caught_up(self, as_of_ms: int) -> None:
        self.log.append("caught_up")


@pytest.mark.parametrize("pipelined", [False, True])
def test_batches_from_full_takes_come_after_behind_and_a_short_take_after_caught_up(
    demo_site: Site, pipelined: bool
) -> None:
    """Seven messages in takes of three: two full takes (behind), then one short (caught
    up): the rules hear `behind` before each full take's batch, nothing before the short
    one's, and `caught_up` after it."""
    log: list[str] = []
    source = MessageList([_pump(mid, mid) for mid in range(1, 8)], threading.Event(),
                         one_batch=True)  # fmt: skip
    store = MemoryWriter() if pipelined else None
    gateway = _gateway(demo_site, [BacklogRules(log)], durable=store)
    gateway.run(source, source.stop)
    assert source.acked == list(range(1, 8))
    first_progress = log.index("caught_up")
    assert log[:first_progress] == ["behind", "batch:1", "behind", "batch:4", "batch:7"]


# A gateway whose MQTT consumer never gets a message (it is not even connected), and a SIGTERM
# handler slower than the take's timeout: a signal that interrupts the wait for the next
# message leaves it past its deadline.
SLOW_HANDLER_SCRIPT = """
import signal, sys, threading, time
from facility.site import load_site
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import MqttConsumer, MqttSettings
from gateway.pipeline import Gateway, PipelineSettings
from ingest.memory import MemoryWriter

stop = threading.Event()

def handler(signum, frame):
    time.sleep(0.1)
    stop.set()

signal.signal(signal.SIGTERM, handler)
consumer = MqttConsumer(MqttSettings(), "facility/#")
site = load_site(sys.argv[1])
durable = MemoryWriter() if sys.argv[2] == "pipelined" else None
gateway = Gateway(Decoder(site), [], MemoryDeadLetters(), durable=durable,
                  settings=PipelineSettings(flush_interval_s=0.02))
print("running", flush=True)
gateway.run(consumer, stop)
print("stopped", flush=True)
"""


@pytest.mark.parametrize("mode", ["pipelined", "inline"])
def test_a_sigterm_stops_the_loop_while_it_waits_for_messages(mode: str) -> None:
    """CPython's `SimpleQueue.get(timeout=...)` interrupted by a signal near its deadline waits
    on forever: the handler set the stop event and the gateway never looked at it."""
    for _attempt in range(3):  # each SIGTERM almost surely lands in a wait (the loop only waits)
        process = subprocess.Popen(
            [sys.executable, "-c", SLOW_HANDLER_SCRIPT, str(DEMO_SITE), mode],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "running"
            time.sleep(0.3)  # into the loop's waits
            process.send_signal(signal.SIGTERM)
            try:
                out, _ = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the {mode} gateway did not stop within 10 s of its SIGTERM")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, out
        assert out.strip() == "stopped"
