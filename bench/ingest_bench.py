"""Ingest throughput on this machine: our gateway beside the ceilings and a naive baseline.

    .venv/bin/python bench/ingest_bench.py [--readings N] [--single N] [--out docs/benchmarks.md]

Starts its own Mosquitto and InfluxDB on free loopback ports (as the tests do) and measures,
on the same services in one run:

- gateway, 100-reading messages: a backlog queued in the broker for the gateway's persistent
  session, then drained: publisher -> Mosquitto -> gateway -> InfluxDB, timed from the first
  reading accepted to the last point written; zero loss is checked with an InfluxQL count;
- gateway, 1-reading messages: the same with one reading per message;
- broker drain ceiling: `mosquitto_sub -q 1` draining the same 1-reading backlog;
- InfluxDB write ceiling: prepared line protocol in 5,000-point requests from one writer;
- naive baseline: a paho callback per message that decodes it and POSTs it to /write at once
  (what a Node-RED flow does), over a bounded number of messages.

Prints a table and writes it to `--out`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facility.clock import now_ms  # noqa: E402
from tests.integration.load import Publisher, stream, synthetic_site, synthetic_site_text  # noqa: E402
from tests.services import free_port, influxql, start_influxd, start_mosquitto  # noqa: E402

DEVICES_PER_KIND = 250
ALWAYS = {"elevator": "running", "lighting": "commanded_on", "gate": "door_open", "pump": "running"}


@dataclass
class Row:
    name: str
    readings: int
    messages: int
    seconds: float
    note: str = ""

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


def influx_total(port: int, database: str) -> int:
    total = 0
    for kind, field in ALWAYS.items():
        rows = influxql(port, database, f'SELECT count("{field}") FROM "{kind}"')
        total += int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
    return total


def metric(port: int, name: str) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def wait(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(poll_s)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        print(f"gateway {process.pid} ignored SIGTERM for 30 s; killing it", file=sys.stderr)
        process.kill()
        process.wait(10)


def run_gateway(work: Path, site_file: Path, mqtt_port: int, influx_port: int, database: str,
                messages: list[tuple[str, bytes]], readings: int, name: str) -> Row:  # fmt: skip
    metrics_port = free_port()
    argv = [
        sys.executable, "-m", "facility.cli", "--log-level", "WARNING", "gateway",
        "--site", str(site_file), "--mqtt-port", str(mqtt_port),
        "--mqtt-client-id", f"bench-{database}", "--store", "influx-v1",
        "--influx-url", f"http://127.0.0.1:{influx_port}", "--influx-db", database,
        "--db-url", f"sqlite:///{work / (database + '.sqlite3')}",
        "--dead-letters", str(work / f"{database}.dead.jsonl"),
        "--spool-dir", str(work / f"{database}.spool"), "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    log = (work / f"{database}.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait(lambda: metric(metrics_port, "facility_messages_received_total") >= 0, 30)
        return process

    # First connection creates the persistent session; then the backlog is queued for it.
    process = start()
    time.sleep(1.0)
    stop(process)
    publisher = Publisher(mqtt_port, client_id=f"bench-pub-{database}")
    publisher.publish_all(messages)
    publisher.close()

    launched = time.monotonic()
    process = start()
    peak_rss = 0
    first_reading: float | None = None
    ps = psutil.Process(process.pid)

    def written() -> bool:
        nonlocal peak_rss, first_reading
        peak_rss = max(peak_rss, ps.memory_info().rss)
        if first_reading is None and metric(metrics_port, "facility_readings_accepted_total") > 0:
            first_reading = time.monotonic()
        return metric(metrics_port, "facility_points_written_total") >= readings

    wait(written, 600, poll_s=0.02)
    finished = time.monotonic()
    started = first_reading if first_reading is not None else launched
    elapsed = finished - started
    stop(process)
    stored = influx_total(influx_port, database)
    loss = readings - stored
    note = (
        f"stored {stored:,} (loss {loss}); gateway peak RSS {peak_rss / 2**20:.0f} MB; "
        f"start-up {started - launched:.1f} s not counted"
    )
    return Row(name, readings, len(messages), elapsed, note)


def broker_ceiling(mqtt_port: int, messages: list[tuple[str, bytes]]) -> Row:
    client_id = "bench-mosquitto-sub"
    topic = "facility/v1/+/+/+/+/telemetry"
    base = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1", "-c",
            "-i", client_id, "-t", topic]  # fmt: skip
    subprocess.run([*base, "-W", "1"], capture_output=True, check=False)  # create the session
    publisher = Publisher(mqtt_port, client_id="bench-pub-ceiling")
    publisher.publish_all(messages)
    publisher.close()
    started = time.monotonic()
    subprocess.run(
        [*base, "-C", str(len(messages))], stdout=subprocess.DEVNULL, check=True, timeout=600
    )
    elapsed = time.monotonic() - started
    return Row("broker drain ceiling (mosquitto_sub -q 1)", len(messages), len(messages), elapsed)


def influx_ceiling(influx_port: int, lines: list[str]) -> Row:
    database = "ceiling"
    url = f"http://127.0.0.1:{influx_port}"
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'})
    bodies = ["\n".join(lines[i : i + 5000]).encode() for i in range(0, len(lines), 5000)]
    with httpx.Client(base_url=url, timeout=60) as client:
        started = time.monotonic()
        for body in bodies:
            response = client.post(
                "/write", params={"db": database, "precision": "ms"}, content=body
            )
            response.raise_for_status()
        elapsed = time.monotonic() - started
    return Row("InfluxDB write ceiling (5,000-point requests)", len(lines), len(bodies), elapsed)


def naive_baseline(mqtt_port: int, influx_port: int, messages: list[tuple[str, bytes]]) -> Row:
    """One callback per message: parse it, format one line, POST it, then ack (paho default)."""
    database = "naive"
    url = f"http://127.0.0.1:{influx_port}"
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'})
    http = httpx.Client(base_url=url, timeout=30)
    done = threading.Event()
    count = 0

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal count
        parts = message.topic.split("/")
        reading = orjson.loads(message.payload)
        fields = ",".join(f"{k}={v}" for k, v in reading.items() if k not in ("ts", "seq"))
        line = f"{parts[4]},device={parts[5]} {fields} {reading['ts']}"
        http.post("/write", params={"db": database, "precision": "ms"}, content=line)
        count += 1
        if count >= len(messages):
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", clean_session=False)
    sub.on_message = on_message
    sub.connect("127.0.0.1", mqtt_port)
    sub.subscribe("facility/v1/+/+/+/+/telemetry", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    publisher = Publisher(mqtt_port, client_id="bench-pub-naive")
    started = time.monotonic()
    publisher.publish_all(messages)
    publisher.close()
    done.wait(600)
    elapsed = time.monotonic() - started
    sub.loop_stop()
    sub.disconnect()
    http.close()
    return Row("naive: paho callback + HTTP write per message", count, count, elapsed)


def table(rows: list[Row], reference: Row) -> str:
    out = [
        "| what | readings | messages | seconds | readings/s | messages/s | vs naive | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = row.readings_per_s / reference.readings_per_s
        out.append(
            f"| {row.name} | {row.readings:,} | {row.messages:,} | {row.seconds:.2f} | "
            f"{row.readings_per_s:,.0f} | {row.messages_per_s:,.0f} | {ratio:,.1f}x | {row.note} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=300_000, help="for 100-reading messages")
    parser.add_argument("--single", type=int, default=60_000, help="1-reading messages")
    parser.add_argument("--naive", type=int, default=5_000, help="messages for the naive baseline")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--workdir", type=Path, help="keep services' data and logs here")
    args = parser.parse_args()

    site = synthetic_site(DEVICES_PER_KIND)
    devices = len(site.devices)
    per_device_batched = max(args.readings // devices // 100, 1) * 100
    per_device_single = max(args.single // devices, 1)
    start = now_ms() - (per_device_batched + per_device_single + 600) * 1000
    batched = stream(site, per_device_batched, 100, start)
    single = stream(site, per_device_single, 1, start + per_device_batched * 1000)

    with tempfile.TemporaryDirectory(prefix="facility-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        site_file = work / "site.toml"
        site_file.write_text(synthetic_site_text(DEVICES_PER_KIND))
        mosquitto = start_mosquitto(work / "mosquitto")
        influxd = start_influxd(work / "influxd")
        try:
            rows = [
                run_gateway(work, site_file, mosquitto.port, influxd.port, "batched",
                            batched.messages, batched.readings, "gateway, 100-reading messages"),
                run_gateway(work, site_file, mosquitto.port, influxd.port, "single",
                            single.messages, single.readings, "gateway, 1-reading messages"),
                broker_ceiling(mosquitto.port, single.messages),
                influx_ceiling(influxd.port, [
                    f"{kind},device=d{i % 1000} value={i * 0.5} {start + i}"
                    for i, kind in enumerate(["pump", "gate"] * (batched.readings // 2))
                ]),
                naive_baseline(mosquitto.port, influxd.port, single.messages[: args.naive]),
            ]  # fmt: skip
        finally:
            mosquitto.stop()
            influxd.stop()

    cpu = psutil.cpu_count()
    text = table(rows, rows[-1])
    header = (
        "# Benchmarks\n\n## Ingest (`bench/ingest_bench.py`)\n\n"
        f"Run on {time.strftime('%Y-%m-%d')}, {cpu} cores, Mosquitto and InfluxDB started by the "
        f"benchmark on loopback; {devices:,} simulated devices. Gateway rows drain a backlog "
        "queued in the broker for the gateway's persistent session, timed from the first reading "
        "the gateway accepted to its last point written (InfluxDB confirms the count; process "
        "start-up is shown apart).\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + text + "\n")
    print(text)


if __name__ == "__main__":
    main()
