"""Real services for integration tests: Mosquitto and InfluxDB started on free loopback ports.

Each service gets a temporary config and data directory, is waited for until it answers, is
checked to be the process that owns the listening port (not something already running there),
and is stopped by its PID. Nothing here touches a service the test did not start.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.local_http import LOCAL

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def require_services() -> bool:
    return os.environ.get("FACILITY_REQUIRE_SERVICES") == "1"


def find_binary(name: str, *extra: str) -> str:
    """The binary's path; skip the test, or fail it when services are required."""
    found = shutil.which(name) or next((p for p in extra if os.access(p, os.X_OK)), None)
    if found:
        return found
    package = {"influxd": "influxdb", "systemd-analyze": "systemd"}.get(name, name)
    message = f"{name} is not installed (Debian: apt-get install {package})"
    if require_services():
        pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}")
    pytest.skip(message)


# Ports the kernel hands to outgoing connections (Linux's default range). A port taken from this
# range can be handed to a client's connection between the probe and the server's own bind, as
# a CI run had the dashboard refused with "address already in use"; below it only listeners
# compete, and the probe sees them.
EPHEMERAL_PORTS_PATH = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FLOOR = 20000


@functools.cache
def _ephemeral_floor() -> int:
    try:
        return int(EPHEMERAL_PORTS_PATH.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port no one listens on, chosen below the outgoing-connection range."""
    ceiling = max(_ephemeral_floor(), LISTEN_PORTS_FLOOR + 1000)
    picker = random.Random(os.getpid() ^ time.monotonic_ns())
    for _try in range(200):
        port = picker.randrange(LISTEN_PORTS_FLOOR, ceiling)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {LISTEN_PORTS_FLOOR}..{ceiling}")


def _listens_on(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections
    )


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str]
    workdir: Path
    ready: Callable[[], bool]

    def restart(self) -> None:
        """Start the same program again, same config, port and data (after stop or kill)."""
        self.stop()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.wait_ready(self.ready)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.log_tail()}"
                )
            if _listens_on(self.pid, self.port) and ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port}: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop our process (by PID) and wait for it."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def reload(self) -> None:
        """SIGHUP to our process: Mosquitto reads its password and ACL files again."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)


def _spawn(
    name: str, argv: list[str], workdir: Path, port: int, ready: Callable[[], bool]
) -> ServiceProcess:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    service = ServiceProcess(name, process, port, log_path, argv, workdir, ready)
    service.wait_ready(ready)
    return service


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start_on_free_port(
    name: str, workdir: Path, port: int | None, attempt: Callable[[int], ServiceProcess]
) -> ServiceProcess:
    """Start on `port`, or on a free port, trying again if another process took it first."""
    workdir.mkdir(parents=True, exist_ok=True)
    error: RuntimeError | None = None
    for _attempt in range(1 if port is not None else 3):
        try:
            return attempt(port or free_port())
        except RuntimeError as exc:
            error = exc
    raise RuntimeError(f"{name} did not start: {error}")


# Started as root, mosquitto drops to the `mosquitto` user, which cannot write into pytest's
# private temporary directories: persistence and the log would silently fail. `user root` keeps
# the test broker as the user that started it (it is ignored when that is not root).
MOSQUITTO_CONF = """\
user root
listener {port} 127.0.0.1
{listener}
allow_anonymous {anonymous}
persistence true
persistence_location {data}/
autosave_interval 1
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 20000
log_dest file {data}/broker.log
log_type error
log_type warning
{extra}
"""


def start_mosquitto(
    workdir: Path,
    port: int | None = None,
    *,
    listener: str = "",
    extra: str = "",
    allow_anonymous: bool = True,
) -> ServiceProcess:
    """Mosquitto on a free loopback port. `listener`: options of its one listener (TLS:
    cafile, certfile, keyfile, require_certificate, ...); `extra`: more global options
    (password_file, acl_file); `allow_anonymous=False` for a broker that wants a login."""
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")

    def attempt(chosen: int) -> ServiceProcess:
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            MOSQUITTO_CONF.format(
                port=chosen,
                data=workdir,
                listener=listener,
                anonymous=str(allow_anonymous).lower(),
                extra=extra,
            )
        )
        ready = functools.partial(_tcp_answers, chosen)
        return _spawn("mosquitto", [binary, "-c", str(conf)], workdir, chosen, ready)

    return _start_on_free_port("mosquitto", workdir, port, attempt)


INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{data}/meta"

[data]
  dir = "{data}/data"
  wal-dir = "{data}/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false
"""


def _influx_pings(port: int) -> bool:
    try:
        return LOCAL.get(f"http://127.0.0.1:{port}/ping", timeout=1.0).status_code == 204
    except httpx.HTTPError:
        return False


def start_influxd(
    workdir: Path, port: int | None = None, rpc_port: int | None = None
) -> ServiceProcess:
    binary = find_binary("influxd", "/usr/bin/influxd")

    def attempt(chosen: int) -> ServiceProcess:
        conf = workdir / "influxdb.conf"
        rpc = rpc_port or free_port()
        conf.write_text(INFLUXD_CONF.format(port=chosen, rpc_port=rpc, data=workdir))
        ready = functools.partial(_influx_pings, chosen)
        return _spawn("influxd", [binary, "run", "-config", str(conf)], workdir, chosen, ready)

    return _start_on_free_port("influxd", workdir, port, attempt)


def influxql(port: int, database: str, query: str) -> list[list[object]]:
    """Run one InfluxQL query; the values of its first series (empty if none)."""
    response = LOCAL.get(
        f"http://127.0.0.1:{port}/query", params={"db": database, "q": query}, timeout=10.0
    )
    response.raise_for_status()
    result = response.json()["results"][0]
    if "error" in result:
        raise RuntimeError(f"InfluxQL error: {result['error']}")
    series = result.get("series") or []
    return list(series[0].get("values", [])) if series else []


def _vm_healthy(port: int) -> bool:
    try:
        return LOCAL.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_victoria_metrics(workdir: Path, port: int | None = None) -> ServiceProcess:
    """VictoriaMetrics speaks InfluxDB's /api/v2/write: the stand-in for InfluxDB 2.x/3.x."""
    binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics")

    def attempt(chosen: int) -> ServiceProcess:
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{chosen}",
            f"-storageDataPath={workdir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]
        return _spawn(
            "victoria-metrics", argv, workdir, chosen, functools.partial(_vm_healthy, chosen)
        )

    return _start_on_free_port("victoria-metrics", workdir, port, attempt)


def vm_sample_count(port: int, metric: str) -> int:
    """How many samples VictoriaMetrics holds for a metric name (over all series, all time)."""
    response = LOCAL.get(
        f"http://127.0.0.1:{port}/api/v1/export",
        params={"match[]": f'{{__name__="{metric}"}}', "start": "0"},
        timeout=10.0,
    )
    response.raise_for_status()
    return sum(len(json.loads(line)["values"]) for line in response.text.splitlines() if line)


# -- PostgreSQL ------------------------------------------------------------------------------

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
"""The machine's PostgreSQL (trust auth on loopback), tried before starting our own."""


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create throwaway databases on."""

    admin_url: str
    """A URL of its maintenance database, for CREATE / DROP DATABASE."""
    process: ServiceProcess | None = None
    """Set when the fixture started the server itself (stopped by PID afterwards)."""

    def url(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + database

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE DATABASE cannot run inside one)."""
        import psycopg  # noqa: PLC0415  (only the PostgreSQL tests need it)

        conninfo = self.admin_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            shutil.rmtree(self.process.workdir, ignore_errors=True)


def _postgres_answers(admin_url: str) -> bool:
    import psycopg  # noqa: PLC0415

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            conn.execute(b"SELECT 1")
        return True
    except psycopg.Error:
        return False


def _postgres_binary(name: str) -> str | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    found = next((str(p) for p in candidates if os.access(p, os.X_OK)), None)
    return found or shutil.which(name)


def start_postgres() -> PostgresServer:
    """The machine's PostgreSQL if it answers on 127.0.0.1:5432, else one of our own.

    Our own runs from Debian's binaries (initdb, postgres) in a temporary directory on a free
    loopback port with trust auth, as the `postgres` user when we are root (PostgreSQL refuses
    to run as root). `FACILITY_TEST_POSTGRES=start` skips the machine's server, to test this.
    """
    if os.environ.get("FACILITY_TEST_POSTGRES") != "start" and _postgres_answers(LOCAL_POSTGRES):
        return PostgresServer(LOCAL_POSTGRES)
    initdb, postgres = _postgres_binary("initdb"), _postgres_binary("postgres")
    if not initdb or not postgres:
        message = "no PostgreSQL on 127.0.0.1:5432 and none installed (Debian: postgresql)"
        if require_services():
            pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}")
        pytest.skip(message)
    import tempfile  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="facility-pg-"))
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(workdir, user)
    data = workdir / "data"
    subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, user=user,
    )  # fmt: skip

    def attempt(port: int) -> ServiceProcess:
        argv = [
            postgres, "-D", str(data), "-p", str(port), "-k", str(workdir),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100",
        ]  # fmt: skip
        log_path = workdir / "postgres.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, user=user,
            )  # fmt: skip
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        ready = functools.partial(_postgres_answers, url)
        service = ServiceProcess("postgres", process, port, log_path, argv, workdir, ready)
        service.wait_ready(ready)
        return service

    service = _start_on_free_port("postgres", workdir, None, attempt)
    return PostgresServer(
        f"postgresql+psycopg://postgres@127.0.0.1:{service.port}/postgres", service
    )
