"""The gateway's CPU per reading and per message, stage by stage, on bench/ingest_bench.py's stream.

    python bench/hotpath.py [--per-message 100] [--readings-per-device 300]

The same synthetic site (1,000 devices) and messages as the ingest benchmark, cut into the
gateway's batches (5,000 messages or 4 MB), then per batch, in one process and thread: decode,
sequence tracking, line protocol, gzip (`--gzip-level`, as the writer does: `ingest.gzip_body`),
rules (a fresh engine per run, so its windows fill as in a drain). CPU time (`process_time`),
best of 3 runs. What it leaves out, and the ingest benchmark's gateway rows include: the MQTT
client, the threads' hand-offs, and the work-order filing of faults the rules open.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.engine import RuleEngine  # noqa: E402
from alerts.rules import default_rule_set  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from gateway.decoder import Decoder, Message  # noqa: E402
from gateway.sequence import SequenceTracker  # noqa: E402
from ingest import gzip_body, line_protocol  # noqa: E402
from tests.integration.load import hotpath_stream  # noqa: E402

STAGES = ("decode", "sequences", "line protocol", "gzip", "rules")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-message", type=int, default=100, help="readings per message")
    parser.add_argument("--readings-per-device", type=int, default=300)
    parser.add_argument("--gzip-level", type=int, default=1)
    args = parser.parse_args()
    site, data = hotpath_stream(args.readings_per_device, args.per_message)
    messages = [Message(topic, payload) for topic, payload in data.messages]
    batches: list[list[Message]] = [[]]
    size = 0
    for message in messages:  # the pipeline's batch limits (PipelineSettings)
        if len(batches[-1]) >= 5000 or size >= 4 << 20:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += len(message.payload)
    decoder = Decoder(site)
    keys = line_protocol.kind_keys(site)
    now = now_ms()

    def run() -> dict[str, float]:
        spent = dict.fromkeys(STAGES, 0.0)
        engine = RuleEngine.from_rule_set(site, default_rule_set())
        sequences = SequenceTracker(site)
        for messages_of_batch in batches:
            t0 = time.process_time()
            batch = decoder.decode(messages_of_batch, now_ms=now).batch
            t1 = time.process_time()
            sequences.observe(batch)
            t2 = time.process_time()
            body, _ = line_protocol.encode_body(keys, batch)  # the writer's request body
            t3 = time.process_time()
            gzip_body.compress(body, args.gzip_level)
            t4 = time.process_time()
            engine.evaluate(batch)
            t5 = time.process_time()
            parts = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
            for stage, seconds in zip(STAGES, parts, strict=True):
                spent[stage] += seconds
        return spent

    best = min((run() for _ in range(3)), key=lambda spent: sum(spent.values()))
    total = sum(best.values())
    readings = data.readings
    print(
        f"{readings:,} readings in {len(messages):,} messages of {args.per_message} "
        f"({len(batches)} batches), gzip level {args.gzip_level}; CPU, best of 3"
    )
    print(f"{'stage':16} {'µs/reading':>11} {'µs/message':>11} {'share':>6}")
    for stage, seconds in [*best.items(), ("total", total)]:
        print(
            f"{stage:16} {seconds * 1e6 / readings:11.2f} "
            f"{seconds * 1e6 / len(messages):11.2f} {seconds / total:6.0%}"
        )


if __name__ == "__main__":
    main()
