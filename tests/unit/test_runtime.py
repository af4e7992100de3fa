"""The composition root's lifecycle: start-up port checks, stop order, the periodic worker."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from facility.periodic import PeriodicWorker
from runtime.cli import main
from runtime.lifecycle import ServiceStack
from tests.conftest import DEMO_SITE, ROOT
from tests.services import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on for the test's length."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


def test_api_on_a_busy_port_stops_with_one_line(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["api", "--site", str(DEMO_SITE), "--port", str(busy_port),
         "--db-url", f"sqlite:///{tmp_path / 'wo.sqlite3'}"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"facility: error: setting http.port: cannot listen on 127.0.0.1:{busy_port} for the "
        f"API and dashboard: the port is in use by another process; choose another port with "
        f"--port or FACILITY_HTTP_PORT"
    )
    assert not (tmp_path / "wo.sqlite3").exists()  # checked before anything was opened


def test_gateway_on_a_busy_metrics_port_stops_before_connecting(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["gateway", "--site", str(DEMO_SITE), "--metrics-port", str(busy_port),
         "--db-url", f"sqlite:///{tmp_path / 'wo.sqlite3'}"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--metrics-port or FACILITY_GATEWAY_METRICS_PORT" in err
    assert not (tmp_path / "wo.sqlite3").exists()


def test_up_on_a_busy_dashboard_port_never_says_it_is_up(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["up", "--site", str(DEMO_SITE), "--port", str(busy_port), "--var-dir", str(tmp_path),
         "--metrics-port", "0"]
    )  # fmt: skip
    assert code == 2
    captured = capsys.readouterr()
    assert "is up" not in captured.out
    assert f"cannot listen on 127.0.0.1:{busy_port} for the dashboard" in captured.err


def test_up_names_the_embedded_broker_port_when_busy(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["up", "--mqtt-port", str(busy_port), "--var-dir", str(tmp_path), "--metrics-port", "0",
         "--port", str(free_port())]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{busy_port} for the embedded MQTT broker" in err
    assert "--mqtt-port or FACILITY_DEMO_BROKER_PORT" in err


class Recorder:
    def __init__(self, name: str, log: list[str], *, fail_start: bool = False) -> None:
        self.name, self.log, self.fail_start = name, log, fail_start

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.name == "b":
            raise RuntimeError("b fails to stop")


def test_services_stop_in_reverse_order_even_when_one_fails_to_stop() -> None:
    log: list[str] = []
    with ServiceStack() as services:
        for name in "abc":
            services.start(Recorder(name, log))
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_a_failed_start_stops_what_had_started() -> None:
    log: list[str] = []

    def start_three() -> None:
        with ServiceStack() as services:
            services.start(Recorder("a", log))
            services.start(Recorder("b2", log))
            services.start(Recorder("c", log, fail_start=True))

    with pytest.raises(RuntimeError, match="c cannot start"):
        start_three()
    assert log == ["start a", "start b2", "stop b2", "stop a"]


def test_periodic_worker_counts_failures_and_goes_on() -> None:
    calls: list[int] = []
    done = threading.Event()
    stopped = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first run fails")
        if len(calls) >= 3:
            done.set()

    worker = PeriodicWorker("test-job", 0.001, job, on_stop=stopped.set)
    worker.start()
    assert done.wait(30)
    worker.stop()
    assert worker.failures == 1
    assert stopped.is_set()
    assert not worker.running


def test_periodic_worker_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval must be more than 0"):
        PeriodicWorker("bad", 0, lambda: None)


_STUCK_STOP = """
import threading, time
from runtime.lifecycle import stop_on_signals

def stuck() -> None:
    time.sleep(30)  # a thread the stop waits for and that never ends

stop = stop_on_signals(stacks_after_s=0.5)
print("ready", flush=True)
stop.wait()
waiter = threading.Thread(target=stuck, name="stuck-writer", daemon=True)
waiter.start()
waiter.join(3)
"""


def test_a_stop_that_hangs_prints_every_threads_stack() -> None:
    """A process still stopping well after SIGTERM writes where each thread waits to stderr,
    for whoever kills it; it goes on stopping meanwhile."""
    process = subprocess.Popen(
        [sys.executable, "-c", _STUCK_STOP],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = stderr.decode()
    assert "Timeout (0:00:00.500000)!" in text
    assert "in stuck" in text  # the stuck thread's frame
    assert process.returncode == 0
