"""The gateway loop: take messages, decode, hand the batch to the sinks, then ack.

Messages are acked only after every sink returned (the store delivery made the batch durable,
the rules engine saw it). A failing sink is retried with capped exponential backoff and jitter,
without acking, so the broker keeps the messages; sinks that already took the batch are not
given it again. Rejected input is counted, dead-lettered and
logged truncated; it never stops the loop.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from facility.batch import BatchSink
from facility.clock import Clock, now_ms
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    max_batch_messages: int = 5000
    max_batch_bytes: int = 4 << 20
    """A batch closes at this many payload bytes too: 100-reading messages are big."""
    flush_interval_s: float = 0.2
    in_flight_batches: int = 2
    """Decoded batches that may wait for the store at once (memory bound: ~2 x 4 MB)."""
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0


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
    ) -> bool:
        """Hand the batch to every sink, retrying until it succeeds; False if stopped first."""
        if not len(result.batch):
            return True
        sinks = self.sinks if sinks is None else sinks
        delay = self.settings.retry_min_s
        done = 0  # sinks that already have the batch are not given it again
        while True:
            try:
                for sink in sinks[done:]:
                    sink.handle(result.batch)
                    done += 1
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
                return True

    def run(self, source: MessageSource, stop: threading.Event) -> None:
        """Take, decode and evaluate batches; make them durable and ack them on a second thread.

        The store's answer to one batch (tens of milliseconds of waiting on InfluxDB) overlaps
        decoding the next. At most `in_flight_batches` wait for durability; batches are made
        durable and acked in the order they were taken, so acks stay in receive order.
        """
        if self.durable is None:
            self._run_inline(source, stop)
            return
        pending: queue.Queue[_Pending | None] = queue.Queue(self.settings.in_flight_batches)
        committer = threading.Thread(
            target=self._commit, args=(source, pending, stop), name="gateway-commit", daemon=True
        )
        committer.start()
        s = self.settings
        try:
            while not stop.is_set() and committer.is_alive():
                messages = source.take(s.max_batch_messages, s.flush_interval_s, s.max_batch_bytes)
                if not messages:
                    continue
                result = self.decode(messages)
                if not self.deliver(result, stop):
                    break
                while committer.is_alive():
                    try:
                        pending.put(_Pending(messages, result), timeout=0.2)
                        break
                    except queue.Full:
                        continue
        finally:
            while committer.is_alive():
                try:
                    pending.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
            committer.join()

    def _commit(
        self, source: MessageSource, pending: queue.Queue[_Pending | None], stop: threading.Event
    ) -> None:
        assert self.durable is not None
        while (item := pending.get()) is not None:
            if not self.deliver(item.result, stop, (self.durable,)):
                return  # stopping: these messages stay unacked and come back
            source.ack(item.messages)

    def _run_inline(self, source: MessageSource, stop: threading.Event) -> None:
        s = self.settings
        while not stop.is_set():
            messages = source.take(s.max_batch_messages, s.flush_interval_s, s.max_batch_bytes)
            if not messages:
                continue
            result = self.decode(messages)
            if self.deliver(result, stop):
                source.ack(messages)


@dataclass(frozen=True, slots=True)
class _Pending:
    messages: list[InboundMessage]
    result: DecodeResult
