"""A takeover's rule state: the shard's checkpoint from the database, then the stored readings
since it replayed from the history reader (a fake store at that seam), so a `for` timer that
ran across the failover keeps its start and the episode is filed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.checkpoint_store import RuleCheckpointStore, SavedState
from alerts.engine import RuleEngine
from alerts.notify.relay import RelaySettings
from alerts.rule_checkpoint import CheckpointError
from alerts.rule_file import parse_rule_file
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from alerts.takeover import replay_start, take_over
from db.engine import make_engine
from facility.batch import Batch
from facility.errors import SettingsError
from facility.site import parse_site
from gateway.decoder import DecoderLimits
from gateway.leadership import ShardSettings
from gateway.pipeline import PipelineSettings
from ingest.delivery import DeliverySettings
from ingest.settings import StoreSettings
from runtime.services.gateway import GatewayConfig, GatewayService
from runtime.settings.tree import GatewaySettings, MqttSettings
from tests.fakes import FakeClock
from tests.readings import T0, Reading, batch, ms

SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "estate"

[[buildings.units]]
id = "pump-room"
devices = [{ id = "p1", kind = "pump" }, { id = "p2", kind = "pump" }]
"""
)
RULES = """
[[rules]]
id = "leak"
kind = "pump"
when = "leak"
for = "30s"
severity = "critical"
title = "Leak: {device}"
"""
LEAK_FROM_S = 22
"""The leak starts after the checkpoint (20 s): only the replay knows when."""


def readings(first_s: int, last_s: int) -> list[Reading]:
    """Both pumps every second; p1 leaks from LEAK_FROM_S on."""
    return [
        Reading(pump, t, {"running": 1, "leak": int(pump == "p1" and t >= LEAK_FROM_S)})
        for t in range(first_s, last_s + 1)
        for pump in ("p1", "p2")
    ]


class FakeStore:
    """The time-series store at the history reader's seam: what the old leader stored."""

    def __init__(self) -> None:
        self.stored: list[Reading] = []
        self.asked: list[tuple[int, int]] = []

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        self.asked.append((start_ms, end_ms))
        return batch(SITE, [r for r in self.stored if start_ms <= ms(r.t_s) < end_ms])


def sink_on(db: str, clock: FakeClock) -> tuple[AlertsSink, RuleCheckpointStore]:
    store = WorkOrderStore(make_engine(db), clock_ms=clock)
    store.migrate()
    checkpoints = RuleCheckpointStore(store.engine, "north")
    engine = RuleEngine.from_rule_set(SITE, parse_rule_file(RULES))
    return AlertsSink(SITE, engine, store, checkpoints=checkpoints, clock_ms=clock), checkpoints


def episodes(sink: AlertsSink) -> list[tuple[str | None, int | None]]:
    return [(o.device_id, o.fault_started_ms) for o in sink.store.list_work_orders()]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.sqlite3'}"


def run_old_leader(db: str, clock: FakeClock, store: FakeStore) -> None:
    """Up to 20 s, checkpoint; then 21-35 s handled, stored and acked; then it dies."""
    old, _ = sink_on(db, clock)
    first = readings(0, 20)
    old.handle(batch(SITE, first))
    store.stored += first
    clock.now = ms(20.5)
    old.checkpoint()
    after = readings(21, 35)
    old.handle(batch(SITE, after))
    store.stored += after


def test_a_for_timer_running_across_the_takeover_keeps_its_start(db: str) -> None:
    clock, store = FakeClock(ms(0)), FakeStore()
    run_old_leader(db, clock, store)
    clock.now = ms(40)
    new, checkpoints = sink_on(db, clock)
    replayed = take_over(new, checkpoints, store, now_ms=clock.now, margin_ms=60_000,
                         max_gap_ms=3_600_000)  # fmt: skip
    assert replayed.start_ms == ms(20) + 1  # just after the checkpoint's last readings
    assert replayed.end_ms == ms(20) + (ms(40) - ms(20.5)) + 60_000  # where the stream can be
    assert replayed.checkpoint
    assert replayed.readings == 2 * 15  # 21-35 s, both pumps
    new.handle(batch(SITE, readings(30, 80)))  # the broker's redelivery, then the stream
    assert episodes(new) == [("p1", ms(LEAK_FROM_S))]


def test_without_the_replay_the_episode_would_start_late(db: str) -> None:
    """What the replay is for: the checkpoint alone restarts the timer at the redelivery."""
    clock, store = FakeClock(ms(0)), FakeStore()
    run_old_leader(db, clock, store)
    clock.now = ms(40)
    new, checkpoints = sink_on(db, clock)
    saved = checkpoints.load()
    assert saved is not None
    new.restore(saved)
    new.handle(batch(SITE, readings(36, 80)))
    assert episodes(new) == [("p1", ms(36))]


def test_a_fault_the_old_leader_filed_is_not_filed_again(db: str) -> None:
    clock, store = FakeClock(ms(0)), FakeStore()
    old, checkpoints = sink_on(db, clock)
    first = readings(0, 60)  # the fault opens at 52 s, after the checkpoint at 20 s
    old.handle(batch(SITE, first[:42]))
    old.checkpoint()
    old.handle(batch(SITE, first[42:]))
    store.stored += first
    assert episodes(old) == [("p1", ms(LEAK_FROM_S))]
    new, _ = sink_on(db, clock)
    take_over(new, checkpoints, store, now_ms=ms(61), margin_ms=60_000, max_gap_ms=3_600_000)
    new.handle(batch(SITE, readings(55, 90)))
    assert episodes(new) == [("p1", ms(LEAK_FROM_S))]
    assert len(new.store.list_work_orders()) == 1


def test_no_checkpoint_yet_replays_the_margin_before_now(db: str) -> None:
    clock, store = FakeClock(ms(100)), FakeStore()
    store.stored += readings(0, 99)
    new, checkpoints = sink_on(db, clock)
    replayed = take_over(new, checkpoints, store, now_ms=ms(100), margin_ms=50_000,
                         max_gap_ms=3_600_000)  # fmt: skip
    assert replayed.start_ms == ms(50)
    assert replayed.readings == 2 * 50


def test_the_replay_goes_back_at_most_the_longest_gap(db: str) -> None:
    clock, store = FakeClock(ms(0)), FakeStore()
    run_old_leader(db, clock, store)
    new, checkpoints = sink_on(db, clock)
    replayed = take_over(new, checkpoints, store, now_ms=ms(30), margin_ms=60_000,
                         max_gap_ms=5_000)  # fmt: skip
    assert replayed.start_ms == ms(25)


def test_replay_start_leaves_out_devices_long_silent_before_the_checkpoint() -> None:
    engine = RuleEngine.from_rule_set(SITE, parse_rule_file(RULES))
    engine.evaluate(batch(SITE, [Reading("p2", 0, {"leak": 0})]))
    engine.evaluate(batch(SITE, [Reading("p1", 500, {"leak": 0}),
                                 Reading("p2", 300, {"leak": 0})]))  # fmt: skip
    assert replay_start(engine, saved_ms=ms(900), margin_ms=100_000) == ms(500) + 1
    assert replay_start(engine, saved_ms=ms(900), margin_ms=300_000) == ms(300) + 1
    fresh = RuleEngine.from_rule_set(SITE, parse_rule_file(RULES))
    assert replay_start(fresh, saved_ms=ms(900), margin_ms=60_000) == ms(840)


def test_checkpoints_are_one_row_per_shard(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        WorkOrderStore(engine).migrate()
        north, south = RuleCheckpointStore(engine, "north"), RuleCheckpointStore(engine, "south")
        assert north.load() is None
        north.save(b"first", 1)
        north.save(b"second", 2)
        south.save(b"other", 3)
        assert north.load() == SavedState(b"second", 2)
        assert south.load() == SavedState(b"other", 3)
    finally:
        engine.dispose()


def test_a_corrupt_checkpoint_row_is_a_clear_error(db: str) -> None:
    clock = FakeClock(T0)
    new, _ = sink_on(db, clock)
    with pytest.raises(CheckpointError, match="of shard north: cannot be read"):
        new.restore(SavedState(b"not an npz file", T0))


def test_standby_needs_postgresql(tmp_path: Path) -> None:
    config = GatewayConfig(
        gateway=GatewaySettings(), mqtt=MqttSettings(), store=StoreSettings(),
        db_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", decoder=DecoderLimits(),
        pipeline=PipelineSettings(), delivery=DeliverySettings(), notify=RelaySettings(),
        shard=ShardSettings(standby=True),
    )  # fmt: skip
    with pytest.raises(SettingsError, match="PostgreSQL") as caught:
        GatewayService(config, SITE)
    assert caught.value.setting == "shard-standby"
