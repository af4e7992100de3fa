"""Lag-aware silence: a stalled gateway (stopped, or blocked on a full spool) is behind, not
looking at a silent site. The timer never judges silence past the moment the pipeline was last
caught up (`RuleEngine.caught_up`), so the backlog waiting at the broker raises nothing, while
a device that really stops is still offline once the stream has moved past its heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import orjson
import pytest

from alerts.engine import RuleEngine
from alerts.faults import FaultOpened
from alerts.rule_faults import SITE_RULE_ID
from alerts.rules import default_rule_set
from facility.batch import Batch
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import InboundMessage
from gateway.pipeline import Gateway, PipelineSettings
from simulators.publisher import Published
from tests.fakes import FakeClock
from tests.readings import T0, Reading, batch
from tests.unit.test_rule_catchup import SITE

PUMP = {"running": 1, "suction_bar": 1.4, "discharge_bar": 5.0, "flow_m3h": 15.0,
        "motor_current_a": 25, "motor_temp_c": 52, "vibration_mm_s": 1.0, "vfd_hz": 42.0,
        "tank_level_pct": 75.0, "leak": 0}  # fmt: skip


def readings(t_s: int, pumps: Sequence[str] = ("p1", "p2")) -> list[Reading]:
    return [Reading(pump, t_s, PUMP) for pump in pumps]


def run(stall_s: int, silent_from_s: int | None = None) -> list[FaultOpened]:
    """Both pumps report every second for 20 s; the gateway then stalls for `stall_s` (its
    timer still ticks, or ticks once on waking) while the pumps go on publishing; then it
    drains the backlog in 10 s chunks, one a second, and keeps up for two minutes.
    `silent_from_s`: p2 stops publishing then (the control)."""
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    clock = FakeClock(T0)
    opened = list(engine.tick(clock.now).opened)
    sent: list[Reading] = []
    end_s = 20 + stall_s + 120

    def publish(t_s: int) -> None:
        pumps = ("p1",) if silent_from_s is not None and t_s >= silent_from_s else ("p1", "p2")
        sent.extend(readings(t_s, pumps))

    def live(t_s: int, part: list[Reading]) -> None:
        clock.now = T0 + t_s * 1000 + 500
        if part:
            opened.extend(engine.evaluate(batch(SITE, part), arrived_ms=clock.now).opened)
        engine.caught_up(clock.now)
        opened.extend(engine.tick(clock.now).opened)

    for t in range(20):
        publish(t)
        live(t, sent[-2:] if sent else [])
    backlog_from = len(sent)
    for t in range(20, 20 + stall_s):  # stalled: nothing taken, the broker queues
        publish(t)
        clock.now = T0 + t * 1000 + 500
        opened.extend(engine.tick(clock.now).opened)
    t = 20 + stall_s
    while t < end_s:
        publish(t)
        if backlog_from < len(sent):  # draining: 10 s of readings a second
            newest = min(len(sent), backlog_from + 20)
            part, backlog_from = sent[backlog_from:newest], newest
            clock.now = T0 + t * 1000 + 500
            opened.extend(engine.evaluate(batch(SITE, part), arrived_ms=clock.now).opened)
            if backlog_from == len(sent):
                engine.caught_up(clock.now)
            opened.extend(engine.tick(clock.now).opened)
        t += 1
    return opened


def test_a_60s_stall_raises_no_site_incident_nor_offline_devices() -> None:
    assert run(60) == []


def test_a_device_that_really_stops_is_still_offline_after_the_stall() -> None:
    opened = run(60, silent_from_s=10)
    assert [(f.rule_id, f.device_id) for f in opened] == [("device.offline", "p2")]


def test_an_empty_take_right_after_a_sigstop_is_not_believed() -> None:
    """The whole process was stopped 60 s (the timer too). On waking, the pipeline's pending
    take returns empty at once (paho's thread has not read the backlog yet) and says "caught
    up" before the timer's first tick: the tick sees its own 60 s gap, goes back to before the
    stall and waits for the backlog's first batch (or a grace period) to believe it again."""
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    engine.tick(T0)
    opened: list[FaultOpened] = []
    for t in range(20):
        now = T0 + t * 1000 + 500
        opened += engine.evaluate(batch(SITE, readings(t)), arrived_ms=now).opened
        engine.caught_up(now)
        opened += engine.tick(now).opened
    woke = T0 + 80_000
    engine.caught_up(woke)  # the empty take: not proof of anything
    opened += engine.tick(woke).opened
    engine.caught_up(woke + 200)  # another empty take, the timer now knows of the stall
    opened += engine.tick(woke + 1000).opened
    assert opened == []
    assert engine.silence.behind_ms > 55_000
    for t in range(20, 82):  # the backlog arrives, then live readings
        now = woke + 1500 + (t - 20) * 100
        opened += engine.evaluate(batch(SITE, readings(t)), arrived_ms=now).opened
        engine.caught_up(now)
        opened += engine.tick(now).opened
    assert opened == []
    assert engine.silence.behind_ms == engine.arrival_lag_ms  # by the readings' own time again


def test_a_site_that_went_dark_during_a_stall_is_silent_after_the_grace() -> None:
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    engine.tick(T0)
    engine.evaluate(batch(SITE, readings(0)), arrived_ms=T0 + 500)
    engine.caught_up(T0 + 500)
    engine.tick(T0 + 1000)
    opened: list[FaultOpened] = []
    for t_ms in range(61_000, 90_000, 200):  # woke at 61 s; nothing ever arrives again
        engine.caught_up(T0 + t_ms)
        if t_ms % 1000 == 0:
            opened += engine.tick(T0 + t_ms).opened
    assert [f.rule_id for f in opened] == [SITE_RULE_ID]


def test_a_saturated_gateway_still_sees_a_device_stop() -> None:
    """Every take is full (the gateway never empties its queue, so never reports being caught
    up) but keeps pace: the stream's own progress moves silence on, and p2's stop is seen."""
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    engine.tick(T0)
    engine.caught_up(T0)
    opened: list[FaultOpened] = []
    for t in range(200):
        now = T0 + t * 1000 + 500
        pumps = ("p1",) if t >= 30 else ("p1", "p2")
        opened += engine.evaluate(batch(SITE, readings(t, pumps)), arrived_ms=now).opened
        opened += engine.tick(now).opened
    assert [(f.rule_id, f.device_id) for f in opened] == [("device.offline", "p2")]


def test_without_progress_the_wall_clock_would_call_the_stalled_site_silent() -> None:
    """The control for the engine's part: with no `caught_up` signal (the old behaviour), a
    60 s stall is a site incident."""
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    engine.tick(T0)
    engine.evaluate(batch(SITE, readings(0)), arrived_ms=T0 + 500)
    assert [f.rule_id for f in engine.tick(T0 + 61_000).opened] == [SITE_RULE_ID]


class Rules:
    """A sink that judges silence: records its batches and the progress it is told."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.reports: list[int] = []

    def handle(self, b: Batch) -> None:
        self.batches.append(len(b))

    def caught_up(self, as_of_ms: int) -> None:
        self.reports.append(as_of_ms)


class Store:
    def handle(self, b: Batch) -> None:
        pass


class Source:
    """Takes: one full batch, one short one, then 20 empty ones, and `stop` is set."""

    def __init__(self, messages: list[InboundMessage], stop: threading.Event) -> None:
        self.takes = [messages[:2], messages[2:3], *[[] for _ in range(20)]]
        self.stop = stop
        self.connected = True

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        if not self.takes:
            self.stop.set()
            return []
        time.sleep(0.005)
        return self.takes.pop(0)

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        pass


@pytest.mark.parametrize("durable", [False, True], ids=["inline", "pipelined"])
def test_the_pipeline_reports_progress_only_after_a_take_that_emptied_the_queue(
    durable: bool,
) -> None:
    published = [
        Published(
            f"facility/v1/s1/estate/pump/{p}/telemetry",
            orjson.dumps({"ts": T0 + i * 1000, "seq": i + 1, **PUMP}),
        )
        for i, p in enumerate(("p1", "p2", "p1"))
    ]
    messages = [InboundMessage(m.topic, m.payload, i, 1, 1) for i, m in enumerate(published)]

    sink = Rules()
    clock = FakeClock(T0 + 5000)
    gateway = Gateway(
        Decoder(SITE), [sink], MemoryDeadLetters(), clock_ms=clock,
        durable=Store() if durable else None, settings=PipelineSettings(max_batch_messages=2),
    )  # fmt: skip
    stop = threading.Event()
    source = Source(messages, stop)
    gateway.run(source, stop)
    assert sink.batches == [2, 1]
    # the full batch says nothing; the short one and the empty takes say "caught up"
    assert len(sink.reports) > 2
    assert set(sink.reports) == {T0 + 5000}
    source.connected = False
    assert gateway.caught_up_at(source, []) is None  # cut off from the broker: not current
