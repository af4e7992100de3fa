"""Bringing a shard's rules up to date when a gateway takes the shard over.

The new leader loads the shard's last checkpoint (`alerts.checkpoint_store`) and replays,
from the time-series store's history reader, the readings stored since then: those the old
leader acked after its last checkpoint are in the store and will never come from the broker
again. Readings it had not acked come again from the broker's session afterwards.

Why this is exact: the engine ignores, per device, any reading not newer than that device's
last one (`RuleEngine.evaluate`), and each device's stored readings are a prefix of what it
sent (acks, lanes and the store keep a device's order). So replaying from before the oldest
"last reading" of the devices in the checkpoint, in time order, feeds each device exactly
the readings it missed, once; the broker's redeliveries that follow are newer than the
replayed ones or duplicates of them. A `for` timer running at the checkpoint keeps its start,
so an episode spanning the failover is one episode with its true start (the work-order
store's episode key then files it once, whoever saw it first).

The replay ends where the stream can have got to: the checkpoint's newest reading plus the
wall time since it was saved (plus the margin), or the wall clock plus the margin when there
is no checkpoint; a backlog being drained is behind the wall clock, and a sparse range would
cost a store query per chunk for nothing.

Bounds: devices silent for more than `margin_ms` before the checkpoint's newest reading are
not waited for (the replay starts at most that far before it), and a gap longer than
`max_gap_ms` (wall clock) is replayed only over its last `max_gap_ms`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from alerts.checkpoint_store import RuleCheckpointStore
from alerts.engine import RuleEngine
from alerts.rule_language import NEVER
from alerts.sink import AlertsSink
from facility.batch import Batch

log = logging.getLogger(__name__)


class History(Protocol):
    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """Every stored reading of the site in [start_ms, end_ms)."""
        ...


@dataclass(frozen=True, slots=True)
class Replayed:
    start_ms: int
    end_ms: int
    readings: int
    checkpoint: bool = False
    """A checkpoint was loaded (else the engine kept its state: none saved yet)."""
    load_s: float = 0.0
    replay_s: float = 0.0


def take_over(
    sink: AlertsSink,
    checkpoints: RuleCheckpointStore,
    history: History,
    *,
    now_ms: int,
    margin_ms: int,
    max_gap_ms: int,
) -> Replayed:
    """Load the shard's checkpoint into the sink's engine (when there is one) and replay the
    stored readings since it, filing what they raise (an episode already filed is not filed
    again)."""
    began = time.monotonic()
    saved = checkpoints.load()
    end = now_ms + margin_ms  # a device clock a little ahead of ours
    if saved is None:
        start = now_ms - margin_ms
    else:
        sink.restore(saved)
        start = replay_start(sink.engine, saved.saved_ms, margin_ms)
        newest = newest_reading(sink.engine)
        if newest is not None:  # the stream's time moved on about as the wall clock did
            end = min(end, newest + max(now_ms - saved.saved_ms, 0) + margin_ms)
    start = max(start, now_ms - max_gap_ms)
    loaded = time.monotonic()
    done = replay(history, sink.handle, start, max(end, start + 1))
    return dataclasses.replace(
        done, checkpoint=saved is not None, load_s=loaded - began,
        replay_s=time.monotonic() - loaded,
    )  # fmt: skip


def newest_reading(engine: RuleEngine) -> int | None:
    newest = [int(s.last_ts.max()) for s in engine.state.values() if len(s.last_ts)]
    value = max(newest, default=NEVER)
    return None if value <= NEVER else value


def replay_start(engine: RuleEngine, saved_ms: int, margin_ms: int) -> int:
    """Just after the oldest last reading among the devices that reported within `margin_ms`
    of the checkpoint's newest reading (stream time: a gateway draining a backlog is behind
    the wall clock); the checkpoint's time minus the margin when it holds no reading."""
    lasts = [s.last_ts[s.last_ts > NEVER] for s in engine.state.values()]
    seen = np.concatenate(lasts) if lasts else np.zeros(0, np.int64)
    if not len(seen):
        return saved_ms - margin_ms
    recent = seen[seen >= int(seen.max()) - margin_ms]
    return int(recent.min()) + 1


def replay(
    history: History,
    handle: Callable[[Batch], object],
    start_ms: int,
    end_ms: int,
    *,
    chunk_ms: int = 60_000,
) -> Replayed:
    """Hand the stored readings of [start_ms, end_ms) to `handle` in time order, a chunk at
    a time (the store answers chunks; the engine takes each kind sorted by time)."""
    readings = 0
    t = start_ms
    while t < end_ms:
        upto = min(t + chunk_ms, end_ms)
        batch = history.batch(t, upto)
        if len(batch):
            readings += len(batch)
            handle(
                Batch(
                    batch.site_id,
                    {
                        k: kb.take(np.argsort(kb.ts_ms, kind="stable"))
                        for k, kb in batch.kinds.items()
                    },
                )
            )
        t = upto
    return Replayed(start_ms, end_ms, readings)
