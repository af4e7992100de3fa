"""The gateway loop: take messages, decode, hand the batch to the sinks, then ack.

Messages are acked only after every sink returned (the store delivery made the batch durable,
the rules engine saw it). A failing sink is retried with capped exponential backoff and jitter,
without acking, so the broker keeps the messages; sinks that already took the batch are not
given it again. That is for transient failures (the store or the work-order database down):
a failure that would recur on the same batch must not reach this retry, or it stops ingestion
for good; the alerts stage quarantines a rule that raises instead (`alerts.quarantine`).
A sink that is full (`SinkBusyError`: the spool at its cap) has already waited for room; the
batch is tried again at once, unacked, and no new batch is taken meanwhile: back-pressure
that leaves the stream with the broker.
Rejected input is counted, dead-lettered and logged truncated; it never stops the loop.

Progress: a take that emptied the source's queue (fewer messages than a full batch, while
connected) shows the gateway had everything it had received by then; once the rules saw that
batch, sinks that judge silence are told (`ProgressSink.caught_up`). A stalled or blocked loop
tells them nothing, so they cannot mistake the backlog waiting at the broker for silence.
Before a batch from a full take, sinks that do less while draining a backlog are told
(`BacklogSink.behind`: the rules then write device states for several batches at once).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from facility.batch import Batch, BatchSink
from facility.clock import Clock, now_ms
from facility.errors import SinkBusyError
from facility.signals import block_async_signals
from gateway.dead_letters import DeadLetter, DeadLetterStore
from gateway.decoder import Decoder, DecodeResult
from gateway.metrics import GatewayMetrics
from gateway.mqtt import InboundMessage
from gateway.sequence import SequenceTracker

log = logging.getLogger(__name__)


class MessageSource(Protocol):
    """Where messages come from: the MQTT consumer, or a fake in tests."""

    def take(
        self, max_messages: int, timeout_s: float, max_bytes: int = 0
    ) -> list[InboundMessage]: ...

    def ack(self, messages: Sequence[InboundMessage]) -> None: ...


@runtime_checkable
class ProgressSink(Protocol):
    """A sink that judges silence (the rules): told how far the gateway is caught up."""

    def caught_up(self, as_of_ms: int) -> None: ...


@runtime_checkable
class BacklogSink(Protocol):
    """A sink that does less per batch while the gateway drains a backlog (the rules' device
    states): told before a batch from a full take, and `caught_up` after a short one."""

    def behind(self) -> None: ...

    def caught_up(self, as_of_ms: int) -> None: ...


@runtime_checkable
class BegunSink(Protocol):
    """A durable sink whose writes can begin before the batch ahead of them is durable
    (`ingest.delivery.Delivery`): `begin` queues the writes, `finish` waits for them."""

    def handle(self, batch: Batch) -> None: ...

    def begin(self, batch: Batch) -> object | None: ...

    def finish(self, batch: Batch, started: Any) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    max_batch_messages: int = 5000
    """A batch closes at this many messages."""
    max_batch_bytes: int = 4 << 20
    """A batch closes at this many payload bytes too: 100-reading messages are big."""
    flush_interval_s: float = 0.2
    """A batch closes this long after its first message, however small."""
    in_flight_batches: int = 2
    """Decoded batches that may wait for the store at once (memory bound: ~2 x 4 MB)."""
    retry_min_s: float = 0.5
    """First wait before a failed sink is tried again; doubles up to the max."""
    retry_max_s: float = 30.0
    """Longest wait between tries of a failed sink."""


class Gateway:
    def __init__(
        self,
        decoder: Decoder,
        sinks: Sequence[BatchSink],
        dead_letters: DeadLetterStore,
        *,
        durable: BatchSink | None = None,
        settings: PipelineSettings | None = None,
        metrics: GatewayMetrics | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.decoder = decoder
        self.sinks = tuple(sinks)
        self.durable = durable
        """The sink that makes a batch durable (the store delivery); run on its own thread."""
        self.dead_letters = dead_letters
        self.settings = settings or PipelineSettings()
        self.metrics = metrics or GatewayMetrics()
        self.sequences = SequenceTracker(decoder.site)
        self.clock_ms = clock_ms
        self._progress = [s for s in self.sinks if isinstance(s, ProgressSink)]
        self._backlog = [s for s in self.sinks if isinstance(s, BacklogSink)]
        self._begins = durable if isinstance(durable, BegunSink) else None
        """The durable sink, when its writes can begin ahead (`Gateway._begin`)."""

    def caught_up_at(self, source: MessageSource, messages: Sequence[InboundMessage]) -> int | None:
        """The wall time now if this take emptied the source's queue (the batch closed short of
        its caps) while connected, else None: the gateway is behind or cut off."""
        s = self.settings
        if not self._progress or not getattr(source, "connected", True):
            return None
        if len(messages) >= s.max_batch_messages or (
            s.max_batch_bytes and sum(len(m.payload) for m in messages) >= s.max_batch_bytes
        ):
            return None
        return self.clock_ms()

    def report_progress(self, as_of_ms: int | None) -> None:
        if as_of_ms is not None:
            for sink in self._progress:
                sink.caught_up(as_of_ms)

    def report_behind(self, as_of_ms: int | None) -> None:
        """Before the sinks get a batch: its take was full (`as_of_ms` None), more waits."""
        if as_of_ms is None:
            for sink in self._backlog:
                sink.behind()

    def decode(self, messages: Sequence[InboundMessage]) -> DecodeResult:
        now = self.clock_ms()
        result = self.decoder.decode(messages, now_ms=now)
        counts = result.counts()
        if result.rejections:
            self.dead_letters.add([DeadLetter.from_rejection(r, now) for r in result.rejections])
            first = result.rejections[0]
            log.warning(
                "rejected %d item(s) %s; first: %s on %s: %s | %s",
                len(result.rejections),
                dict(counts),
                first.reason,
                first.topic[:120],
                first.detail[:200],
                first.excerpt,
            )
        gaps = self.sequences.observe(result.batch)
        self.metrics.record_batch(
            messages=len(messages), accepted=len(result.batch), rejected=counts, gaps=gaps
        )
        return result

    def deliver(
        self,
        result: DecodeResult,
        stop: threading.Event | None = None,
        sinks: Sequence[BatchSink] | None = None,
        begun: tuple[BegunSink, object] | None = None,
    ) -> bool:
        """Hand the batch to every sink, retrying until it succeeds; False if stopped first.
        A batch handed to the gateway's own sinks (the rules) counts as an evaluation.
        `begun`: a sink that already began this batch (`BegunSink.begin`) and what it began;
        its first try finishes that, a retry hands it the batch afresh."""
        if not len(result.batch):
            return True
        evaluation = sinks is None
        sinks = self.sinks if sinks is None else sinks
        delay = self.settings.retry_min_s
        done = 0  # sinks that already have the batch are not given it again
        while True:
            try:
                for sink in sinks[done:]:
                    if begun is not None and sink is begun[0]:
                        (begun_sink, started), begun = begun, None
                        begun_sink.finish(result.batch, started)
                    else:
                        sink.handle(result.batch)
                    done += 1
            except SinkBusyError:
                self.metrics.record_backpressure()  # the sink waited itself: no backoff
                if stop is not None and stop.is_set():
                    return False
            except Exception:
                self.metrics.record_sink_failure()
                log.exception("a sink failed; retrying in %.1f s without acking", delay)
                wait = delay * (0.5 + random.random())  # jitter spreads retries of many gateways
                if stop is not None and stop.wait(wait):
                    return False
                if stop is None:
                    time.sleep(wait)
                delay = min(delay * 2, self.settings.retry_max_s)
            else:
                if evaluation:
                    self.metrics.record_rules_evaluation()
                return True

    def run(self, source: MessageSource, stop: threading.Event) -> None:
        """Take and decode batches; evaluate them, begin their store writes, and wait for them
        to be durable and ack them on three more threads.

        The rules (and work orders) and the store's answer (tens of milliseconds of waiting on
        InfluxDB) both overlap decoding the next batch and each other; a batch's store writes
        begin while the batch ahead is still being written (`BegunSink`). At most
        `in_flight_batches` wait in each stage; every stage takes batches in the order they were
        taken, and a batch is acked once it is durable and the rules saw it, so acks stay in
        receive order.

        The taking loop runs on a thread of its own that no signal interrupts
        (`facility.signals`), and the caller only waits for it: the MQTT consumer's
        `SimpleQueue.get` with a timeout, interrupted near its deadline, waits on forever, and
        a SIGTERM's handler set the stop event while the loop waited on an empty queue.
        `Thread.join` on the main thread, where the handlers run, takes interruptions.
        """
        freeze_startup_objects()
        failed: list[BaseException] = []

        def take_loop() -> None:
            block_async_signals()
            try:
                if self.durable is None:
                    self._run_inline(source, stop)
                else:
                    self._run_pipelined(source, stop)
            except BaseException as exc:  # raised again on the caller's thread
                failed.append(exc)

        loop = threading.Thread(target=take_loop, name="gateway-take", daemon=True)
        loop.start()
        loop.join()
        if failed:
            raise failed[0]

    def _run_pipelined(self, source: MessageSource, stop: threading.Event) -> None:
        size = self.settings.in_flight_batches
        to_rules: queue.Queue[_Pending | None] = queue.Queue(size)
        to_store: queue.Queue[_Pending | None] = queue.Queue(size)
        to_commit: queue.Queue[_Pending | None] = queue.Queue(1)
        commit_worker = threading.Thread(
            target=self._commit, args=(source, to_commit, stop), name="gateway-commit", daemon=True
        )
        workers = [
            threading.Thread(target=self._evaluate, args=(to_rules, stop), name="gateway-rules",
                             daemon=True),
            threading.Thread(target=self._begin, args=(to_store, to_commit, commit_worker),
                             name="gateway-store", daemon=True),
            commit_worker,
        ]  # fmt: skip
        for worker in workers:
            worker.start()
        rules_worker, store_worker, _ = workers
        s = self.settings
        try:
            while not stop.is_set() and all(w.is_alive() for w in workers):
                messages = source.take(s.max_batch_messages, s.flush_interval_s, s.max_batch_bytes)
                current = self.caught_up_at(source, messages)
                if not messages:
                    if current is not None:  # after the batches before it; skipped if full
                        with contextlib.suppress(queue.Full):
                            to_rules.put_nowait(_Pending([], None, caught_up_ms=current))
                    continue
                item = _Pending(messages, self.decode(messages), caught_up_ms=current)
                if not (_put(to_rules, item, rules_worker) and _put(to_store, item, store_worker)):
                    break
        finally:
            _put(to_rules, None, rules_worker)
            _put(to_store, None, store_worker)
            for worker in workers:
                worker.join()

    def _evaluate(self, pending: queue.Queue[_Pending | None], stop: threading.Event) -> None:
        """The rules stage: batches that queued while it was busy are evaluated together.

        Evaluating a batch has a fixed cost (every rule's numpy calls, a few milliseconds),
        so a stage that fell behind catches up by taking what waits in one evaluation
        instead of paying that cost per batch; the rules see the same readings in the same
        order (a device's readings are time-ordered within a batch). Nothing is held back
        to make a larger batch: a stage that keeps up sees each batch alone, at once."""
        while (item := pending.get()) is not None:
            items, last = _waiting(item, pending)
            taken = [i for i in items if i.result is not None]
            if taken:
                self.report_behind(items[-1].caught_up_ms)
                done = self.deliver(_merged(taken), stop)
                for batch in taken:
                    batch.rules_done = done  # False only when stopping
                    batch.evaluated.set()
                if not done:
                    return
            for done_item in items:
                self.report_progress(done_item.caught_up_ms)
            if last:
                return

    def _begin(
        self,
        pending: queue.Queue[_Pending | None],
        to_commit: queue.Queue[_Pending | None],
        commit: threading.Thread,
    ) -> None:
        """The store stage's first half: begin each batch's writes (`BegunSink.begin`) while
        the commit stage still waits for the batch before it, so the store's connections
        never wait for the gateway between batches. Batches begin in the order taken."""
        durable = self._begins
        while (item := pending.get()) is not None:
            assert item.result is not None  # progress-only items go to the rules stage alone
            if durable is not None:
                try:
                    item.begun = (durable, durable.begin(item.result.batch))
                except Exception:  # the commit stage hands it the batch afresh, with retries
                    log.exception("beginning a batch's store writes failed")
            if not _put(to_commit, item, commit):
                return
        _put(to_commit, None, commit)

    def _commit(
        self, source: MessageSource, pending: queue.Queue[_Pending | None], stop: threading.Event
    ) -> None:
        """The store stage's second half: wait until each batch is durable and the rules saw
        it, then ack it; in the order taken, so acks stay in receive order."""
        assert self.durable is not None
        while (item := pending.get()) is not None:
            assert item.result is not None
            if not self.deliver(item.result, stop, (self.durable,), item.begun):
                return  # stopping: these messages stay unacked and come back
            while not item.evaluated.wait(0.2):
                if stop.is_set():
                    return
            if not item.rules_done:
                return  # the rules stage stopped before this batch: it stays unacked
            source.ack(item.messages)

    def _run_inline(self, source: MessageSource, stop: threading.Event) -> None:
        s = self.settings
        while not stop.is_set():
            messages = source.take(s.max_batch_messages, s.flush_interval_s, s.max_batch_bytes)
            current = self.caught_up_at(source, messages)
            if not messages:
                self.report_progress(current)
                continue
            result = self.decode(messages)
            self.report_behind(current)
            if self.deliver(result, stop):
                self.report_progress(current)
                source.ack(messages)


def _waiting(first: _Pending, pending: queue.Queue[_Pending | None]) -> tuple[list[_Pending], bool]:
    """`first` and the items queued behind it (the queue holds `in_flight_batches` at most),
    and whether the end (None) came after them."""
    items = [first]
    while True:
        try:
            item = pending.get_nowait()
        except queue.Empty:
            return items, False
        if item is None:
            return items, True
        items.append(item)


def _merged(items: Sequence[_Pending]) -> DecodeResult:
    """The items' batches as one, in the order taken (the rejections stay with their own)."""
    results = [i.result for i in items if i.result is not None]
    if len(results) == 1:
        return results[0]
    first = results[0].batch
    return DecodeResult(Batch.concat(first.site_id, (r.batch for r in results)))


@dataclass(slots=True)
class _Pending:
    messages: list[InboundMessage]
    result: DecodeResult | None
    """None: no batch, only progress (an empty take)."""
    evaluated: threading.Event = field(default_factory=threading.Event)
    """Set when the rules stage is done with the batch (or gave up on it, stopping)."""
    rules_done: bool = False
    caught_up_ms: int | None = None
    """The take emptied the source's queue at this time (`Gateway.caught_up_at`)."""
    begun: tuple[BegunSink, object] | None = None
    """The durable sink and the writes it began for this batch (`Gateway._begin`)."""


def _put(
    pipe: queue.Queue[_Pending | None], item: _Pending | None, stage: threading.Thread
) -> bool:
    """Put without hanging on a stage that has stopped; False once the stage taking from
    `pipe` is gone. (Waiting while any stage lived hung a stop during a store outage: the
    commit stage had given up, its queue stayed full, and the rules stage waited for more.)"""
    while stage.is_alive():
        try:
            pipe.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between young collections: a batch's short-lived reading dicts mostly die
before one runs, instead of being scanned and promoted every 700 allocations."""


def freeze_startup_objects() -> None:
    """Move everything built at start-up (modules, site, rules) out of the collector's sight,
    so full collections scan only what the loop keeps; the decoder makes no cycles."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
