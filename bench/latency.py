"""Fault to work order: how long from the reading that completes a fault to its order row.

    .venv/bin/python bench/latency.py [--devices 10000] [--seconds 90] [--batch 1]
                                      [--gateway-arg=--some-option ...] [--out docs/benchmarks.md]

Starts its own Mosquitto and InfluxDB on free loopback ports, a `facility gateway` process
(InfluxDB store, SQLite work orders) and a `facility simulate` process publishing a generated
portfolio of `--devices` devices at 1 Hz in real time, with waves of injected faults: gates
forced open (a rule with no hold time) and trapped passengers (held 5 s). For every work order
the latency is `created_ms - detected_ms`: from the timestamp of the reading at which the rule
fired (the simulator stamps readings with the wall clock as it publishes them) to the moment
the row was written. Prints p50 / p99 / max and the gateway's backlog, and appends a section
to `--out`.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_bench import metric, stop, wait  # noqa: E402
from tests.integration.helpers import facility_argv  # noqa: E402
from tests.services import free_port, start_influxd, start_mosquitto  # noqa: E402

WAVES_S = (20, 35, 50, 65)
"""When (seconds into the run) each wave of faults starts; each lasts 10 s, then clears."""
TARGET_P99_MS = 1000


def facility(*args: str) -> list[str]:
    return facility_argv("--log-level", "WARNING", *args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--batch", type=int, default=1, help="readings per message")
    parser.add_argument("--gateway-arg", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    injections: list[str] = []
    for start in WAVES_S:
        if start + 10 < args.seconds:
            injections += [
                "--inject", f"gate-forced-open:2%@{start}+10",
                "--inject", f"elevator-entrapment:1%@{start}+10",
            ]  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="facility-latency-") as tmp:
        work = Path(tmp)
        (work / "mq").mkdir()
        (work / "influx").mkdir()
        mosquitto = start_mosquitto(work / "mq")
        influxd = start_influxd(work / "influx")
        site_file = work / "site.toml"
        # Writing the site is the simulator's job: a zero-length run writes it and exits.
        subprocess.run(
            facility("simulate", "--devices", str(args.devices), "--write-site", str(site_file),
                     "--duration", "0.001", "--mqtt-port", str(mosquitto.port)),
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        metrics_port = free_port()
        wo_db = work / "work-orders.sqlite3"
        gateway_log = (work / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            facility(
                "gateway", "--site", str(site_file), "--mqtt-port", str(mosquitto.port),
                "--store", "influx-v1", "--influx-url", f"http://127.0.0.1:{influxd.port}",
                "--influx-db", "latency", "--db-url", f"sqlite:///{wo_db}",
                "--dead-letters", str(work / "dead.jsonl"), "--spool-dir", str(work / "spool"),
                "--rules-state", str(work / "rules-state.npz"),
                "--metrics-port", str(metrics_port), *args.gateway_arg,
            ),
            cwd=ROOT, stdout=gateway_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait(lambda: metric(metrics_port, "facility_messages_received_total") >= 0, 60)
            published = time.monotonic()
            simulate = subprocess.run(
                facility(
                    "simulate", "--site", str(site_file), "--mqtt-port", str(mosquitto.port),
                    "--duration", str(args.seconds), "--batch", str(args.batch),
                    "--ledger", str(work / "ledger.jsonl"), "--no-live", *injections,
                ),
                cwd=ROOT, capture_output=True, timeout=args.seconds * 6 + 120, check=False,
            )  # fmt: skip
            if simulate.returncode != 0:
                print(simulate.stderr.decode()[-2000:], file=sys.stderr)
                return 1
            finished = time.monotonic()
            publish_s = finished - published
            received = metric(metrics_port, "facility_messages_received_total")
            # Let the gateway finish what is queued (bounded), then read the orders.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                before = metric(metrics_port, "facility_readings_accepted_total")
                time.sleep(1.0)
                if metric(metrics_port, "facility_readings_accepted_total") == before:
                    break
            drained_s = time.monotonic() - finished
        finally:
            stop(gateway)
            gateway_log.close()
            influxd.stop()
            mosquitto.stop()
        with sqlite3.connect(wo_db) as db:
            rows = db.execute(
                "SELECT rule_id, created_ms - detected_ms FROM work_orders "
                "WHERE detected_ms IS NOT NULL"
            ).fetchall()
    if not rows:
        print("no work orders were created; see the gateway log", file=sys.stderr)
        return 1
    latencies = np.array([r[1] for r in rows], dtype=np.float64)
    rules = sorted({r[0] for r in rows})
    p50, p99 = np.percentile(latencies, [50, 99])
    verdict = "meets" if p99 <= TARGET_P99_MS else "misses"
    lines = [
        "## Fault to work order (`bench/latency.py`)\n",
        f"Run on {time.strftime('%Y-%m-%d')}, 2 cores: {args.devices:,} simulated devices at "
        f"1 Hz in real time, {args.batch} reading(s) per message, for {args.seconds} s, "
        "publisher -> Mosquitto -> gateway (InfluxDB store, SQLite work orders); "
        f"gateway options: {' '.join(args.gateway_arg) or 'defaults'}.\n",
        "| orders | rules | p50 ms | p99 ms | max ms | target p99 | drain after publishing |",
        "|---:|---|---:|---:|---:|---:|---:|",
        f"| {len(latencies)} | {', '.join(rules)} | {p50:.0f} | {p99:.0f} | "
        f"{latencies.max():.0f} | {TARGET_P99_MS} ms ({verdict}) | {drained_s:.1f} s |\n",
        f"Messages received by the gateway: {received:,.0f}. The publisher took {publish_s:.0f} s "
        f"of wall time for {args.seconds} simulated seconds"
        + (
            " (it kept up with real time)."
            if publish_s < args.seconds * 1.1
            else ": it fell behind real time, so reading timestamps (the schedule) lag their "
            "publication and the latencies above include that lag."
        ),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
