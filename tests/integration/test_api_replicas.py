"""Two `facility api` processes on one PostgreSQL database behave as one API: failed logins,
back-off and the per-client limits are counted once across both, and a live-updates stream
that reconnects to the other process with `Last-Event-ID` gets the events it missed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from api.auth.tokens import ReportCodes
from facility.site import Site
from tests.conftest import DEMO_SITE
from tests.integration.helpers import ROOT, facility_argv, start_facility, stop_process, wait_for
from tests.services import free_port

pytestmark = pytest.mark.integration

SECRET = "replicas-secret-" + "r" * 32
PASSWORD = "steward-password-1"
READ_TIMEOUT_S = 20.0


class ApiProcess:
    def __init__(self, tmp_path: Path, name: str, db_url: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"api-{name}.log"
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = start_facility(
            ["api", "--site", str(DEMO_SITE), "--db-url", db_url, "--port", str(self.port),
             "--api-secret", SECRET, "--sqlite-path", str(tmp_path / f"telemetry-{name}.sqlite3"),
             "--api-sse-keepalive-s", "1"],
            self.log,
        )  # fmt: skip

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the API exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def login(self, username: str, password: str) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/auth/login",
            json={"username": username, "password": password},
            timeout=10,
        )


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    added = subprocess.run(
        facility_argv("users", "add", "steward", "--role", "steward", "--building", "b03",
                      "--password-stdin", "--db-url", postgres_url, "--site", str(DEMO_SITE)),
        input=f"{PASSWORD}\n".encode(), capture_output=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    apis: list[ApiProcess] = []
    try:
        for name in ("a", "b"):
            apis.append(ApiProcess(tmp_path, name, postgres_url))
        for api in apis:
            wait_for(api.answers, bool, timeout_s=60, what=f"the API on {api.port} to answer")
        yield apis[0], apis[1]
    finally:
        for api in apis:
            assert stop_process(api.process) == 0, api.log.read_text()[-3000:]


def test_two_processes_count_failed_logins_and_limits_once(
    replicas: tuple[ApiProcess, ApiProcess], demo_site: Site
) -> None:
    a, b = replicas
    both = (a, b)
    attempts = 0

    def attempt(api: ApiProcess, username: str, password: str = "wrong-guess-00") -> int:
        nonlocal attempts
        attempts += 1
        return api.login(username, password).status_code

    # Five failures, alternating between the processes: each answered 401, as on one process.
    assert [attempt(both[i % 2], "steward") for i in range(5)] == [401] * 5
    # The sixth try waits, on either process, even with the right password.
    waiting = b.login("steward", PASSWORD)
    attempts += 1
    assert waiting.status_code == 429
    assert int(waiting.headers["Retry-After"]) >= 1
    assert attempt(a, "steward", PASSWORD) == 429
    # 20 login attempts per client and minute in all, not 20 on each process.
    unknown = [attempt(both[i % 2], f"nobody-{i}") for i in range(20 - attempts)]
    assert unknown == [401] * len(unknown)
    assert attempts == 20
    limited = a.login("nobody-else", "wrong-guess-00")
    assert limited.status_code == 429
    assert "too many login attempts" in limited.json()["detail"]
    assert b.login("nobody-else", "wrong-guess-00").status_code == 429

    # Residents' reports: 5 per client address in the window, across both processes.
    codes = ReportCodes(
        SECRET, demo_site.id, [u.id for b_ in demo_site.buildings for u in b_.units]
    )
    code = codes.code_for(demo_site.building_by_id["b03"].units[0].id)
    body = {"code": code, "description": "the lift makes a noise"}
    statuses = [
        httpx.post(f"{both[i % 2].base}/api/v1/reports", json=body, timeout=10).status_code
        for i in range(6)
    ]
    assert statuses == [201] * 5 + [429]


def test_a_stream_resumed_on_the_other_process_replays_what_it_missed(
    replicas: tuple[ApiProcess, ApiProcess], demo_site: Site
) -> None:
    a, b = replicas
    login = a.login("steward", PASSWORD)
    assert login.status_code == 200, login.text
    steward = {"Authorization": f"Bearer {login.json()['access_token']}"}
    codes = ReportCodes(
        SECRET, demo_site.id, [u.id for b_ in demo_site.buildings for u in b_.units]
    )
    b03, b05 = (demo_site.building_by_id[b].units[0].id for b in ("b03", "b05"))

    def report(api: ApiProcess, unit_id: str) -> int:
        body = {"code": codes.code_for(unit_id), "description": f"noise in {unit_id}"}
        response = httpx.post(f"{api.base}/api/v1/reports", json=body, timeout=10)
        assert response.status_code == 201, response.text
        order: int = response.json()["work_order_id"]
        return order

    timeout = httpx.Timeout(10, read=READ_TIMEOUT_S)
    with httpx.Client(timeout=timeout) as http:
        with http.stream("GET", f"{a.base}/api/v1/events", headers=steward) as stream:
            lines = stream.iter_lines()
            assert next_events(lines, lambda e: e["type"] == "ready")[-1][1]["user"] == "steward"
            first = report(b, b03)  # filed on the other process: it reaches this stream too
            seen = next_events(lines, lambda e: e.get("work_order_id") == first)
        last_id = seen[-1][0]
        assert last_id is not None  # every feed event has its id
        missed = [report(b, b03), report(a, b03)]
        foreign = report(a, b05)  # not the steward's building
        # Wait until the feed has them (some process's monitor wrote them), then resume on b.
        wait_for(lambda: newest_order_in_feed(b, steward, last_id), lambda n: n == missed[-1],
                 timeout_s=30, what="the missed orders in the feed")  # fmt: skip
        resumed = {**steward, "Last-Event-ID": str(last_id)}
        with http.stream("GET", f"{b.base}/api/v1/events", headers=resumed) as again:
            lines = again.iter_lines()
            replayed = next_events(lines, lambda e: e.get("work_order_id") == missed[-1])
    ids = [i for i, _ in replayed if i is not None]
    assert ids == sorted(set(ids))
    assert all(i > last_id for i in ids)
    orders = [e["work_order_id"] for _, e in replayed if e["type"] == "work_order"]
    assert orders == missed  # each once, in order
    assert all(e.get("work_order_id") != foreign for _, e in replayed)
    assert {e["building_id"] for _, e in replayed if "building_id" in e} == {"b03"}
    assert replayed[0][1]["type"] == "ready"


def newest_order_in_feed(api: ApiProcess, headers: dict[str, str], after: int) -> int | None:
    """The newest work order among the events after `after` that `api` replays now."""
    resumed = {**headers, "Last-Event-ID": str(after)}
    newest = None
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=READ_TIMEOUT_S)) as http,
        http.stream("GET", f"{api.base}/api/v1/events", headers=resumed) as stream,
    ):
        for event_id, data in read_until_quiet(stream.iter_lines()):
            if event_id is not None and data["type"] == "work_order":
                newest = data["work_order_id"]
    return newest


def read_until_quiet(lines: Iterator[str]) -> list[tuple[int | None, dict[str, Any]]]:
    """The events up to the first keep-alive (a replay comes before it)."""
    events: list[tuple[int | None, dict[str, Any]]] = []
    event_id = None
    for line in lines:
        if line.startswith(": keep-alive"):
            return events
        if line.startswith("id: "):
            event_id = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            events.append((event_id, orjson.loads(line.removeprefix("data: "))))
            event_id = None
    return events


def next_events(
    lines: Iterator[str], until: Any, timeout_s: float = 30.0
) -> list[tuple[int | None, dict[str, Any]]]:
    """(id, data) of the events read until one for which `until(data)` holds."""
    deadline = time.monotonic() + timeout_s
    events: list[tuple[int | None, dict[str, Any]]] = []
    event_id = None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            data = orjson.loads(line.removeprefix("data: "))
            events.append((event_id, data))
            event_id = None
            if until(data):
                return events
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no such event within {timeout_s:g} s: {events}")
