"""What beginning the next batch's writes before the batch ahead is durable buys, where the
store has cores to spare.

    .venv/bin/python bench/write_overlap.py [--batches 60] [--rounds 3]

The gateway loop (`gateway.pipeline.Gateway.run`) over prepared 100-reading messages, into a
store whose every request takes a time proportional to its points, give or take `--jitter`
(sleeping, so it costs this machine no CPU: a store on cores of its own), through two
connections; once with the batches' writes begun ahead (`Delivery.begin` / `finish`), once
handing each batch to the store only after the one before it (`Delivery.handle`). Rounds
alternate the two. On this two-core machine InfluxDB and the gateway share the cores, so the
end-to-end row of bench/ingest_bench.py cannot show this (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facility.batch import Batch  # noqa: E402
from gateway.dead_letters import MemoryDeadLetters  # noqa: E402
from gateway.decoder import Decoder  # noqa: E402
from gateway.mqtt import InboundMessage  # noqa: E402
from gateway.pipeline import Gateway, PipelineSettings  # noqa: E402
from ingest.delivery import Delivery, DeliverySettings  # noqa: E402
from ingest.interface import WriteResult  # noqa: E402
from ingest.spool import Spool  # noqa: E402
from tests.fakes import MessageList  # noqa: E402
from tests.integration.load import hotpath_stream  # noqa: E402


class SleepingStore:
    """A store connection whose requests take `per_point_s` per point, times 1 +- jitter."""

    name = "sleeping-store"

    def __init__(self, per_point_s: float, jitter: float, seed: int) -> None:
        self.per_point_s = per_point_s
        self.jitter = jitter
        self.random = random.Random(seed)

    def write(self, batch: Batch) -> WriteResult:
        factor = 1 + self.jitter * (2 * self.random.random() - 1)
        time.sleep(len(batch) * self.per_point_s * factor)
        return WriteResult(len(batch))

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


class HandleOnly:
    """The same delivery seen without `begin`: each batch written after the one before it."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def handle(self, batch: Batch) -> None:
        self.delivery.handle(batch)


def run(messages: list[InboundMessage], decoder: Decoder, ahead: bool, args: argparse.Namespace,
        seed: int) -> float:  # fmt: skip
    """Seconds from the first take to the last ack."""
    stores = [SleepingStore(args.per_point_us / 1e6, args.jitter, seed + i) for i in range(2)]
    with tempfile.TemporaryDirectory() as spool_dir:
        spool = Spool(Path(spool_dir), max_bytes=1 << 30)
        delivery = Delivery(stores, spool, on_rejected=lambda r: None,
                            settings=DeliverySettings())  # fmt: skip
        durable = delivery if ahead else HandleOnly(delivery)
        settings = PipelineSettings(max_batch_messages=args.messages_per_batch,
                                    flush_interval_s=0.0)  # fmt: skip
        gateway = Gateway(decoder, [], MemoryDeadLetters(), durable=durable, settings=settings)
        source = MessageList(messages, threading.Event())
        started = time.perf_counter()
        gateway.run(source, source.stop)
        elapsed = time.perf_counter() - started
        delivery.stop()
        assert len(source.acked) == len(messages), "every message acked"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--messages-per-batch", type=int, default=100)
    parser.add_argument(
        "--per-point-us", type=float, default=10.0,
        help="store time per point on one connection (InfluxDB 1.6 here: ~10-15)",
    )  # fmt: skip
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    per_device = args.batches * args.messages_per_batch * 100 // 1000  # 1,000 devices
    site, stream = hotpath_stream(per_device, 100)
    messages = [InboundMessage(t, p, i % 65535 + 1, 1, 0)
                for i, (t, p) in enumerate(stream.messages)]  # fmt: skip
    readings = stream.readings
    decoder = Decoder(site)
    print(f"{readings:,} readings in {len(messages):,} messages of 100, batches of "
          f"{args.messages_per_batch} messages, two connections, {args.per_point_us:g} µs per "
          f"point +- {args.jitter:.0%}")  # fmt: skip
    results: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for ahead in (round_ % 2 == 0, round_ % 2 == 1):
            results[ahead].append(run(messages, decoder, ahead, args, seed=round_))
    labels = {False: "each batch after the one before", True: "next batch begun ahead"}
    for ahead, label in labels.items():
        best = min(results[ahead])
        runs = " / ".join(f"{s:.2f}" for s in results[ahead])
        print(f"{label:34} {readings / best:12,.0f} readings/s  (s: {runs})")
    gain = min(results[False]) / min(results[True])
    print(
        f"begun ahead: {gain:.2f}x the throughput; the store alone could take "
        f"{2 / (args.per_point_us / 1e6):,.0f} points/s"
    )


if __name__ == "__main__":
    main()
