"""The spool drainer alone against InfluxDB's own ceiling: how close to the store it drains.

    .venv/bin/python bench/drain.py [--devices 5000] [--seconds 120] [--rounds 2]

`bench/outage.py` drains with the simulator and the live gateway on the same cores as
InfluxDB, so its drain rate follows whatever else runs. Here nothing else runs: a spool is
filled once with the gateway's batches of a simulated portfolio (`--devices` at 1 Hz for
`--seconds`, 10 readings per message, a record per 2,500 readings as live batches make), then,
each into a fresh database of one InfluxDB 1.x on a free loopback port, in turn:

- the drainer with the next round queued while the store takes the current one
  (`Delivery.drain_backlog`, what the gateway runs);
- the drainer one round at a time (`Delivery.drain_once` in a loop, as before 2026-12-06);
- InfluxDB's ceiling for the same points: the gateway's line protocol of them, prepared and
  gzipped in the drainer's 50,000-point requests, from two clients at once (the drainer's two
  connections), and from one.

Each drain starts from a copy of the filled spool and uses two store connections (InfluxDB's
default). `--rounds` repeats the four rows, alternating. Prints a table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.outage import influx_ceiling, prepared_requests, simulated  # noqa: E402
from facility.batch import Batch  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from facility.site import Site  # noqa: E402
from gateway.decoder import Decoder  # noqa: E402
from ingest.delivery import Delivery, DeliverySettings  # noqa: E402
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer  # noqa: E402
from ingest.spool import Spool  # noqa: E402
from simulators.portfolio import generate_site  # noqa: E402
from tests.services import start_influxd  # noqa: E402

RECORD_READINGS = 2_500
CONNECTIONS = 2


def spooled_batches(site: Site, seconds: int) -> tuple[list[Batch], list[bytes], int]:
    """The gateway's batches of the simulated site, and the same points as the ceiling's
    prepared requests."""
    batch = Decoder(site).decode(simulated(site, seconds, 10), now_ms=now_ms()).batch
    bodies, points = prepared_requests(site, batch)
    return batch.chunks(RECORD_READINGS), bodies, points


def drain(
    filled: Path, work: Path, port: int, database: str, site: Site, queued: bool
) -> tuple[float, int]:
    """Readings/s of one drain of a copy of the filled spool, and the readings drained."""
    directory = work / database
    shutil.copytree(filled, directory)
    settings = InfluxV1Settings(url=f"http://127.0.0.1:{port}", database=database, timeout_s=120)
    writers = [InfluxV1Writer(site, settings) for _ in range(CONNECTIONS)]
    writers[0].ensure_database()
    spool = Spool(directory, max_bytes=8 << 30)
    delivery = Delivery(writers, spool, on_rejected=lambda r: None, settings=DeliverySettings())
    readings = spool.readings
    step = delivery.drain_backlog if queued else delivery.drain_once
    started = time.monotonic()
    while step():
        pass
    elapsed = time.monotonic() - started
    assert len(spool) == 0, "the spool did not drain"
    delivery.stop()
    return readings / elapsed, readings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    site = generate_site(args.devices)
    batches, bodies, points = spooled_batches(site, args.seconds)
    with tempfile.TemporaryDirectory(prefix="facility-drain-") as tmp:
        work = Path(tmp)
        filled = work / "filled"
        spool = Spool(filled, max_bytes=8 << 30)
        for batch in batches:
            spool.append(batch)
        spool.close()
        influxd = start_influxd(work / "influx")
        rows: list[tuple[str, float]] = []
        try:
            for r in range(args.rounds):
                rate, readings = drain(filled, work, influxd.port, f"queued{r}", site, True)
                rows.append(("drainer, next round queued (drain_backlog)", rate))
                rate, _ = drain(filled, work, influxd.port, f"once{r}", site, False)
                rows.append(("drainer, one round at a time (drain_once)", rate))
                two = influx_ceiling(influxd.port, f"two{r}", bodies, points, CONNECTIONS)
                rows.append((f"InfluxDB ceiling, {CONNECTIONS} clients at once", two))
                one = influx_ceiling(influxd.port, f"one{r}", bodies, points)
                rows.append(("InfluxDB ceiling, one client", one))
        finally:
            influxd.stop()
    print(
        f"{readings:,} spooled readings of {args.devices:,} devices ({len(batches):,} records), "
        f"{points:,} points; {args.rounds} rounds in this order"
    )
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} readings/s |")
    for r in range(args.rounds):
        queued, once, two, _ = (rate for _, rate in rows[4 * r : 4 * r + 4])
        print(
            f"round {r + 1}: queued / two-client ceiling {queued / two:.0%}; "
            f"one at a time / ceiling {once / two:.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
