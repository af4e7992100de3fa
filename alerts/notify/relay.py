"""Delivering one channel's notices in order, with retries, from the outbox.

One thread per channel, so a dead chat robot delays only its own group. A notice is retried
with capped exponential backoff and jitter (honouring Retry-After) until it is sent, refused for
good, or too old to matter (`max_age_s`: a page about a pump that ran dry yesterday is noise);
each outcome is counted. The cursor is in the work-order database, held by one relay per
channel at a time (`SharedCursor`: every gateway on the database runs relays, one sends); it is
saved after every notice, so a restart or a takeover resends at most the notice in flight
(receivers de-duplicate on the event id).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from alerts.notify.interface import Channel, Notice, Outcome, Verdict
from alerts.notify.outbox import Cursor, OutboxRow, SharedCursor, read_after
from alerts.store import WorkOrder
from facility.clock import Clock, now_ms
from facility.prometheus import Metric

log = logging.getLogger(__name__)

READ_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Filter:
    """Which notices a channel takes; empty means all."""

    events: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()

    def accepts(self, event: str, order: WorkOrder) -> bool:
        return (not self.events or event in self.events) and (
            not self.severities or order.severity in self.severities
        )


@dataclass(frozen=True, slots=True)
class RelaySettings:
    poll_s: float = 0.5
    """How often a channel's relay looks for new work-order events."""
    max_age_s: float = 3600.0
    """Older notices are dropped (and counted), not sent late."""
    retry_base_s: float = 1.0
    """First wait before a failed send is tried again; doubles up to the cap."""
    retry_cap_s: float = 300.0
    """Longest wait between tries of a failed send."""
    timeout_s: float = 10.0
    """Timeout of one webhook request."""
    hole_grace_s: float = 30.0
    """How long a gap in the event ids is waited for (a transaction still committing)."""
    lease_s: float = 30.0
    """How long a channel stays with a relay that stopped renewing (its gateway died)."""


NoticeFactory = Callable[[OutboxRow, WorkOrder], Notice]
"""Adds the names and link a channel needs to an outbox row (see `alerts.notify.setup`)."""


@dataclass(slots=True)
class RelayCounts:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    stale: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, detail: str = "") -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)
            if detail:
                self.last_error = detail


class Relay:
    def __init__(
        self,
        channel: Channel,
        engine: Engine,
        owner: str,
        make_notice: NoticeFactory,
        *,
        accepts: Filter = Filter(),
        settings: RelaySettings = RelaySettings(),
        clock_ms: Clock = now_ms,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.channel = channel
        self.engine = engine
        self.shared = SharedCursor(engine, channel.name, owner, int(settings.lease_s * 1000))
        self.cursor: Cursor | None = None
        """Set while this relay holds the channel."""
        self.make_notice = make_notice
        self.accepts = accepts
        self.settings = settings
        self.clock_ms = clock_ms
        self.counts = RelayCounts()
        self._client = httpx.Client(timeout=settings.timeout_s, transport=transport)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"notify-{self.channel.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._client.close()
        if self._thread is not None and self._thread.is_alive():
            return  # still sending: handing the channel over now would send that notice twice
        if self.cursor is not None:
            try:
                self.shared.release()  # another gateway may take over at once
            except Exception:  # the database is away: the lease runs out by itself
                log.warning("notifications to %s: could not hand the channel back",
                            self.channel.name)  # fmt: skip
            self.cursor = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.pass_once()
            except Exception:  # the database may be briefly away; try again next poll
                log.exception("notifications to %s: reading the outbox failed", self.channel.name)
                busy = False
            if not busy:
                self._stop.wait(self.settings.poll_s)

    def pass_once(self) -> bool:
        """Handle what is new in the outbox; True if a full page moved the floor (read on).

        Does nothing while another relay (another gateway's) holds the channel."""
        if self.cursor is None:
            self.cursor = self.shared.acquire(self.clock_ms())
            if self.cursor is None:
                return False
            log.info("notifications to %s: sending from this gateway", self.channel.name)
        elif not self.shared.renew(self.clock_ms()):
            return self._lost()
        cursor = self.cursor
        floor_before = cursor.floor
        rows = read_after(self.engine, cursor.floor, limit=READ_LIMIT)
        grace_ms = int(self.settings.hole_grace_s * 1000)
        before = (cursor.floor, len(cursor.done))
        for row in rows:
            if self._stop.is_set():
                break
            if cursor.handled(row.event_id):
                continue
            order = row.order
            if order is None or not self.accepts.accepts(row.event, order):
                cursor.mark(row.event_id)  # nothing to send; saved with the next change
                continue
            if not self._deliver(row, order):
                if self.cursor is not None:  # stopping: this notice stays for the next start
                    self._save(cursor)
                return False
            cursor.mark(row.event_id)
            cursor.advance(self.clock_ms(), grace_ms)
            if not self._save(cursor):  # a notice handled is never handled again
                return False
        cursor.advance(self.clock_ms(), grace_ms)
        if (cursor.floor, len(cursor.done)) != before and not self._save(cursor):
            return False
        return len(rows) >= READ_LIMIT and cursor.floor > floor_before

    def _save(self, cursor: Cursor) -> bool:
        if self.shared.renew(self.clock_ms(), cursor):
            return True
        return self._lost()

    def _lost(self) -> bool:
        """Another relay took the channel (this one stalled past its lease): let it send."""
        log.warning("notifications to %s: another gateway took over", self.channel.name)
        self.cursor = None
        return False

    def _wait(self, delay_s: float) -> bool:
        """Wait before a retry, renewing the lease; False when stopping or the channel is lost."""
        deadline = time.monotonic() + delay_s
        step = max(0.05, self.settings.lease_s / 3)
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, step)):
                return False
            if not self.shared.renew(self.clock_ms()):
                return self._lost()
        return True

    # -- one notice ------------------------------------------------------------------------

    def _deliver(self, row: OutboxRow, order: WorkOrder) -> bool:
        """Send until a final outcome; False only when asked to stop first."""
        notice = self.make_notice(row, order)
        attempt = 0
        while True:
            if self.clock_ms() - row.at_ms > self.settings.max_age_s * 1000:
                self.counts.add("stale", f"event {row.event_id} older than max_age_s")
                log.warning(
                    "notification %d to %s dropped: older than %gs",
                    row.event_id, self.channel.name, self.settings.max_age_s,
                )  # fmt: skip
                return True
            verdict, retry_after = self._send(notice)
            if verdict.outcome is Outcome.SENT:
                self.counts.add("sent")
                return True
            if verdict.outcome is Outcome.FAILED:
                self.counts.add("failed", verdict.detail)
                log.error(
                    "notification %d to %s refused: %s",
                    row.event_id, self.channel.name, verdict.detail,
                )  # fmt: skip
                return True
            self.counts.add("retries", verdict.detail)
            delay = self._backoff(attempt, retry_after)
            attempt += 1
            log.warning(
                "notification %d to %s: %s; retrying in %.1fs",
                row.event_id, self.channel.name, verdict.detail, delay,
            )  # fmt: skip
            if not self._wait(delay):
                return False

    def _send(self, notice: Notice) -> tuple[Verdict, float | None]:
        request = self.channel.request(notice, self.clock_ms())
        try:
            response = self._client.post(request.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as exc:
            return Verdict(Outcome.RETRY, f"{type(exc).__name__}: {exc}"), None
        return self.channel.verdict(response.status_code, response.content), _retry_after(
            response.headers
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        delay = min(s.retry_cap_s, s.retry_base_s * 2.0**attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.retry_cap_s))
        return delay

    # -- metrics ---------------------------------------------------------------------------

    def prometheus(self) -> list[Metric]:
        label = (("channel", self.channel.name),)
        c = self.counts
        with c.lock:
            return [
                Metric(f"facility_notifications_{name}_total", "counter", help_, {label: value})
                for name, help_, value in (
                    ("sent", "Notifications the receiver accepted.", c.sent),
                    ("failed", "Notifications the receiver refused for good.", c.failed),
                    ("retries", "Delivery attempts that will be retried.", c.retries),
                    ("stale", "Notifications dropped as older than max_age_s.", c.stale),
                )
            ]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from chat robots; fall back to our own backoff


def merge_metrics(relays: Collection[Relay]) -> list[Metric]:
    """One metric per name with a sample per channel, as Prometheus expects."""
    merged: dict[str, Metric] = {}
    for relay in relays:
        for metric in relay.prometheus():
            seen = merged.get(metric.name)
            samples = {**seen.samples, **metric.samples} if seen else metric.samples
            merged[metric.name] = Metric(metric.name, metric.type, metric.help, samples)
    return list(merged.values())
