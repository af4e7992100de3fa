"""Ingest throughput on this machine: our gateway beside the ceilings and a naive baseline.

    .venv/bin/python bench/ingest_bench.py [--readings N] [--single N] [--out docs/benchmarks.md]

Starts its own Mosquitto and InfluxDB on free loopback ports (as the tests do) and measures,
on the same services in one run, each row once they are idle again (InfluxDB compacts what
the row before wrote for a while after it):

- gateway, 100-reading messages: a backlog queued in the broker for the gateway's persistent
  session, then drained: publisher -> Mosquitto -> gateway -> InfluxDB, timed from the first
  reading accepted to the last point written; zero loss is checked with an InfluxQL count;
- gateway, 1-reading messages: the same with one reading per message; and once more with
  `--mqtt-protocol 3.1.1` (paho parses MQTT 5 properties on every message);
- broker drain ceiling: `mosquitto_sub -q 1` draining the same 1-reading backlog;
- our MQTT consumer alone: the same backlog through `gateway.mqtt` (paho, manual acks), with
  nothing decoded: the Python MQTT client's own ceiling;
- InfluxDB write ceiling: prepared line protocol in 5,000-point requests from one writer, once
  with one field per point and once with the gateway's own points (every field of a reading),
  then the gateway's points from two writers at once (the gateway's two store connections);
- naive baseline: a paho callback per message that decodes it and POSTs it to /write at once
  (what a Node-RED flow does), over a bounded number of messages.

The targets are judged on medians over `--rounds` passes of the rows they compare (both
gateway rows and the two-writer ceiling, one after another on the same services): one pass's
ceiling moved by a third between runs on this machine.

With `--pin-store`, InfluxDB runs on a core of its own and everything else on the others, so
the store has the same CPU in the gateway rows as in its ceilings (as on a deployment where
the store has its own host); without it, the gateway's and the broker's CPU comes out of the
cores the store's ceiling had to itself.

Prints a table and writes it into `--out`, replacing only its own marked block of the Ingest
section (the analysis around it and the other sections stay; `--pin-store` has a block of its
own).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.doc_blocks import write_block  # noqa: E402
from bench.influx_writes import post_bodies  # noqa: E402
from bench.ingest_report import SECTION, CpuMeter, Round, Row, Targets, table  # noqa: E402
from bench.scrape import metrics  # noqa: E402
from bench.thread_profile import show  # noqa: E402
from facility.clock import now_ms  # noqa: E402
from facility.site import load_site  # noqa: E402
from gateway.decoder import Decoder, Message  # noqa: E402
from gateway.mqtt import MqttConsumer, MqttSettings  # noqa: E402
from ingest import line_protocol  # noqa: E402
from mqtt import MqttProtocol  # noqa: E402
from mqtt.session import forget_session  # noqa: E402
from tests.integration.load import (  # noqa: E402
    Publisher,
    Stream,
    stream,
    synthetic_site,
    synthetic_site_text,
)
from tests.services import free_port, influxql, start_influxd, start_mosquitto  # noqa: E402

DEVICES_PER_KIND = 250
ALWAYS = {"elevator": "running", "lighting": "commanded_on", "gate": "door_open", "pump": "running"}


def influx_total(port: int, database: str) -> int:
    total = 0
    for kind, always in ALWAYS.items():
        rows = influxql(port, database, f'SELECT count("{always}") FROM "{kind}"')
        total += int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
    return total


def metric(port: int, name: str) -> float:
    return metrics(port).get(name, -1.0)


def wait(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(poll_s)


def settle(*pids: int, quiet_cpu_s: float = 0.02, window_s: float = 0.5,
           timeout_s: float = 60.0) -> float:  # fmt: skip
    """Wait until the services are idle (under `quiet_cpu_s` of CPU in a `window_s`): InfluxDB
    compacts what an earlier row wrote for a while after it, which would slow the next row
    (a ceiling measured beside a compaction moved by 30 % between runs). Seconds waited."""
    processes = [psutil.Process(pid) for pid in pids]
    started = time.monotonic()

    def cpu() -> float:
        return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))

    while time.monotonic() - started < timeout_s:
        before = cpu()
        time.sleep(window_s)
        if cpu() - before < quiet_cpu_s:
            break
    return time.monotonic() - started


def poll_s(first_reading: float | None, done: float, readings: int) -> float:
    """The wait before the next scrape: half the time the rest should take at the rate so
    far, 10-250 ms. Each scrape costs the gateway ~0.5 ms of CPU, which a fixed 20 ms poll
    charged to the very rows it timed; this finds the end as precisely with a few scrapes."""
    if first_reading is None:
        return 0.01  # the start is timed from the first reading: not yet metered
    if done <= 0:
        return 0.05
    rate = done / max(time.monotonic() - first_reading, 1e-3)
    return min(max((readings - done) / rate / 2, 0.01), 0.25)


def forget(mqtt_port: int, client_id: str, protocol: MqttProtocol = "5") -> None:
    """End a row's persistent session: left subscribed, it would have every later row's
    backlog queued for it too, and Mosquitto spent 5-8x the CPU per message delivering the
    next rows beside those queues."""
    forget_session(MqttSettings(port=mqtt_port, protocol=protocol), client_id, protocol)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        print(f"gateway {process.pid} ignored SIGTERM for 30 s; killing it (its log has the "
              "threads' stacks)", file=sys.stderr)  # fmt: skip
        process.send_signal(signal.SIGUSR1)  # facility's CLI prints every thread's stack
        time.sleep(1)
        process.kill()
        process.wait(10)


def run_gateway(work: Path, site_file: Path, mqtt_port: int, influx_port: int, database: str,
                messages: list[tuple[str, bytes]], readings: int, name: str,
                services: tuple[int, int], *extra: str, profile: Path | None = None,
                ) -> Row:  # fmt: skip
    metrics_port = free_port()
    # Under bench/thread_profile.py the gateway writes each thread's CPU profile at exit.
    launcher = ["-m", "runtime.cli"] if profile is None else [str(ROOT / "bench/thread_profile.py")]
    env = dict(os.environ)
    if profile is not None:
        env["FACILITY_PROFILE_DIR"] = str(profile / database)
    argv = [
        sys.executable, *launcher, "--log-level", "WARNING", "gateway",
        "--site", str(site_file), "--mqtt-port", str(mqtt_port),
        "--mqtt-client-id", f"bench-{database}", "--store", "influx-v1",
        "--influx-url", f"http://127.0.0.1:{influx_port}", "--influx-db", database,
        "--db-url", f"sqlite:///{work / (database + '.sqlite3')}",
        "--dead-letters", str(work / f"{database}.dead.jsonl"),
        "--spool-dir", str(work / f"{database}.spool"), "--metrics-port", str(metrics_port),
        "--rules-state", str(work / f"{database}.rules-state.npz"),
        *extra,
    ]  # fmt: skip
    log = (work / f"{database}.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait(lambda: metric(metrics_port, "facility_messages_received_total") >= 0, 30)
        return process

    # First connection creates the persistent session; then the backlog is queued for it.
    process = start()
    time.sleep(1.0)
    stop(process)
    publisher = Publisher(mqtt_port, client_id=f"bench-pub-{database}")
    publisher.publish_all(messages)
    publisher.close()
    settle(*services)

    launched = time.monotonic()
    process = start()
    peak_rss = 0
    first_reading: float | None = None
    ps = psutil.Process(process.pid)

    meter: CpuMeter | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, ps.memory_info().rss)
        values = metrics(metrics_port)
        if first_reading is None and values.get("facility_readings_accepted_total", 0) > 0:
            first_reading = time.monotonic()
            meter = CpuMeter(process.pid, *services)
        done = values.get("facility_points_written_total", 0)
        if done >= readings:
            break
        time.sleep(poll_s(first_reading, done, readings))
    else:
        raise TimeoutError("the gateway did not write every reading in 600 s")
    finished = time.monotonic()
    used = meter.used() if meter is not None else {}
    cpu = CpuMeter.note_of(used) if used else ""
    started = first_reading if first_reading is not None else launched
    elapsed = finished - started
    stop(process)
    forget(mqtt_port, f"bench-{database}", "3.1.1" if "3.1.1" in extra else "5")
    stored = influx_total(influx_port, database)
    loss = readings - stored
    note = (
        f"stored {stored:,} (loss {loss}); gateway peak RSS {peak_rss / 2**20:.0f} MB; "
        f"start-up {started - launched:.1f} s not counted; {cpu}"
    )
    return Row(name, readings, len(messages), elapsed, note, used)


def broker_ceiling(mqtt_port: int, mqtt_pid: int, messages: list[tuple[str, bytes]]) -> Row:
    client_id = "bench-mosquitto-sub"
    topic = "facility/v1/+/+/+/+/telemetry"
    base = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1", "-c",
            "-i", client_id, "-t", topic]  # fmt: skip
    subprocess.run([*base, "-W", "1"], capture_output=True, check=False)  # create the session
    publisher = Publisher(mqtt_port, client_id="bench-pub-ceiling")
    publisher.publish_all(messages)
    publisher.close()
    settle(mqtt_pid)
    meter = CpuMeter(None, mqtt_pid, None)
    started = time.monotonic()
    subprocess.run(
        [*base, "-C", str(len(messages))], stdout=subprocess.DEVNULL, check=True, timeout=600
    )
    elapsed = time.monotonic() - started
    used = meter.used()
    forget(mqtt_port, client_id, "3.1.1")  # mosquitto_sub's default protocol
    return Row("broker drain ceiling (mosquitto_sub -q 1)", len(messages), len(messages), elapsed,
               CpuMeter.note_of(used), used)  # fmt: skip


def influx_ceiling(influx_port: int, influx_pid: int, lines: list[bytes], name: str,
                   database: str, writers: int = 1) -> Row:  # fmt: skip
    """InfluxDB taking prepared 5,000-point requests from `writers` clients at once, each
    sending its share (every `writers`-th request) one by one."""
    url = f"http://127.0.0.1:{influx_port}"
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'})
    bodies = [b"\n".join(lines[i : i + 5000]) for i in range(0, len(lines), 5000)]
    settle(influx_pid)

    meter = CpuMeter(None, None, influx_pid)
    started = time.monotonic()
    post_bodies(url, database, bodies, writers, gzipped=False, timeout_s=60)
    elapsed = time.monotonic() - started
    used = meter.used()
    return Row(name, len(lines), len(bodies), elapsed, CpuMeter.note_of(used), used)


def gateway_lines(site_file: Path, messages: list[tuple[str, bytes]]) -> list[bytes]:
    """The line protocol our gateway writes for these messages (all fields of every reading)."""
    site = load_site(site_file)
    batch = Decoder(site).decode([Message(t, p) for t, p in messages], now_ms=now_ms()).batch
    keys = line_protocol.kind_keys(site)
    return line_protocol.encode_batch(keys, batch)


def paho_ceiling(mqtt_port: int, messages: list[tuple[str, bytes]]) -> Row:
    """Our MQTT consumer alone (paho, manual acks after each take), nothing decoded: what the
    Python MQTT client costs per message before the gateway does any work."""
    settings = MqttSettings(port=mqtt_port, client_id="bench-paho-ceiling")
    consumer = MqttConsumer(settings, "facility/v1/+/+/+/+/telemetry")
    consumer.start()
    consumer.wait_connected(30)
    consumer.stop()  # the persistent session now exists; queue the backlog for it
    publisher = Publisher(mqtt_port, client_id="bench-pub-paho")
    publisher.publish_all(messages)
    publisher.close()
    consumer = MqttConsumer(settings, "facility/v1/+/+/+/+/telemetry")
    consumer.start()
    received = 0
    started: float | None = None
    cpu_started = 0.0
    last = deadline = time.monotonic() + 600
    while received < len(messages) and time.monotonic() < deadline:
        taken = consumer.take(5000, 0.2)
        if taken:
            last = time.monotonic()
            if started is None:
                started, cpu_started = last, time.process_time()
        elif started is not None and time.monotonic() - last > 10:
            break  # nothing for 10 s: the rest is not coming
        consumer.ack(taken)
        received += len(taken)
    elapsed = min(time.monotonic(), last) - (started or time.monotonic())
    cpu = time.process_time() - cpu_started
    consumer.stop()
    forget(mqtt_port, settings.client_id)
    missing = len(messages) - received
    note = f"CPU s: consumer {cpu:.1f}" + (
        f"; **{missing:,} of {len(messages):,} never arrived** (timed to the last one received)"
        if missing
        else ""
    )
    return Row("our MQTT consumer alone (paho, manual acks, no decode)", received, received,
               elapsed, note, {"gateway": cpu})  # fmt: skip


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
    forget(mqtt_port, "bench-naive", "3.1.1")  # paho's default protocol
    return Row("naive: paho callback + HTTP write per message", count, count, elapsed)


def profile_gateway(directory: Path, work: Path, site_file: Path, mqtt_port: int,
                    influx_port: int, batched: Stream, single: Stream,
                    services: tuple[int, int]) -> None:  # fmt: skip
    """The two gateway rows with every thread of the gateway profiled on its own CPU clock."""
    for database, data, name in (("batched", batched, "gateway, 100-reading messages"),
                                 ("single", single, "gateway, 1-reading messages")):  # fmt: skip
        row = run_gateway(work, site_file, mqtt_port, influx_port, database, data.messages,
                          data.readings, name, services, profile=directory)  # fmt: skip
        print(f"{name}: {row.readings:,} readings in {row.seconds:.2f} s; {row.note}")
        show(directory / database, 30)


PINNED_NOTE = (
    " `--pin-store`: InfluxDB ran on a core of its own (every thread of it pinned to the last "
    "core) and everything else (Mosquitto, the gateway, the ceilings' writers) on the other, so "
    "the store had the same CPU in the gateway rows as in its ceilings, as where it has a host "
    "of its own: the end-to-end share then says whether the pipeline keeps the store busy, not "
    "how much of the store's CPU the gateway takes."
)


def pin_threads(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` onto `cores`; the threads it starts later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cores)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=300_000, help="for 100-reading messages")
    parser.add_argument("--single", type=int, default=60_000, help="1-reading messages")
    parser.add_argument("--naive", type=int, default=5_000, help="messages for the naive baseline")
    parser.add_argument(
        "--rounds", type=int, default=5, help="passes of the rows the targets compare (the "
        "gateway rows and the two-writer ceiling); the targets are judged on their medians",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--workdir", type=Path, help="keep services' data and logs here")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="only the two gateway rows, each thread profiled (bench/thread_profile.py) into "
        "DIR/<row>; prints the profiles, writes no table",
    )  # fmt: skip
    parser.add_argument(
        "--pin-store", action="store_true",
        help="InfluxDB on a core of its own (the last), everything else (the broker, the "
        "gateway, this benchmark's writers) on the others: the store's CPU is the same in the "
        "gateway rows and the ceilings, as on a deployment where the store has its own host",
    )  # fmt: skip
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    store_cores = {cores[-1]} if args.pin_store and len(cores) > 1 else None
    if store_cores is not None:
        os.sched_setaffinity(0, set(cores) - store_cores)  # inherited by what is started

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
        if store_cores is not None:
            pin_threads(influxd.pid, store_cores)
        try:
            services = (mosquitto.pid, influxd.pid)
            if args.profile is not None:
                profile_gateway(args.profile, work, site_file, mosquitto.port, influxd.port,
                                batched, single, services)  # fmt: skip
                return
            gateway_points = gateway_lines(site_file, batched.messages)
            load_before = os.getloadavg()
            rows = [
                run_gateway(work, site_file, mosquitto.port, influxd.port, "batched",
                            batched.messages, batched.readings, "gateway, 100-reading messages",
                            services),
                run_gateway(work, site_file, mosquitto.port, influxd.port, "single",
                            single.messages, single.readings, "gateway, 1-reading messages",
                            services),
                run_gateway(work, site_file, mosquitto.port, influxd.port, "single_v311",
                            single.messages, single.readings,
                            "gateway, 1-reading messages, `--mqtt-protocol 3.1.1`", services,
                            "--mqtt-protocol", "3.1.1"),
                broker_ceiling(mosquitto.port, mosquitto.pid, single.messages),
                paho_ceiling(mosquitto.port, single.messages),
                influx_ceiling(influxd.port, influxd.pid, [
                    f"{kind},device=d{i % 1000} value={i * 0.5} {start + i}".encode()
                    for i, kind in enumerate(["pump", "gate"] * (batched.readings // 2))
                ], "InfluxDB write ceiling (5,000-point requests, 1 field per point)", "ceiling"),
                influx_ceiling(influxd.port, influxd.pid, gateway_points, "InfluxDB write "
                    "ceiling (5,000-point requests, the gateway's points: all fields)",
                    "ceiling_fields"),
                influx_ceiling(influxd.port, influxd.pid, gateway_points, "InfluxDB write "
                    "ceiling, two writers at once (the same requests; the gateway writes "
                    "through two connections)", "ceiling_two", writers=2),
                naive_baseline(mosquitto.port, influxd.port, single.messages[: args.naive]),
            ]  # fmt: skip
            rounds = [Round(rows[0], rows[1], rows[7])]
            for n in range(2, args.rounds + 1):
                rounds.append(Round(
                    run_gateway(work, site_file, mosquitto.port, influxd.port, f"batched_{n}",
                                batched.messages, batched.readings, f"round {n}: gateway, "
                                "100-reading messages", services),
                    run_gateway(work, site_file, mosquitto.port, influxd.port, f"single_{n}",
                                single.messages, single.readings, f"round {n}: gateway, "
                                "1-reading messages", services),
                    influx_ceiling(influxd.port, influxd.pid, gateway_points, f"round {n}: "
                                   "InfluxDB write ceiling, two writers at once",
                                   f"ceiling_two_{n}", writers=2),
                ))  # fmt: skip
        finally:
            mosquitto.stop()
            influxd.stop()

    cpu = psutil.cpu_count()
    load_after = os.getloadavg()
    targets = Targets(rounds, rows[3], rows[6])
    extra = [row for r in rounds[1:] for row in (r.batched, r.single, r.store_ceiling_two)]
    text = table([*rows[:-1], *extra, rows[-1]], rows[-1]) + "\n\n" + targets.summary()
    block = (
        f"Run on {time.strftime('%Y-%m-%d')}, {cpu} cores, Mosquitto and InfluxDB started by the "
        f"benchmark on loopback; {devices:,} simulated devices. Gateway rows drain a backlog "
        "queued in the broker for the gateway's persistent session, timed from the first reading "
        "the gateway accepted to its last point written (InfluxDB confirms the count; process "
        "start-up is shown apart). CPU seconds are per process over the timed span; the whole "
        "machine's busy/idle seconds show how much of the cores was left for the row. Load "
        f"average (1 min) {load_before[0]:.1f} before and {load_after[0]:.1f} after the run."
        + (PINNED_NOTE if store_cores is not None else "")
        + "\n\n"
        + text
    )
    name = "ingest-bench-pinned" if store_cores else "ingest-bench"
    write_block(args.out, name, "bench/ingest_bench.py", block, SECTION)
    print(text)


if __name__ == "__main__":
    main()
