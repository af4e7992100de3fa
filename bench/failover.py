"""Hot-standby failover: how long a shard is without an active gateway, and how long the new
leader takes to drain what queued meanwhile.

    .venv/bin/python bench/failover.py [--failovers 10] [--rate 2000] [--out docs/benchmarks.md]

Starts its own Mosquitto, InfluxDB 1.x and PostgreSQL database (as the tests do), two
`facility gateway --standby` processes for one shard (default settings: lock poll and check
every 0.5 s, rules checkpointed every 10 s), and a QoS 1 publisher of `--rate` readings a
second (100 devices, 10 readings a message). Then, `--failovers` times, alternating: it
SIGKILLs the leader and measures

- to first ack: from the SIGKILL to the new leader's first ack (its
  `facility_shard_acked_messages_total` polled every 20 ms): the lock noticed free, the
  rules' checkpoint loaded and the gap replayed from InfluxDB, the MQTT session resumed, the
  first batch stored;
- to drained: from that first ack until InfluxDB holds every reading published up to it
  (InfluxQL counts polled every 100 ms): the backlog that queued at the broker while no
  gateway was active.

The killed gateway is started again at once (as systemd would), so it competes for the two
cores with the drain, then the run waits for the stream to settle before the next kill.
Prints the figures and writes them into `--out` between its own markers.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.doc_blocks import write_block  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from facility.site import load_site  # noqa: E402
from tests.integration.helpers import start_facility, wait_for  # noqa: E402
from tests.integration.load import Publisher, stream, synthetic_site_text  # noqa: E402
from tests.integration.shard_gateways import (  # noqa: E402
    SHARD,
    ShardGateway,
    leader_of,
    shard_gateways,
)
from tests.services import influxql, start_influxd, start_mosquitto, start_postgres  # noqa: E402

SECTION = "## Hot-standby failover (`bench/failover.py`)"
DATABASE = "failover"
PER_MESSAGE = 10
ALWAYS = {"elevator": "running", "lighting": "commanded_on", "gate": "door_open", "pump": "running"}
ACKED = f'facility_shard_acked_messages_total{{shard="{SHARD}"}}'


def stored(port: int) -> int:
    total = 0
    for kind, field in ALWAYS.items():
        rows = influxql(port, DATABASE, f'SELECT count("{field}") FROM "{kind}"')
        total += int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
    return total


def acked(gateway: ShardGateway) -> float:
    try:
        return gateway.metrics().get(ACKED, 0.0)
    except httpx.HTTPError:  # a process starting: no answer yet
        return 0.0


def failover(
    gateways: list[ShardGateway], publisher: Publisher, influx_port: int
) -> tuple[float, float]:
    leader = leader_of(gateways)
    successor = next(g for g in gateways if g is not leader)
    before = acked(successor)
    killed = time.monotonic()
    leader.kill()
    while acked(successor) <= before:
        if time.monotonic() - killed > 60:
            raise RuntimeError("the standby did not take over within 60 s")
        time.sleep(0.02)
    first_ack = time.monotonic()
    expected = publisher.published * PER_MESSAGE
    leader.process = start_facility(leader.args, leader.log)  # back, as systemd would
    while stored(influx_port) < expected:
        if time.monotonic() - first_ack > 120:
            raise RuntimeError("the backlog did not drain within 120 s")
        time.sleep(0.1)
    drained = time.monotonic()
    wait_for(leader.role, lambda r: r == "standby", timeout_s=60, what="the restarted standby")
    return first_ack - killed, drained - first_ack


def run(args: argparse.Namespace) -> list[tuple[float, float]]:
    work = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    site_file = work / "site.toml"
    site_file.write_text(synthetic_site_text(devices_per_kind=25))
    site = load_site(site_file)
    mosquitto = start_mosquitto(_dir(work, "mosquitto"))
    influxd = start_influxd(_dir(work, "influxd"))
    postgres = start_postgres()
    database = f"facility_bench_{secrets.token_hex(4)}"
    postgres.admin(f"CREATE DATABASE {database}")
    gateways: list[ShardGateway] = []
    publisher: Publisher | None = None
    figures: list[tuple[float, float]] = []
    try:
        gateways = shard_gateways(
            _dir(work, "gateways"), site_file, mosquitto.port, influxd.port, DATABASE,
            postgres.url(database), poll_s=0.5, checkpoint_s=10.0,
        )  # fmt: skip
        messages_per_s = args.rate / PER_MESSAGE
        seconds = args.failovers * (args.settle_s + 15) + 30
        per_device = round(seconds * args.rate / len(site.devices))
        data = stream(site, per_device, PER_MESSAGE, now_ms() - (per_device + 60) * 1000)
        publisher = Publisher(mosquitto.port, client_id="failover-bench")
        publisher.start(data.messages, per_second=messages_per_s)
        time.sleep(args.settle_s)
        for number in range(1, args.failovers + 1):
            to_ack, to_drain = failover(gateways, publisher, influxd.port)
            figures.append((to_ack, to_drain))
            print(f"failover {number}: first ack after {to_ack:.2f} s, drained "
                  f"{to_drain:.2f} s later", flush=True)  # fmt: skip
            time.sleep(args.settle_s)
    finally:
        if publisher is not None:
            publisher.close()
        for gateway in gateways:
            if gateway.running:
                gateway.stop()
        postgres.admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        postgres.stop()
        influxd.stop()
        mosquitto.stop()
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _dir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def report(figures: list[tuple[float, float]], args: argparse.Namespace) -> str:
    to_ack = [a for a, _ in figures]
    to_drain = [d for _, d in figures]
    total = [a + d for a, d in figures]
    rows = "\n".join(
        f"| {name} | {statistics.median(values):.2f} | {max(values):.2f} |"
        for name, values in (
            ("SIGKILL → first ack by the new leader", to_ack),
            ("first ack → backlog drained", to_drain),
            ("SIGKILL → backlog drained", total),
        )
    )
    verdict = "met" if statistics.median(to_ack) <= 3 and max(to_ack) <= 10 else "**not met**"
    return (
        f"{SECTION}\n\n```sh\n.venv/bin/python bench/failover.py --failovers "
        f"{args.failovers} --rate {args.rate}\n```\n\n"
        f"Two `facility gateway --standby` processes for one shard on Mosquitto, InfluxDB 1.x "
        f"and PostgreSQL on this 2-core machine, {args.rate} readings/s published (100 devices, "
        f"{PER_MESSAGE} a message), the leader SIGKILLed {len(figures)} times, alternating, "
        f"each killed one restarted at once as the new standby. Seconds:\n\n"
        f"| | median | max |\n|---|---:|---:|\n{rows}\n\n"
        f"Target (median ≤ 3 s, max ≤ 10 s from SIGKILL to the first ack): {verdict}. "
        f"Per failover (to first ack / then to drained): "
        + ", ".join(f"{a:.2f}/{d:.2f}" for a, d in figures)
        + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--rate", type=int, default=2000, help="readings a second")
    parser.add_argument("--settle-s", type=float, default=6.0,
                        help="steady stream before each kill")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    figures = run(args)
    text = report(figures, args)
    print(text)
    if args.out is not None:
        write_block(args.out, "failover-bench", "bench/failover.py", text, None)


if __name__ == "__main__":
    main()
