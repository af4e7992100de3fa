"""A gateway catching up a backlog: the whole pipeline's CPU per message, in one process.

    python bench/backlog.py [--per-message 1] [--readings-per-device 100] [--runs 4]

The ingest benchmark's stream (`bench/hotpath.py`'s: 1,000 devices) waits in full at a fake
message source, as a backlog waits at the broker after a stall; the gateway
(`gateway.pipeline.Gateway`, pipelined: decode on the caller's thread, the rules and the store
each on their own) takes it in its usual batches (5,000 messages or 4 MB) until every message
is acked. The rules stage is the real one (the default pack, `AlertsSink` with a SQLite
work-order store); the store stage encodes line protocol and gzips it as the writer does, into
memory. Two ways of running the rules stage, alternating in the same process:

- merged: batches that queued while the rules were busy are evaluated together
  (`Gateway._evaluate`, what the gateway does);
- alone: every batch evaluated by itself (the gateway before that change).

Prints CPU µs per message (all threads, `process_time`), wall time, and how many evaluations
the rules made for how many batches; best of `--runs` each, the order of the two swapped
every run (whichever runs second in a process tends to be slower).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.engine import RuleEngine  # noqa: E402
from alerts.rules import default_rule_set  # noqa: E402
from alerts.sink import AlertsSink  # noqa: E402
from alerts.store import WorkOrderStore  # noqa: E402
from db.engine import make_engine  # noqa: E402
from facility.batch import Batch  # noqa: E402
from facility.site import Site  # noqa: E402
from gateway import pipeline  # noqa: E402
from gateway.dead_letters import MemoryDeadLetters  # noqa: E402
from gateway.decoder import Decoder  # noqa: E402
from gateway.mqtt import InboundMessage  # noqa: E402
from ingest import gzip_body, line_protocol  # noqa: E402
from tests.integration.load import hotpath_stream  # noqa: E402


class Backlog:
    """Every message available at once; sets `done` when the last is acked. A take costs a
    slice (the byte limit found in prefix sums), not a step per message: the source's own
    cost stays out of the figures."""

    def __init__(self, messages: Sequence[InboundMessage]) -> None:
        self.messages = messages
        self.bytes_before = np.zeros(len(messages) + 1, np.int64)
        np.cumsum([len(m.payload) for m in messages], out=self.bytes_before[1:])
        self.next = 0
        self.acked = 0
        self.done = threading.Event()

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        start = self.next
        end = min(start + max_messages, len(self.messages))
        if max_bytes and end > start:  # as the consumer: up to the message that reaches it
            full = self.bytes_before[start] + max_bytes
            end = min(end, max(start + 1, int(np.searchsorted(self.bytes_before, full))))
        self.next = end
        if end == start:
            self.done.wait(0.05)
        return list(self.messages[start:end])

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        self.acked += len(messages)
        if self.acked >= len(self.messages):
            self.done.set()


class EncodingStore:
    """The store stage's CPU: line protocol and gzip, as the writer makes its requests."""

    def __init__(self, site: Site) -> None:
        self.keys = line_protocol.kind_keys(site)

    def handle(self, batch: Batch) -> None:
        gzip_body.compress(line_protocol.encode_body(self.keys, batch)[0], 1)


def run_once(
    site: Site, messages: list[InboundMessage], directory: Path
) -> tuple[float, float, int, int]:
    """CPU seconds, wall seconds, evaluations, batches."""
    store = WorkOrderStore(make_engine(f"sqlite:///{directory / f'wo-{time.monotonic_ns()}.db'}"))
    store.migrate()
    sink = AlertsSink(site, RuleEngine.from_rule_set(site, default_rule_set()), store)
    gateway = pipeline.Gateway(
        Decoder(site), [sink], MemoryDeadLetters(), durable=EncodingStore(site)
    )
    source = Backlog(messages)
    cpu, wall = time.process_time(), time.perf_counter()
    gateway.run(source, source.done)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    store.engine.dispose()
    metrics = gateway.metrics
    assert source.acked == len(messages), "the backlog was not drained"
    return cpu, wall, metrics.rules_evaluations, metrics.batches_handled


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-message", type=int, default=1, help="readings per message")
    parser.add_argument("--readings-per-device", type=int, default=100)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    site, data = hotpath_stream(args.readings_per_device, args.per_message)
    messages = [InboundMessage(t, p, i + 1, 1, 1) for i, (t, p) in enumerate(data.messages)]
    merged_waiting = pipeline._waiting

    def alone(first: object, pending: object) -> tuple[list[object], bool]:
        return [first], False

    best: dict[str, tuple[float, float, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            modes = [("alone", alone), ("merged", merged_waiting)]
            for label, waiting in modes if run % 2 == 0 else modes[::-1]:  # A B, then B A
                pipeline._waiting = waiting  # type: ignore[assignment]
                got = run_once(site, messages, Path(tmp))
                if label not in best or got[0] < best[label][0]:
                    best[label] = got
        pipeline._waiting = merged_waiting
    print(
        f"{len(messages):,} messages of {args.per_message} reading(s) "
        f"({data.readings:,} readings) as one backlog; best of {args.runs}"
    )
    header = f"{'rules':8s} {'CPU µs/message':>15s} {'µs/reading':>11s} {'wall s':>7s}"
    print(f"{header}  evaluations")
    for label, (cpu, wall, evaluations, batches) in best.items():
        print(
            f"{label:8s} {cpu * 1e6 / len(messages):15.2f} {cpu * 1e6 / data.readings:11.2f} "
            f"{wall:7.2f}  {evaluations} for {batches} batches"
        )


if __name__ == "__main__":
    main()
