"""A store outage under steady load: how big the spool grows, and how fast it drains.

    .venv/bin/python bench/outage.py [--outage-s 300] [--rate 5000] [--out docs/benchmarks.md]

Starts its own Mosquitto and InfluxDB 1.x on free loopback ports (as the tests do), a
`facility gateway` on them, and a `facility simulate` of `--rate` devices at 1 Hz in real time
(`--batch` readings per message). After `--warmup-s` it SIGKILLs InfluxDB for `--outage-s`,
starts it again, and measures:

- the spool at the end of the outage: bytes on disk, readings, bytes per reading;
- the drain: from InfluxDB answering again until the spool is empty, with the live stream
  still arriving; the drain rate is spooled readings / drain time;
- InfluxDB's own ceiling for the same kind of points in the same run: the gateway's line
  protocol of the same simulated site, prepared and gzipped in requests of the drainer's size
  (50,000 points), written into a fresh database by as many concurrent clients as the gateway
  has store connections (`--write-connections`, the drainer writes through all of them), once
  under the live load (during the warm-up: simulator and gateway running, as during the drain)
  and once with nothing else running (at the end), and by one client at the end for reference;
- the demo site's spool per hour of outage, from 10 minutes of its simulated telemetry encoded
  as spool records in batches of one tick (no services).

Prints the figures and writes them into `--out` between its own markers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.doc_blocks import write_block  # noqa: E402
from bench.influx_writes import post_bodies  # noqa: E402
from bench.scrape import metrics  # noqa: E402
from facility.batch import Batch  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from facility.site import Site, load_site  # noqa: E402
from gateway.decoder import Decoder  # noqa: E402
from ingest import gzip_body, line_protocol  # noqa: E402
from ingest.spool_codec import encode_record  # noqa: E402
from simulators.publisher import MemoryPublisher, Published  # noqa: E402
from simulators.runner import FleetSimulator, SimulationSettings  # noqa: E402
from tests.integration.helpers import facility_argv, stop_process  # noqa: E402
from tests.services import free_port, start_influxd, start_mosquitto  # noqa: E402

DEMO_SITE = ROOT / "sites" / "shangri-la.toml"
SECTION = "## Store outage and recovery (`bench/outage.py`)"
WRITE_POINTS = 50_000


def simulated(site: Site, seconds: int, per_message: int) -> list[Published]:
    sink = MemoryPublisher()
    start = now_ms() - (seconds + 120) * 1000
    settings = SimulationSettings(
        speed=0, duration_s=seconds, start_ms=start, readings_per_message=per_message
    )
    FleetSimulator(site, settings).run(sink)
    return sink.messages


def ceiling_bodies(site: Site, points: int, per_message: int) -> tuple[list[bytes], int]:
    """The gateway's line protocol of `points` simulated readings, gzipped in drainer-sized
    requests (prepared before anything is timed)."""
    seconds = max(points // len(site.devices), 10)
    decoder = Decoder(site)
    batch = decoder.decode(simulated(site, seconds, per_message), now_ms=now_ms()).batch
    return prepared_requests(site, batch)


def prepared_requests(site: Site, batch: Batch) -> tuple[list[bytes], int]:
    """The batch as the gateway's line protocol in gzipped drainer-sized requests, and the
    number of points."""
    lines = line_protocol.encode_batch(line_protocol.kind_keys(site), batch)
    bodies = [
        gzip_body.compress(b"\n".join(lines[i : i + WRITE_POINTS]), 1)
        for i in range(0, len(lines), WRITE_POINTS)
    ]
    return bodies, len(lines)


def influx_ceiling(
    port: int, database: str, bodies: list[bytes], points: int, writers: int = 1
) -> float:
    """Points/s InfluxDB takes from `writers` clients at once, each sending its share of the
    prepared requests (every `writers`-th) one by one."""
    url = f"http://127.0.0.1:{port}"
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'}, timeout=30)

    started = time.monotonic()
    post_bodies(url, database, bodies, writers, gzipped=True, timeout_s=120)
    return points / (time.monotonic() - started)


def demo_site_bytes_per_reading() -> float:
    """Spool bytes per reading of the demo site, in batches of one 1 Hz tick."""
    site = load_site(DEMO_SITE)
    messages = simulated(site, 600, 1)
    decoder = Decoder(site)
    tick = len(site.devices)
    total = readings = 0
    for first in range(0, len(messages), tick):
        batch = decoder.decode(messages[first : first + tick], now_ms=now_ms()).batch
        total += len(encode_record(batch))
        readings += len(batch)
    return total / readings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage-s", type=float, default=300.0)
    parser.add_argument("--rate", type=int, default=5000, help="readings/s (devices at 1 Hz)")
    parser.add_argument("--batch", type=int, default=10, help="readings per message")
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument(
        "--write-connections", type=int, default=2,
        help="the gateway's store connections (InfluxDB's default), and the ceiling's writers",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    writers = args.write_connections
    tail_s = 60 + args.outage_s * 0.3
    seconds = int(args.warmup_s + args.outage_s + tail_s)
    with tempfile.TemporaryDirectory(prefix="facility-outage-") as tmp:
        work = Path(tmp)
        mosquitto = start_mosquitto(work / "mq")
        influxd = start_influxd(work / "influx")
        site_file = work / "site.toml"
        subprocess.run(
            facility_argv("simulate", "--devices", str(args.rate), "--write-site", str(site_file),
                          "--duration", "0.001", "--mqtt-port", str(mosquitto.port)),
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        site = load_site(site_file)
        bodies, ceiling_points = ceiling_bodies(
            site, min(int(args.rate * args.outage_s), 600_000), args.batch
        )
        port = free_port()
        gateway = subprocess.Popen(
            facility_argv(
                "--log-level", "WARNING", "gateway", "--site", str(site_file),
                "--mqtt-port", str(mosquitto.port), "--store", "influx-v1",
                "--influx-url", f"http://127.0.0.1:{influxd.port}", "--influx-db", "outage",
                "--db-url", f"sqlite:///{work / 'wo.sqlite3'}",
                "--dead-letters", str(work / "dead.jsonl"), "--spool-dir", str(work / "spool"),
                "--rules-state", str(work / "rules.npz"), "--metrics-port", str(port),
                "--write-connections", str(writers),
            ),
            cwd=ROOT, stdout=(work / "gateway.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        simulate: subprocess.Popen[bytes] | None = None
        try:
            while "facility_store_up" not in metrics(port):
                time.sleep(0.2)
            simulate = subprocess.Popen(
                facility_argv("simulate", "--site", str(site_file), "--mqtt-port",
                              str(mosquitto.port), "--duration", str(seconds), "--batch",
                              str(args.batch), "--no-live"),
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(args.warmup_s / 2)
            loaded = influx_ceiling(influxd.port, "ceiling_loaded", bodies, ceiling_points, writers)
            time.sleep(args.warmup_s / 2)
            influxd.kill()
            time.sleep(args.outage_s)
            at_end = metrics(port)
            spool_bytes = at_end["facility_spool_bytes"]
            spool_readings = at_end["facility_spool_readings"]
            influxd.restart()
            ready = time.monotonic()
            first_commit = None  # when the first drained write was committed
            while True:
                now = metrics(port)
                spooled = now.get("facility_readings_spooled_total", 0)
                drained = now.get("facility_readings_drained_total", 0)
                if first_commit is None and drained:
                    first_commit = (time.monotonic(), drained)
                if spooled and drained == spooled:
                    break
                time.sleep(0.1)
            drain_s = time.monotonic() - ready
            assert first_commit is not None
            to_first_s = first_commit[0] - ready
            steady = (spooled - first_commit[1]) / max(drain_s - to_first_s, 1e-3)
            assert simulate.stdout is not None
            out, _ = simulate.communicate(timeout=seconds * 3 + 300)
            summary = orjson.loads(out.strip().splitlines()[-1])
            expected = int(summary["readings"])
            deadline = time.monotonic() + 600
            while metrics(port).get("facility_points_written_total", 0) < expected:
                if time.monotonic() > deadline:
                    raise TimeoutError("the gateway did not write every reading")
                time.sleep(0.5)
            final = metrics(port)
            ceiling = influx_ceiling(influxd.port, "ceiling", bodies, ceiling_points, writers)
            single = influx_ceiling(influxd.port, "ceiling_single", bodies, ceiling_points)
        finally:
            if simulate is not None and simulate.poll() is None:
                stop_process(simulate)
            stop_process(gateway)
            influxd.stop()
            mosquitto.stop()
    demo_bpr = demo_site_bytes_per_reading()
    bpr = spool_bytes / spool_readings
    drain_rate = spooled / drain_s
    written = int(final["facility_points_written_total"])
    rows = [
        ("readings published / points written", f"{expected:,} / {written:,}"),
        ("readings spooled during the outage", f"{int(spooled):,}"),
        ("readings dropped", f"{int(final['facility_readings_dropped_total'])}"),
        ("spool at the end of the outage",
         f"{spool_bytes / 2**20:.1f} MiB, {int(spool_readings):,} readings, "
         f"{bpr:.1f} bytes/reading"),
        ("drain time (InfluxDB answering → spool empty, live stream flowing)", f"{drain_s:.1f} s"),
        ("drain rate", f"{drain_rate:,.0f} readings/s (plus {args.rate:,}/s live)"),
        ("of which: InfluxDB answering → first backlog write committed; the rate after it",
         f"{to_first_s:.1f} s; "
         + (f"{steady:,.0f} readings/s" if spooled > first_commit[1] else "all in that write")),
        (f"InfluxDB ceiling: the same kind of points, {WRITE_POINTS:,}-point gzipped requests "
         f"from {writers} clients at once (the gateway's store connections), nothing else "
         "running", f"{ceiling:,.0f} points/s"),
        (f"the same, under the live load (before the outage: simulator, gateway, "
         f"{args.rate:,}/s live)", f"{loaded:,.0f} points/s"),
        ("for reference: one client, nothing else running", f"{single:,.0f} points/s"),
        ("drain rate / ceiling (idle; under load)",
         f"{drain_rate / ceiling:.0%}; {drain_rate / loaded:.0%}"),
        (f"spool per hour of outage at {args.rate:,} readings/s",
         f"{bpr * args.rate * 3600 / 2**20:,.0f} MiB"),
        ("demo site (128 devices at 1 Hz): spool bytes/reading; per hour of outage",
         f"{demo_bpr:.1f} bytes; {demo_bpr * 128 * 3600 / 2**20:.1f} MiB"),
    ]  # fmt: skip
    lines = [
        f"Run on {time.strftime('%Y-%m-%d')}, 2 cores: Mosquitto, InfluxDB 1.x, the gateway "
        f"and a `facility simulate` of {args.rate:,} devices at 1 Hz ({args.batch} readings "
        f"per message, {args.rate:,} readings/s) on one machine; InfluxDB SIGKILLed for "
        f"{args.outage_s:g} s after {args.warmup_s:g} s, then started again.\n",
        "| what | figure |",
        "|---|---:|",
        *(f"| {what} | {figure} |" for what, figure in rows),
    ]
    block = "\n".join(lines)
    print(block)
    if args.out is not None:
        write_block(args.out, "outage-bench", "bench/outage.py", block, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
