"""Throughput of the gateway's hot path on this machine: decode, line protocol, rules.

    python bench/pipeline.py [--readings N]

Generates the demo site's telemetry with the simulator (batched messages of 60 readings), then
times each stage over the same data, best of 3 runs. Prints readings per second per stage, and
the request bytes at gzip levels 1 and 6 (`--influx-gzip-level`).
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from pathlib import Path

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from facility.batch import Batch
from facility.site import load_site
from gateway.decoder import Decoder
from ingest import line_protocol
from simulators.publisher import MemoryPublisher
from simulators.runner import FleetSimulator, SimulationSettings

SITE = Path(__file__).resolve().parent.parent / "sites" / "shangri-la.toml"
START_MS = 1_790_000_000_000


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    args = parser.parse_args()
    site = load_site(SITE)
    seconds = max(args.readings // len(site.devices), 60)
    settings = SimulationSettings(
        speed=0, duration_s=seconds, start_ms=START_MS, readings_per_message=60
    )
    sink = MemoryPublisher()
    FleetSimulator(site, settings).run(sink)
    now = START_MS + seconds * 1000
    decoder = Decoder(site)
    batch: Batch = decoder.decode(sink.messages, now_ms=now).batch
    readings = len(batch)
    keys = line_protocol.kind_keys(site)

    def encode() -> None:
        line_protocol.encode_body(keys, batch)  # the writer's request body

    body, _ = line_protocol.encode_body(keys, batch)
    stages = {
        "decode + validate (JSON -> Batch)": lambda: decoder.decode(sink.messages, now_ms=now),
        "line protocol (Batch -> text)": encode,
        "gzip level 1 (the default)": lambda: gzip.compress(body, compresslevel=1),
        "gzip level 6": lambda: gzip.compress(body, compresslevel=6),
        "rules (default pack, fresh state)": lambda: RuleEngine.from_rule_set(
            site, default_rule_set()
        ).evaluate(batch),
    }
    print(f"{readings:,} readings in {len(sink.messages):,} messages ({len(site.devices)} devices)")
    print(f"{'stage':40} {'seconds':>8} {'readings/s':>12}")
    for name, work in stages.items():
        elapsed = best_of(3, work)
        print(f"{name:40} {elapsed:8.3f} {readings / elapsed:12,.0f}")
    for level in (1, 6):
        size = len(gzip.compress(body, compresslevel=level))
        print(
            f"gzip level {level}: {len(body):,} -> {size:,} bytes "
            f"({size / readings:.1f} per reading)"
        )


if __name__ == "__main__":
    main()
