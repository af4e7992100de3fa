"""HTTP hardening over real servers: the API as `facility api` runs it (ApiService's uvicorn)
and the gateway's status server. A 200 MB upload is refused while the API keeps answering;
X-Forwarded-For counts only from trusted proxies; no server banner."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from api.settings import ApiSettings
from facility.site import Site
from gateway.status_server import StatusServer
from runtime.services.api import ApiService
from runtime.settings.tree import HttpSettings
from tests.api_support import SECRET, T0, new_store
from tests.fakes import FakeClock
from tests.services import free_port

UPLOAD_BYTES = 200 * 1024 * 1024
CHUNK = 16 * 1024
WAIT_S = 20.0


@contextmanager
def serving(site: Site, tmp_path: Path, **settings: Any) -> Iterator[str]:
    """ApiService (the app on uvicorn as `facility api` configures it) on a free port."""
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", FakeClock(T0))
    http = HttpSettings(host="127.0.0.1", port=free_port(), graceful_shutdown_s=1)
    service = ApiService(
        site, store, ApiSettings(secret=SECRET, **settings), http, history=None, log_level="warning"
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not service.server.started:
        assert thread.is_alive(), "the API stopped at start-up"
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{http.port}"
    finally:
        stop.set()
        thread.join(timeout=15)
        store.engine.dispose()


@pytest.fixture
def api_url(demo_site: Site, tmp_path: Path) -> Iterator[str]:
    with serving(demo_site, tmp_path, login_attempts_per_client=3, reports_per_client=2) as url:
        yield url


def _status_of(sock: socket.socket) -> int:
    """The status code of the answer waiting on `sock`."""
    sock.settimeout(WAIT_S)
    head = b""
    while b"\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            break
        head += data
    return int(head.split(b" ", 2)[1])


def test_a_200_mb_upload_is_refused_while_health_keeps_answering(api_url: str) -> None:
    port = int(api_url.rsplit(":", 1)[1])
    rss_before = psutil.Process().memory_info().rss
    in_flight = threading.Event()
    health_answered = threading.Event()
    result: dict[str, Any] = {}

    def upload() -> None:
        """POST 200 MB, chunked, slowly; stop when the server answers."""
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /api/v1/reports HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            chunk = b"%x\r\n%s\r\n" % (CHUNK, b" " * CHUNK)
            while sent < UPLOAD_BYTES:
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer came
                try:
                    sock.sendall(chunk)
                except OSError:
                    break  # the server closed its side after answering
                sent += CHUNK
                if not in_flight.is_set():
                    in_flight.set()  # the upload has begun and is far from done ...
                    health_answered.wait(WAIT_S)  # ... and stays so until /health answered
                time.sleep(0.001)
            result["sent"] = sent
            result["health_answered_first"] = health_answered.is_set()
            result["status"] = _status_of(sock)

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    assert in_flight.wait(WAIT_S)
    health = httpx.get(f"{api_url}/health", timeout=WAIT_S)
    assert "status" not in result  # answered while the upload was in flight
    health_answered.set()
    uploader.join(WAIT_S * 2)
    assert health.status_code == 200
    assert result["health_answered_first"]
    assert result["status"] == 413
    assert result["sent"] < UPLOAD_BYTES // 10  # refused long before its end
    assert psutil.Process().memory_info().rss - rss_before < 50 * 1024 * 1024
    assert httpx.get(f"{api_url}/health", timeout=WAIT_S).status_code == 200


def test_a_declared_200_mb_body_is_refused_before_a_byte_of_it_is_sent(api_url: str) -> None:
    port = int(api_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % UPLOAD_BYTES
        )
        assert _status_of(sock) == 413


def test_no_server_banner_and_the_security_headers(api_url: str) -> None:
    response = httpx.get(f"{api_url}/health", timeout=WAIT_S)
    assert "server" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def _attempts(url: str, n: int) -> list[int]:
    return [
        httpx.post(
            f"{url}/api/v1/auth/login",
            json={"username": f"nobody{i}", "password": "x"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
            timeout=WAIT_S,
        ).status_code
        for i in range(n)
    ]


def test_uvicorn_does_not_believe_x_forwarded_for_by_default(api_url: str) -> None:
    """uvicorn's own default trusts 127.0.0.1: ApiService must not."""
    assert _attempts(api_url, 4) == [401, 401, 401, 429]
    report = {"code": "whatever", "description": "the lift is stuck"}
    reports = [
        httpx.post(
            f"{api_url}/api/v1/reports",
            json=report,
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
            timeout=WAIT_S,
        ).status_code
        for i in range(3)
    ]
    assert reports == [404, 404, 429]


def test_behind_a_trusted_proxy_each_client_counts_alone(demo_site: Site, tmp_path: Path) -> None:
    settings = {"login_attempts_per_client": 3, "trusted_proxies": ("127.0.0.1",)}
    with serving(demo_site, tmp_path, **settings) as url:
        assert _attempts(url, 5) == [401] * 5


# -- the gateway's status server ---------------------------------------------------------------


@pytest.fixture
def status_url() -> Iterator[str]:
    server = StatusServer("127.0.0.1", 0, metrics=list, health=lambda: (True, {"mqtt": True}))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_the_status_server_answers_get_only(status_url: str) -> None:
    health = httpx.get(f"{status_url}/health", timeout=WAIT_S)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert "server" not in health.headers
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"):
        refused = httpx.request(method, f"{status_url}/metrics", timeout=WAIT_S)
        assert refused.status_code == 405, method
        assert refused.headers["allow"] == "GET"
        assert "server" not in refused.headers


def test_the_status_server_refuses_bodies_unread(status_url: str) -> None:
    with_body = httpx.request("GET", f"{status_url}/health", content=b"x" * 10, timeout=WAIT_S)
    assert with_body.status_code == 413
    port = int(status_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % UPLOAD_BYTES
        )
        assert _status_of(sock) == 413
    assert httpx.get(f"{status_url}/health", timeout=WAIT_S).status_code == 200
