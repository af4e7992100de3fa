"""Simulator throughput on one core: readings generated, and published to a real broker.

    python bench/simulate.py [--devices 10000] [--seconds 60] [--batch 60]
                             [--mqtt-host 127.0.0.1 --mqtt-port 1883] [--no-broker]

1. generate: a generated portfolio stepped and encoded flat out (speed 0) into a publisher
   that only counts: models + JSON encoding, no network.
2. publish: the same, published at QoS 1 to the broker (the local Mosquitto by default), and
   flushed until the broker acknowledged every message; time includes the flush.

Both runs are bounded by --seconds of simulated time at 1 Hz (one reading per device per
simulated second). The process is pinned to one CPU (os.sched_setaffinity) where it can be;
paho's network thread shares that core.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from simulators.portfolio import generate_site
from simulators.publisher import MqttPublisher, PublisherSettings
from simulators.runner import FleetSimulator, SimulationSettings


class Count:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages += 1
        self.bytes += len(payload)

    def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self.messages += len(messages)
        self.bytes += sum(len(payload) for _, payload in messages)

    def flush(self, timeout_s: float) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds at 1 Hz")
    parser.add_argument("--batch", type=int, default=60, help="readings per message")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--no-broker", action="store_true", help="only measure generation")
    parser.add_argument("--max-inflight", type=int, default=1000, help="QoS 1 messages in flight")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    site = generate_site(args.devices)
    settings = SimulationSettings(
        speed=0,
        duration_s=args.seconds,
        start_ms=time.time_ns() // 1_000_000 - int(args.seconds * 1000),
        readings_per_message=args.batch,
    )
    print(
        f"{len(site.devices):,} devices, {args.seconds:g} simulated s at 1 Hz, "
        f"{args.batch} readings per message, one core"
    )
    print(
        f"{'run':10} {'readings':>11} {'messages':>9} {'seconds':>8} {'readings/s':>11} {'MB/s':>6}"
    )
    count = Count()
    simulator = FleetSimulator(site, settings)
    started = time.perf_counter()
    summary = simulator.run(count)
    elapsed = time.perf_counter() - started
    print(
        f"{'generate':10} {summary.readings:11,} {summary.messages:9,} {elapsed:8.2f} "
        f"{summary.readings / elapsed:11,.0f} {count.bytes / elapsed / 1e6:6.1f}"
    )
    if args.no_broker:
        return
    publisher = MqttPublisher(
        PublisherSettings(
            host=args.mqtt_host,
            port=args.mqtt_port,
            client_id=f"bench-simulate-{os.getpid()}",
            max_inflight=args.max_inflight,
        )
    )
    publisher.connect()
    try:
        simulator = FleetSimulator(site, settings)
        started = time.perf_counter()
        summary = simulator.run(publisher)  # ends with flush(): every message acknowledged
        elapsed = time.perf_counter() - started
    finally:
        publisher.close()
    print(
        f"{'publish':10} {summary.readings:11,} {summary.messages:9,} {elapsed:8.2f} "
        f"{summary.readings / elapsed:11,.0f} {count.bytes / elapsed / 1e6:6.1f}"
    )


if __name__ == "__main__":
    main()
