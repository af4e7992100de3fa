"""Parallel store writes: the gateway end to end against InfluxDB's own ceiling, 1 and 2 writers.

    .venv/bin/python bench/parallel_writes.py [--readings 300000] [--rounds 3] [--out FILE]

Starts its own Mosquitto and InfluxDB 1.x (as bench/ingest_bench.py does) and, in each round,
alternating so that whatever else runs on the machine weighs on every row alike:

- InfluxDB's ceiling for the gateway's own points (the line protocol our gateway writes for the
  same messages, every field of a reading), prepared and gzipped in requests of
  `--request-points`, written into a fresh database by one client, then by two clients at once
  (each its own connection, half the requests each);
- the gateway end to end (`bench.ingest_bench.run_gateway`: a backlog of 100-reading messages
  queued in the broker for its session, timed from the first reading accepted to the last
  point written, loss checked), with `--write-connections 1` and 2.

Odd rounds run 1 before 2, even rounds 2 before 1: a row pays for the background work
(cache snapshots, compactions) of the row before it.

Reports each row's readings/s, and the gateway's as a share of the two-writer ceiling of the
same round; writes the table between its own markers in `--out`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.doc_blocks import write_block  # noqa: E402
from bench.ingest_bench import (  # noqa: E402
    DEVICES_PER_KIND,
    gateway_lines,
    run_gateway,
)
from bench.ingest_report import CpuMeter, Row  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from tests.integration.load import stream, synthetic_site, synthetic_site_text  # noqa: E402
from tests.services import start_influxd, start_mosquitto  # noqa: E402

SECTION = "## Parallel store writes (`bench/parallel_writes.py`)"


def ceiling(port: int, pid: int, bodies: list[bytes], points: int, writers: int,
            database: str) -> Row:  # fmt: skip
    """Points/s InfluxDB takes from `writers` clients at once, each its own connection."""
    url = f"http://127.0.0.1:{port}"
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'}, timeout=30)
    clients = [httpx.Client(base_url=url, timeout=120) for _ in range(writers)]
    for client in clients:
        client.get("/ping").raise_for_status()  # connected before the clock starts
    errors: list[BaseException] = []

    def send(client: httpx.Client, share: list[bytes]) -> None:
        try:
            for body in share:
                client.post(
                    "/write", params={"db": database, "precision": "ms"}, content=body,
                    headers={"Content-Encoding": "gzip"},
                ).raise_for_status()  # fmt: skip
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(client, bodies[i::writers]))
        for i, client in enumerate(clients)
    ]
    meter = CpuMeter(None, None, pid)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    name = f"InfluxDB ceiling, {writers} writer{'s' if writers > 1 else ''}"
    used = meter.used()
    return Row(name, points, len(bodies), elapsed, CpuMeter.note_of(used), used)


def table(rounds: list[list[Row]]) -> str:
    out = [
        "| round | what | readings | seconds | readings/s | of 2-writer ceiling | notes |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for number, rows in enumerate(rounds, 1):
        two = next(r for r in rows if r.name.startswith("InfluxDB ceiling, 2"))
        for row in rows:
            share = row.readings_per_s / two.readings_per_s
            out.append(
                f"| {number} | {row.name} | {row.readings:,} | {row.seconds:.2f} | "
                f"{row.readings_per_s:,.0f} | {share:.0%} | {row.note} |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--request-points", type=int, default=20_000,
                        help="points per ceiling request (a gateway part's size)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    site = synthetic_site(DEVICES_PER_KIND)
    per_device = max(args.readings // len(site.devices) // 100, 1) * 100
    batched = stream(site, per_device, 100, now_ms() - (per_device + 600) * 1000)
    load_before = os.getloadavg()
    rounds: list[list[Row]] = []
    with tempfile.TemporaryDirectory(prefix="facility-parwrites-") as tmp:
        work = Path(tmp)
        site_file = work / "site.toml"
        site_file.write_text(synthetic_site_text(DEVICES_PER_KIND))
        lines = gateway_lines(site_file, batched.messages)
        step = args.request_points
        bodies = [
            gzip.compress(b"\n".join(lines[i : i + step]), compresslevel=1)
            for i in range(0, len(lines), step)
        ]
        mosquitto = start_mosquitto(work / "mosquitto")
        influxd = start_influxd(work / "influxd")
        services = (mosquitto.pid, influxd.pid)
        try:
            for n in range(1, args.rounds + 1):
                order = (1, 2) if n % 2 else (2, 1)  # what runs second pays for compactions
                rows = [ceiling(influxd.port, influxd.pid, bodies, len(lines), writers,
                                f"ceiling{writers}_{n}") for writers in order]  # fmt: skip
                for connections in order:
                    rows.append(run_gateway(
                        work, site_file, mosquitto.port, influxd.port, f"gw{connections}_{n}",
                        batched.messages, batched.readings,
                        f"gateway, `--write-connections {connections}`", services,
                        "--write-connections", str(connections),
                    ))  # fmt: skip
                rounds.append(sorted(rows, key=lambda r: r.name))
                print(table([rows]).splitlines()[-4:], flush=True)
        finally:
            mosquitto.stop()
            influxd.stop()
    load_after = os.getloadavg()
    text = table(rounds)
    block = (
        f"Run on {time.strftime('%Y-%m-%d %H:%M')} UTC, {psutil.cpu_count()} cores; "
        f"{len(site.devices):,} simulated devices, {batched.readings:,} readings in "
        f"100-reading messages; ceilings in {step:,}-point gzipped requests of the gateway's "
        "own line protocol for the same readings, each into a fresh database. Load average "
        f"(1 min) {load_before[0]:.1f} before and {load_after[0]:.1f} after.\n\n" + text
    )
    write_block(args.out, "parallel-writes-bench", "bench/parallel_writes.py", block, SECTION)
    print(text)


if __name__ == "__main__":
    main()
