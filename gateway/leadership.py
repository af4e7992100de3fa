"""Shard leadership: which of a shard's gateway processes is the active one.

Any number of gateways may run for one shard; the one holding the shard's lock (a PostgreSQL
session-level advisory lock, `db.leader_lock`) is the leader, the others are standbys that
try for the lock every `lock-poll-s`. Only the leader connects to MQTT with the shard's
client id, so the broker's persistent session queues the stream while leadership moves.

States and moves (`Leadership`, driven by `StandbyLoop`):

    standby --lock acquired--> leader --lock lost / stop--> standby (try again)

Fencing: while leader, the lock is checked every `lock-check-s` (a cheap query on the lock's
own connection). A failed check fences at once — `holds` turns False, so the `FencedSource`
acks nothing more — and ends the term: the loop disconnects from MQTT and goes back to
standby. The lock itself is the judge; nothing here trusts a clock across processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from facility.clock import Clock, now_ms
from facility.errors import SettingsError
from facility.prometheus import Metric
from gateway.mqtt import InboundMessage
from gateway.pipeline import MessageSource

log = logging.getLogger(__name__)

Role = Literal["leader", "standby"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardSettings:
    name: str | None = None
    """The shard this gateway serves (default: `site-<site id>`, `site-portfolio`, or with
    `sites` `sites-<id>+<id>`); one lock and one MQTT session per shard."""
    topics: tuple[str, ...] = ()
    """The shard's MQTT topic filters (default: every telemetry topic of its sites)."""
    sites: tuple[str, ...] = ()
    """The sites of a portfolio this shard serves (default: all); the gateway knows, and judges
    silent, only their devices (`gateway.shard_site`)."""
    standby: bool = False
    """Hot standby: take the shard's leader lock in the work-order database (PostgreSQL
    only) before connecting to MQTT, so several gateways may run for one shard."""
    lock_poll_s: float = 0.5
    """How often a standby tries for the shard's lock."""
    lock_check_s: float = 0.5
    """How often the leader checks that it still holds the lock (fencing)."""
    replay_margin_s: float = 60.0
    """On takeover the rules replay stored readings from the checkpoint's oldest recent
    reading: devices silent this long before its newest reading are not looked for."""
    replay_max_s: float = 3600.0
    """The longest gap a takeover replays from the store (its most recent part)."""

    def __post_init__(self) -> None:
        if self.name is not None and not self.name.strip():
            raise SettingsError("shard", "must not be empty")
        for name in ("lock_poll_s", "lock_check_s", "replay_margin_s", "replay_max_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"shard-{name.replace('_', '-')}", "must be more than 0")
        for site in self.sites:
            if not site.strip():
                raise SettingsError("shard-sites", "a site id must not be empty")
        if len(set(self.sites)) != len(self.sites):
            raise SettingsError("shard-sites", "names a site twice")
        for topic in self.topics:
            if not topic or topic.startswith("$share/"):
                raise SettingsError(
                    "shard-topics", f"{topic!r} is not a topic filter (no $share: one reader)"
                )


class LeaderLock(Protocol):
    """The shard's lock, held on a connection of its own (`db.leader_lock` for PostgreSQL)."""

    def try_acquire(self) -> bool:
        """True when this process now holds the lock; False when another does or the
        database cannot be reached (the caller tries again)."""
        ...

    def check(self) -> bool:
        """True while the lock is still held (its connection alive); never raises."""
        ...

    def release(self) -> None:
        """Give the lock up (close its connection); never raises."""
        ...


class Leadership:
    """The role of this process for its shard, and the fence the acks go through."""

    def __init__(self, shard: str, lock: LeaderLock, *, clock_ms: Clock = now_ms) -> None:
        self.shard = shard
        self.lock = lock
        self.clock_ms = clock_ms
        self._mutex = threading.Lock()
        """One user of the lock's connection at a time (the watcher, paho's thread)."""
        self._holds = False
        self.role: Role = "standby"
        self.since_ms = clock_ms()
        self.terms = 0
        """Times this process became the leader."""
        self.fenced = 0
        """Terms that ended because the lock was lost (not by stopping)."""
        self.acked = 0
        """Messages acked while leader (through `FencedSource`)."""

    @property
    def holds(self) -> bool:
        """True while this process is the leader and its lock has not failed a check."""
        return self._holds

    def try_acquire(self) -> bool:
        with self._mutex:
            if not self.lock.try_acquire():
                return False
            self._holds = True
            self.role = "leader"
            self.since_ms = self.clock_ms()
            self.terms += 1
        log.info("shard %s: leader (term %d)", self.shard, self.terms)
        return True

    def check(self) -> bool:
        """Check the lock now; a failed check fences (False from then on)."""
        if not self._holds:
            return False
        with self._mutex:
            held = self.lock.check()
        if not held:
            self.fence("the shard's lock was lost")
        return held

    def fence(self, reason: str) -> None:
        """Stop acting as leader at once (acks stop); the loop ends the term."""
        if self._holds:
            self._holds = False
            self.fenced += 1
            self.role = "standby"
            self.since_ms = self.clock_ms()
            log.warning("shard %s: fenced (%s): no more acks; standby", self.shard, reason)

    def step_down(self) -> None:
        """End the term: give the lock up and become a standby."""
        self._holds = False
        with self._mutex:
            self.lock.release()
        if self.role != "standby":
            self.role = "standby"
            self.since_ms = self.clock_ms()
            log.info("shard %s: standby", self.shard)

    def report(self) -> dict[str, object]:
        """The role part of /health."""
        return {"shard": self.shard, "role": self.role, "since_ms": self.since_ms,
                "terms": self.terms, "fenced": self.fenced}  # fmt: skip

    def prometheus(self) -> list[Metric]:
        shard = (("shard", self.shard),)
        return [
            Metric("facility_shard_leader", "gauge",
                   "1 while this gateway is its shard's active one, 0 while it stands by.",
                   {shard: 1 if self.role == "leader" else 0}),
            Metric("facility_shard_role_since_seconds", "gauge",
                   "When this gateway took its current role (Unix time).",
                   {shard: self.since_ms / 1000}),
            Metric("facility_shard_terms_total", "counter",
                   "Times this gateway became its shard's leader.", {shard: self.terms}),
            Metric("facility_shard_fenced_total", "counter",
                   "Leader terms ended because the shard's lock was lost.", {shard: self.fenced}),
            Metric("facility_shard_acked_messages_total", "counter",
                   "MQTT messages this gateway acked as its shard's leader.", {shard: self.acked}),
        ]  # fmt: skip


class FencedSource:
    """A message source whose acks pass only while the leadership holds."""

    def __init__(self, source: MessageSource, leadership: Leadership) -> None:
        self.source = source
        self.leadership = leadership
        self.refused = 0
        """Messages not acked because the lock was lost (the next leader gets them)."""

    @property
    def connected(self) -> bool:
        return bool(getattr(self.source, "connected", True)) and self.leadership.holds

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        return self.source.take(max_messages, timeout_s, max_bytes)

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        if not self.leadership.holds:
            self.refused += len(messages)
            return
        self.source.ack(messages)
        self.leadership.acked += len(messages)  # one writer: the gateway's commit thread


class Term(Protocol):
    """What a gateway does with a term of leadership (`runtime.services.gateway`)."""

    def take_over(self) -> None:
        """Became the leader: bring the rules up to date, connect to MQTT."""
        ...

    def serve(self, end: threading.Event) -> None:
        """Consume until `end` is set."""
        ...

    def step_down(self) -> None:
        """The term ended: disconnect from MQTT (nothing more is acked)."""
        ...


FENCED_WAIT_POLLS = 5
"""A fenced leader waits this many poll intervals before trying for the lock again: its
database link just failed, and the standbys (polling all along) should win the lock."""


class StandbyLoop:
    """standby → leader → standby ..., until stopped."""

    def __init__(
        self, leadership: Leadership, term: Term, *, poll_s: float, check_s: float
    ) -> None:
        self.leadership = leadership
        self.term = term
        self.poll_s = poll_s
        self.check_s = check_s

    def wait_for_lock(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self.leadership.try_acquire():
                return True
            stop.wait(self.poll_s)
        return False

    def run(self, stop: threading.Event) -> None:
        while self.wait_for_lock(stop):
            fenced = self.leadership.fenced
            end = threading.Event()
            watcher = threading.Thread(
                target=self._watch, args=(stop, end), name="shard-lock-check", daemon=True
            )
            watcher.start()
            try:
                self.term.take_over()
                if self.leadership.holds:
                    self.term.serve(end)
            finally:
                end.set()
                watcher.join()
                self.term.step_down()
                self.leadership.step_down()
            if self.leadership.fenced > fenced:  # lost the lock: let a standby have it first
                stop.wait(FENCED_WAIT_POLLS * self.poll_s)

    def _watch(self, stop: threading.Event, end: threading.Event) -> None:
        """Check the lock every `check_s`; end the term when it fails or on stop."""
        while not end.wait(self.check_s):
            if stop.is_set() or not self.leadership.check():
                break
        end.set()
