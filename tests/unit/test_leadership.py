"""Shard leadership with fakes at the seams: a lock the test holds or breaks, a message
source that records acks, a term that records what the loop asked of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from facility.errors import SettingsError
from gateway.leadership import (
    FencedSource,
    Leadership,
    ShardSettings,
    StandbyLoop,
)
from gateway.mqtt import InboundMessage
from tests.fakes import FakeClock


class FakeLock:
    """A lock another process may hold (`taken`) and whose connection the test may cut."""

    def __init__(self) -> None:
        self.taken = False
        self.ours = False
        self.alive = True
        self.acquires = 0
        self.releases = 0

    def try_acquire(self) -> bool:
        self.acquires += 1
        if self.taken or not self.alive:
            return False
        self.ours = True
        return True

    def check(self) -> bool:
        return self.ours and self.alive

    def release(self) -> None:
        self.releases += 1
        self.ours = False

    def cut(self) -> None:
        """The lock's connection dies (pg_terminate_backend): PostgreSQL frees the lock."""
        self.alive = False
        self.ours = False


class Source:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.connected = True

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        return []

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        self.acked.extend(m.mid for m in messages)


def message(mid: int) -> InboundMessage:
    return InboundMessage("t", b"{}", mid, 1, 1)


def test_a_standby_becomes_leader_only_with_the_lock() -> None:
    lock, clock = FakeLock(), FakeClock(1000)
    leadership = Leadership("north", lock, clock_ms=clock)
    lock.taken = True
    assert not leadership.try_acquire()
    assert leadership.role == "standby"
    assert not leadership.holds
    lock.taken = False
    clock.now = 5000
    assert leadership.try_acquire()
    assert (leadership.role, leadership.holds, leadership.since_ms) == ("leader", True, 5000)
    assert leadership.report() == {"shard": "north", "role": "leader", "since_ms": 5000,
                                   "terms": 1, "fenced": 0}  # fmt: skip


def test_a_failed_check_fences_at_once_and_acks_stop() -> None:
    lock = FakeLock()
    leadership = Leadership("north", lock)
    source = Source()
    fenced = FencedSource(source, leadership)
    assert leadership.try_acquire()
    fenced.ack([message(1), message(2)])
    assert leadership.check()
    lock.cut()
    assert not leadership.check()
    fenced.ack([message(3)])
    assert source.acked == [1, 2]  # nothing acked after the lock was lost
    assert leadership.acked == 2
    assert fenced.refused == 1
    assert not fenced.connected  # the pipeline does not count itself caught up either
    assert (leadership.role, leadership.fenced) == ("standby", 1)
    assert not leadership.check()  # stays fenced; no second count
    assert leadership.fenced == 1


def test_step_down_releases_the_lock_and_a_new_term_counts() -> None:
    lock = FakeLock()
    leadership = Leadership("north", lock)
    assert leadership.try_acquire()
    leadership.step_down()
    assert (lock.releases, lock.ours, leadership.role) == (1, False, "standby")
    assert leadership.try_acquire()
    assert leadership.terms == 2
    text = {m.name: m for m in leadership.prometheus()}
    assert text["facility_shard_leader"].samples == {(("shard", "north"),): 1}
    assert text["facility_shard_terms_total"].samples == {(("shard", "north"),): 2}


class RecordingTerm:
    """A term that serves until its end is set; a hook may act while it serves."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.serving = threading.Event()

    def take_over(self) -> None:
        self.events.append("take_over")

    def serve(self, end: threading.Event) -> None:
        self.events.append("serve")
        self.serving.set()
        end.wait(10)
        self.events.append("served")

    def step_down(self) -> None:
        self.events.append("step_down")
        self.serving.clear()


def _until(done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the loop did not get there"
        time.sleep(0.01)


def _run(loop: StandbyLoop, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    return thread


def test_the_loop_waits_for_the_lock_serves_and_steps_down_on_stop() -> None:
    lock, stop = FakeLock(), threading.Event()
    lock.taken = True
    leadership = Leadership("north", lock)
    term = RecordingTerm()
    thread = _run(StandbyLoop(leadership, term, poll_s=0.01, check_s=0.01), stop)
    assert not term.serving.wait(0.1)  # another process holds the lock: no term
    assert lock.acquires >= 2  # it keeps polling
    lock.taken = False
    assert term.serving.wait(5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert term.events == ["take_over", "serve", "served", "step_down"]
    assert (leadership.role, lock.ours, leadership.fenced) == ("standby", False, 0)


def test_a_lost_lock_ends_the_term_and_the_loop_returns_to_standby() -> None:
    lock, stop = FakeLock(), threading.Event()
    leadership = Leadership("north", lock)
    term = RecordingTerm()
    thread = _run(StandbyLoop(leadership, term, poll_s=0.01, check_s=0.01), stop)
    try:
        assert term.serving.wait(5)
        lock.cut()  # the process stays alive; its lock connection does not
        lock.alive = True  # the database is back, but another standby...
        lock.taken = True  # ...took the lock meanwhile
        _until(lambda: term.events[-1:] == ["step_down"])
        assert term.events == ["take_over", "serve", "served", "step_down"]
        assert (leadership.role, leadership.fenced) == ("standby", 1)
        acquires = lock.acquires
        lock.taken = False  # the other leader went away: this one leads again
        assert term.serving.wait(5)
        assert lock.acquires > acquires
        assert leadership.terms == 2
    finally:
        stop.set()
        thread.join(5)


def test_the_reconnect_gate_says_no_once_the_lock_is_gone() -> None:
    """The MQTT client asks `check` before reconnecting: a leader whose session was taken
    over by a newer leader (and whose lock is gone) stays away."""
    lock = FakeLock()
    leadership = Leadership("north", lock)
    assert not leadership.check()  # a standby never reconnects
    assert leadership.try_acquire()
    assert leadership.check()  # a broker restart: the leader reconnects
    lock.cut()
    assert not leadership.check()


@pytest.mark.parametrize(
    ("fields", "setting"),
    [
        ({"name": " "}, "shard"),
        ({"lock_poll_s": 0}, "shard-lock-poll-s"),
        ({"lock_check_s": -1}, "shard-lock-check-s"),
        ({"topics": ("$share/g/facility/#",)}, "shard-topics"),
        ({"topics": ("",)}, "shard-topics"),
    ],
)
def test_bad_shard_settings_name_the_setting(fields: dict[str, object], setting: str) -> None:
    with pytest.raises(SettingsError) as caught:
        ShardSettings(**fields)  # type: ignore[arg-type]
    assert caught.value.setting == setting
