"""A rule that raises is quarantined; the gateway, the store and the other rules go on.

The gateway runs pipelined (rules and store on their own threads) over a fake message source,
with the default rule pack plus a buggy rule function (`PoisonedCondition`) that opens a fault
on a hot pump and raises when a reading is off its scale, mid-stream. A work-order database
outage is the other kind of failure: transient, retried, and no fault is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from sqlalchemy.exc import OperationalError

from alerts.backtest import backtest
from alerts.engine import RuleEngine
from alerts.interface import Rule, Severity
from alerts.rule_context import RuleContext
from alerts.rule_file import RuleSet
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrder, WorkOrderStore
from db.engine import make_engine
from facility.batch import Batch, BoolArray
from facility.catalog import KINDS
from facility.site import Site
from gateway.dead_letters import MemoryDeadLetters
from gateway.decoder import Decoder
from gateway.mqtt import InboundMessage
from gateway.pipeline import Gateway, PipelineSettings
from gateway.status_server import StatusServer
from ingest.memory import MemoryWriter
from tests.fakes import DatabaseOutage, FakeClock, MessageList, PoisonedCondition, RuleBugError

T0 = 1_790_000_000_000
PUMP = "facility/v1/shangri-la/estate/pump/pump-1/telemetry"
GATE = "facility/v1/shangri-la/estate/gate/gate-north/telemetry"
SETTINGS = PipelineSettings(
    max_batch_messages=3, flush_interval_s=0.0, retry_min_s=0.0, retry_max_s=0.0
)
BUGGY = "pump.buggy_overheat"
BUG = "RuleBugError: motor_temp_c 170 is off the scale"
"""What the buggy rule raises on `STREAM`'s fourth reading, as /health and the log show it."""


def _rule(condition: PoisonedCondition) -> Rule:
    return Rule(
        id=BUGGY, kind="pump", severity=Severity.MAJOR, title="{device} hot", condition=condition
    )


def _pump(mid: int, at_s: int, motor_temp_c: float, *, leak: bool = False) -> InboundMessage:
    body = {"ts": T0 + at_s * 1000, "seq": mid, "running": True, "motor_temp_c": motor_temp_c}
    return InboundMessage(PUMP, orjson.dumps({**body, "leak": leak}), mid, 1, 1)


def _gate(mid: int, at_s: int, *, forced_open: bool) -> InboundMessage:
    body = {"ts": T0 + at_s * 1000, "seq": mid, "forced_open": forced_open}
    return InboundMessage(GATE, orjson.dumps(body), mid, 1, 1)


STREAM = [
    _pump(1, 0, 60.0),
    _pump(2, 5, 96.0),  # the buggy rule opens its fault here
    _gate(3, 5, forced_open=False),
    _pump(4, 10, 170.0, leak=True),  # off its scale: the buggy rule raises on this batch
    _gate(5, 10, forced_open=True),  # ... and the gate rule still opens its fault
    _pump(6, 15, 60.0, leak=True),  # the buggy rule would clear here, but it is quarantined
    _pump(7, 20, 60.0, leak=True),  # pump.leak (for 10 s) opens: same kind, after the bug
    _gate(8, 20, forced_open=False),
    _pump(9, 25, 60.0),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WorkOrderStore]:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'wo.sqlite3'}"))
    store.migrate()
    yield store
    store.engine.dispose()


def sink_with_buggy_rule(
    site: Site, store: WorkOrderStore, condition: PoisonedCondition
) -> AlertsSink:
    """The default rule pack plus `BUGGY`, a rule function with `condition`."""
    rules = default_rule_set()
    engine = RuleEngine(site, [*rules.rules, _rule(condition)], params=rules.params)
    return AlertsSink(site, engine, store)


def _orders(store: WorkOrderStore) -> dict[str, WorkOrder]:
    return {str(o.rule_id): o for o in store.list_work_orders(statuses=("open",))}


def test_a_rule_that_raises_mid_stream_is_quarantined_and_everything_else_goes_on(
    demo_site: Site, store: WorkOrderStore, caplog: pytest.LogCaptureFixture
) -> None:
    condition = PoisonedCondition("motor_temp_c", above=90.0, poison=150.0)
    sink = sink_with_buggy_rule(demo_site, store, condition)
    writer = MemoryWriter()
    gateway = Gateway(
        Decoder(demo_site),
        [sink],
        MemoryDeadLetters(),
        durable=writer,
        settings=SETTINGS,
        clock_ms=lambda: T0 + 30_000,
    )
    stop = threading.Event()
    source = MessageList(STREAM, stop, one_batch=True)  # the bug strikes its second batch
    guard = threading.Timer(60, stop.set)  # only ends a hung run; the asserts say what failed
    guard.start()
    with caplog.at_level(logging.ERROR, logger="alerts.quarantine"):
        gateway.run(source, stop)
    guard.cancel()

    assert writer.readings == len(STREAM)  # every reading stored ...
    assert source.acked == [m.mid for m in STREAM]  # ... and acked, in order
    assert gateway.metrics.snapshot()["sink_failures"] == 0  # never retried
    orders = _orders(store)
    assert {BUGGY, "gate.forced_open", "pump.leak"} <= set(orders)
    assert orders[BUGGY].cleared_ms is None  # its open fault is kept, not cleared
    assert orders["pump.leak"].device_id == "pump-1"
    assert condition.calls == 2  # batch 1, then the batch it raised on; skipped after

    failures = sink.engine.quarantine.failures()
    assert [(f.rule_id, f.error) for f in failures] == [(BUGGY, BUG)]
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1  # once, with the rule and the exception
    assert BUGGY in logged[0].getMessage()
    assert "RuleBugError" in logged[0].getMessage()
    assert logged[0].exc_info is not None


def test_metrics_and_health_show_the_quarantine_while_the_gateway_serves(
    demo_site: Site, store: WorkOrderStore
) -> None:
    condition = PoisonedCondition("motor_temp_c", above=90.0, poison=150.0)
    sink = sink_with_buggy_rule(demo_site, store, condition)
    gateway = Gateway(
        Decoder(demo_site), [sink], MemoryDeadLetters(), settings=SETTINGS, clock_ms=lambda: T0
    )
    # As the composition root wires them: the rules' metrics and health beside the gateway's.
    status = StatusServer(
        "127.0.0.1",
        0,
        metrics=lambda: [*gateway.metrics.prometheus(), *sink.prometheus()],
        health=lambda: (True, {"mqtt_connected": True, "rules": sink.health()}),
    )
    status.start()
    try:
        base = f"http://127.0.0.1:{status.port}"
        healthy = httpx.get(f"{base}/health", timeout=5)
        assert (healthy.status_code, healthy.json()["status"]) == (200, "ok")
        assert "facility_rules_quarantined 0" in httpx.get(f"{base}/metrics", timeout=5).text

        gateway.run(MessageList(STREAM, stop := threading.Event(), one_batch=True), stop)

        health = httpx.get(f"{base}/health", timeout=5)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        status.stop()
    assert health.status_code == 200  # still serving: no orchestrator should restart it
    body = health.json()
    assert body["status"] == "degraded"
    assert body["serving"] is True
    assert body["degraded"] == [f"rule {BUGGY} quarantined: {BUG}"]
    assert [q["rule"] for q in body["rules"]["quarantined"]] == [BUGGY]
    assert f'facility_rule_failures_total{{rule="{BUGGY}"}} 1' in metrics
    assert "facility_rules_quarantined 1" in metrics
    assert "facility_faults_unfiled 0" in metrics


def test_a_failing_health_check_is_503_and_degraded(demo_site: Site) -> None:
    status = StatusServer(
        "127.0.0.1", 0, metrics=list, health=lambda: (False, {"mqtt_connected": False})
    )
    status.start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{status.port}/health", timeout=5)
    finally:
        status.stop()
    assert answer.status_code == 503
    assert answer.json() == {"status": "degraded", "serving": False, "mqtt_connected": False}


def _no_timer_rule(context: RuleContext) -> BoolArray:
    if context.now_ms is not None:
        raise RuleBugError("cannot run on the timer")
    result: BoolArray = np.zeros(len(context.batch), np.bool_)
    return result


def test_a_rule_that_raises_on_the_timer_is_quarantined_and_the_others_tick(
    demo_site: Site,
) -> None:
    rules = default_rule_set()
    bad = Rule(
        id="pump.bad_timer", kind="pump", severity=Severity.MINOR, title="x",
        condition=_no_timer_rule, timed=True,
    )  # fmt: skip
    engine = RuleEngine(demo_site, [bad, *rules.rules], params=rules.params)
    assert engine.tick(T0).opened == []  # silence counts from here; the bad rule raised
    assert "pump.bad_timer" in engine.quarantine
    heartbeat_s = max(KINDS[d.kind].heartbeat_s for d in demo_site.devices)
    at_s = int(heartbeat_s) + 1
    engine.evaluate(
        Decoder(demo_site).decode([_pump(1, at_s, 60.0)], now_ms=T0 + at_s * 1000).batch
    )

    later = engine.tick(T0 + at_s * 1000)  # pump-1 reports, every other device is silent

    offline = {f.device_id for f in later.opened if f.rule_id == "device.offline"}
    assert offline == {d.id for d in demo_site.devices} - {"pump-1"}
    assert [f.rule_id for f in engine.quarantine.failures()] == ["pump.bad_timer"]


def test_a_database_outage_is_retried_and_no_fault_is_lost(
    demo_site: Site, store: WorkOrderStore
) -> None:
    sink = sink_with_buggy_rule(
        demo_site, store, PoisonedCondition("motor_temp_c", above=90.0, poison=1e9)
    )
    outage = DatabaseOutage(store.engine)
    batch = Decoder(demo_site).decode(STREAM[:3], now_ms=T0 + 30_000).batch
    checkpoint = Path(store.engine.url.database or "").with_suffix(".npz")
    sink.checkpoint_path = checkpoint

    outage.down = True
    with pytest.raises(OperationalError):
        sink.handle(batch)  # the gateway would retry this batch, unacked
    sink.checkpoint()
    assert not checkpoint.exists()  # the engine's state has a fault the database has not
    assert sink.health()["unfiled_faults"] == 1
    with pytest.raises(OperationalError):
        sink.handle(batch)  # still down: the retry fails too, the fault still waits

    outage.down = False
    sink.handle(batch)  # the retry: its evaluation is empty, the waiting fault is filed
    assert set(_orders(store)) == {BUGGY}
    assert sink.engine.quarantine.failures() == []  # the database is not a rule bug
    assert sink.health()["unfiled_faults"] == 0
    sink.checkpoint()
    assert checkpoint.exists()
    assert outage.refused >= 2


def test_a_quarantined_rule_stays_out_after_a_tick(demo_site: Site, store: WorkOrderStore) -> None:
    clock = FakeClock(T0)
    condition = PoisonedCondition("motor_temp_c", above=90.0, poison=150.0)
    sink = sink_with_buggy_rule(demo_site, store, condition)
    decoder = Decoder(demo_site)
    sink.handle(decoder.decode(STREAM[3:5], now_ms=T0 + 30_000).batch)
    assert BUGGY in sink.engine.quarantine
    sink.tick(clock())
    sink.handle(decoder.decode(STREAM[5:], now_ms=T0 + 30_000).batch)
    assert condition.calls == 1


class StreamHistory:
    """A history source (the backtest's seam) holding `STREAM`'s readings."""

    def __init__(self, site: Site) -> None:
        decoder = Decoder(site)
        self.readings = decoder.decode(STREAM, now_ms=T0 + 30_000).batch
        self.nothing = decoder.decode([], now_ms=T0).batch

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        return self.readings if start_ms <= T0 < end_ms else self.nothing


def test_a_backtest_reports_the_rule_that_raised(demo_site: Site) -> None:
    rules = default_rule_set()
    buggy = _rule(PoisonedCondition("motor_temp_c", above=90.0, poison=150.0))
    with_bug = RuleSet((*rules.rules, buggy), rules.params)
    result = backtest(demo_site, with_bug, StreamHistory(demo_site), T0, T0 + 60_000)
    assert [q.rule_id for q in result.quarantined] == [BUGGY]
    assert result.lines()[-1] == f"rule {BUGGY} raised and was skipped from then on: {BUG}"
