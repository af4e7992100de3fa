"""The device_state rows while the gateway keeps up and while it drains a backlog: written at
once, or merged at most `every_s` apart, always ending with each device's newest reading; a
failed write keeps what waited. Hand-written readings through a real AlertsSink and SQLite,
and a fake writer for the failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.device_state_writes import DeviceStateWrites
from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.batch import Batch
from facility.site import Site
from tests.fakes import FakeClock
from tests.readings import T0, Reading, batch
from tests.unit.test_rule_catchup import SITE  # two pumps, p1 and p2


def pumps(t_s: float, level: float, *devices: str) -> Batch:
    """One reading of each pump at `t_s`, its tank at `level` %."""
    readings = [Reading(d, t_s, {"running": 1, "tank_level_pct": level}) for d in devices]
    return batch(SITE, readings)


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    return store


def levels(store: WorkOrderStore) -> dict[str, tuple[int, float]]:
    """Each device's row: (last seen ms, tank level)."""
    return {
        device: (state.last_seen_ms, float(state.values["tank_level_pct"]))
        for device, state in store.device_states().items()
    }


def test_each_batch_is_written_at_once_while_the_gateway_keeps_up(store: WorkOrderStore) -> None:
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store,
                      clock_ms=FakeClock(T0 + 60_000))  # fmt: skip
    sink.handle(pumps(0, 80.0, "p1", "p2"))
    assert levels(store) == {"p1": (T0, 80.0), "p2": (T0, 80.0)}
    sink.handle(pumps(10, 79.5, "p1"))
    assert levels(store) == {"p1": (T0 + 10_000, 79.5), "p2": (T0, 80.0)}


def test_a_backlog_s_batches_are_merged_and_caught_up_writes_the_newest(
    store: WorkOrderStore,
) -> None:
    """Behind: the first batch after the last write goes at once, the next ones wait; caught
    up, what waited is written: each device's newest reading of all the batches."""
    seconds = Seconds()
    writes = DeviceStateWrites(SITE, store.update_device_state, every_s=1.0, monotonic=seconds)
    writes.behind()
    writes.add(pumps(0, 80.0, "p1", "p2"))  # nothing written for a second: at once
    writes.add(pumps(10, 79.5, "p1", "p2"))
    writes.add(pumps(20, 79.0, "p1"))
    assert writes.waiting == 2
    assert levels(store) == {"p1": (T0, 80.0), "p2": (T0, 80.0)}
    writes.caught_up()
    assert writes.waiting == 0
    assert levels(store) == {"p1": (T0 + 20_000, 79.0), "p2": (T0 + 10_000, 79.5)}
    writes.add(pumps(30, 78.5, "p2"))  # caught up: at once again
    assert levels(store)["p2"] == (T0 + 30_000, 78.5)


def test_a_long_backlog_is_written_at_least_every_every_s(store: WorkOrderStore) -> None:
    seconds = Seconds()
    writes = DeviceStateWrites(SITE, store.update_device_state, every_s=1.0, monotonic=seconds)
    writes.behind()
    for step in range(12):  # a batch every 0.25 s for 3 s
        writes.add(pumps(step, 80.0 - step, "p1"))
        seconds.now += 0.25
    # written at steps 0, 4 and 8 (1 s apart): what came after step 8 waits
    assert levels(store) == {"p1": (T0 + 8_000, 72.0)}
    assert writes.waiting == 3
    writes.flush()  # the timer's tick
    assert levels(store) == {"p1": (T0 + 11_000, 69.0)}


def test_the_timer_s_tick_and_the_checkpoint_write_what_waits(store: WorkOrderStore) -> None:
    clock = FakeClock(T0 + 60_000)
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store,
                      clock_ms=clock)  # fmt: skip
    sink.behind()
    sink.handle(pumps(0, 80.0, "p1"))
    sink.handle(pumps(10, 79.5, "p1"))
    (metric,) = [m for m in sink.prometheus() if m.name == "facility_device_state_waiting_batches"]
    assert metric.samples[()] == 1
    sink.tick(clock.now)
    assert levels(store) == {"p1": (T0 + 10_000, 79.5)}
    sink.handle(pumps(20, 79.0, "p1"))
    sink.checkpoint()  # no checkpoint file: still writes the device states
    assert levels(store) == {"p1": (T0 + 20_000, 79.0)}


class FailingWrites:
    """A device_state writer that fails while `down`; records what it wrote."""

    def __init__(self) -> None:
        self.down = False
        self.written: list[int] = []

    def __call__(self, site: Site, merged: Batch) -> None:
        if self.down:
            raise ConnectionError("the database is away")
        self.written.append(len(merged))


def test_a_failed_write_keeps_what_waited_and_a_retry_does_not_double_it() -> None:
    writer = FailingWrites()
    writes = DeviceStateWrites(SITE, writer, every_s=1.0, monotonic=Seconds())
    first = pumps(0, 80.0, "p1", "p2")
    writer.down = True
    with pytest.raises(ConnectionError):  # the gateway retries the batch, unacked
        writes.add(first)
    with pytest.raises(ConnectionError):
        writes.add(first)  # the retry brings the same batch
    assert writes.waiting == 1
    writes.flush()  # the tick: logged, kept
    assert writes.waiting == 1
    writer.down = False
    writes.add(pumps(10, 79.5, "p1"))
    assert writer.written == [3]  # both batches, once each, in one write
    assert writes.waiting == 0
