"""The shipped nginx site (deploy/nginx/facility.conf) in front of a real `facility api` that
runs with the shipped production settings (deploy/facility.production.toml): `nginx -t`
accepts the site; over TLS, a live-updates event reaches the client through nginx as it
happens; and the X-Forwarded-For a client sends is overwritten, so the API's per-client login
limit counts the address nginx saw — rotating the header buys nothing, while another real
client keeps its own budget.

nginx and the API listen on free loopback ports and are stopped by PID. Clients connect from
two loopback addresses (127.0.0.1 is also the proxy the settings trust; 127.0.0.2 is not).
"""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from api.auth.tokens import ReportCodes
from facility.site import Site
from tests.conftest import DEMO_SITE
from tests.integration.helpers import ROOT, facility_argv, start_facility, stop_process, wait_for
from tests.integration.nginx_site import (
    SITE,
    make_certificate,
    nginx_argv,
    site_for_test,
    write_config,
)
from tests.services import STOP_TIMEOUT_S, ServiceProcess, find_binary, free_port

pytestmark = pytest.mark.integration

PRODUCTION_TOML = ROOT / "deploy" / "facility.production.toml"
SECRET = "nginx-test-secret-" + "n" * 32
PASSWORD = "steward-password-1"
LOGINS_PER_CLIENT = 3
READ_TIMEOUT_S = 20.0
SPOOFED = ("198.51.100.7", "198.51.100.8", "198.51.100.9", "203.0.113.4")


@dataclass
class Proxied:
    https: str
    http: str
    ca: ssl.SSLContext
    db_path: Path

    def client(self, source: str) -> httpx.Client:
        """A client whose connections come from `source` (a loopback address)."""
        transport = httpx.HTTPTransport(verify=self.ca, local_address=source)
        timeout = httpx.Timeout(10, read=READ_TIMEOUT_S)
        return httpx.Client(base_url=self.https, transport=transport, timeout=timeout)


def _nginx_config(tmp_path: Path, api_port: int) -> tuple[Path, int, int, Path]:
    openssl = find_binary("openssl")
    tls = make_certificate(openssl, tmp_path)
    https_port, http_port = free_port(), free_port()
    site = site_for_test(SITE.read_text(), https_port=https_port, http_port=http_port,
                         api_port=api_port, tls=tls)  # fmt: skip
    return write_config(tmp_path, site), https_port, http_port, tls.cert


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx = find_binary("nginx", "/usr/sbin/nginx")
    main, *_ = _nginx_config(tmp_path, free_port())
    checked = subprocess.run(nginx_argv(nginx, main, "-t"), capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    # The check can fail: a misspelt directive is refused.
    site = main.parent / "facility.conf"
    site.write_text(site.read_text().replace("proxy_buffering off;", "proxy_bufering off;"))
    refused = subprocess.run(nginx_argv(nginx, main, "-t"), capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "proxy_bufering" in refused.stderr


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Proxied]:
    nginx = find_binary("nginx", "/usr/sbin/nginx")
    db_path = tmp_path / "facility.sqlite3"
    db_url = f"sqlite:///{db_path}"
    added = subprocess.run(
        facility_argv("users", "add", "steward", "--role", "steward", "--building", "b03",
                      "--password-stdin", "--db-url", db_url, "--site", str(DEMO_SITE)),
        input=f"{PASSWORD}\n".encode(), capture_output=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    api_port = free_port()
    api_log = tmp_path / "api.log"
    api = start_facility(
        ["--config", str(PRODUCTION_TOML), "api", "--site", str(DEMO_SITE), "--db-url", db_url,
         "--store", "sqlite", "--sqlite-path", str(tmp_path / "telemetry.sqlite3"),
         "--port", str(api_port), "--api-secret", SECRET, "--api-sse-keepalive-s", "1",
         "--api-login-attempts-per-client", str(LOGINS_PER_CLIENT)],
        api_log,
    )  # fmt: skip
    proxy: ServiceProcess | None = None
    try:

        def api_answers() -> bool:
            if api.poll() is not None:
                raise AssertionError(f"the API exited: {api_log.read_text()[-3000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2).is_success
            except httpx.HTTPError:
                return False

        wait_for(api_answers, bool, timeout_s=60, what="the API to answer")
        main, https_port, http_port, cert = _nginx_config(tmp_path, api_port)
        ca = ssl.create_default_context(cafile=str(cert))
        argv = nginx_argv(nginx, main)
        log = (tmp_path / "nginx.out").open("wb")
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
        log.close()

        def proxy_answers() -> bool:
            try:
                return httpx.get(f"https://127.0.0.1:{https_port}/health", verify=ca,
                                 timeout=2).is_success  # fmt: skip
            except httpx.HTTPError:
                return False

        proxy = ServiceProcess("nginx", process, https_port, tmp_path / "error.log", argv,
                               tmp_path, proxy_answers)  # fmt: skip
        proxy.wait_ready(proxy_answers)
        yield Proxied(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", ca,
                      db_path)  # fmt: skip
    finally:
        if proxy is not None:
            proxy.stop()
        assert stop_process(api, STOP_TIMEOUT_S) == 0, api_log.read_text()[-3000:]


def test_tls_and_the_redirect_from_plain_http(proxied: Proxied) -> None:
    with proxied.client("127.0.0.1") as client:
        health = client.get("/health")
    assert health.status_code == 200
    assert health.headers["strict-transport-security"].startswith("max-age=")
    assert "server" not in health.headers or "nginx/" not in health.headers["server"]
    redirect = httpx.get(f"{proxied.http}/orders", timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{proxied.https}/health", timeout=10)  # the system's CAs do not know it


def test_a_live_update_reaches_the_client_through_nginx(proxied: Proxied, demo_site: Site) -> None:
    codes = ReportCodes(SECRET, demo_site.id, [u.id for b in demo_site.buildings for u in b.units])
    unit_id = demo_site.building_by_id["b03"].units[0].id
    with proxied.client("127.0.0.2") as client:
        login = client.post("/api/v1/auth/login", json={"username": "steward",
                                                        "password": PASSWORD})  # fmt: skip
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        with client.stream("GET", "/api/v1/events", headers=headers) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next_event(lines, lambda e: e["type"] == "ready")["user"] == "steward"
            body = {"code": codes.code_for(unit_id), "description": "the lift makes a noise"}
            report = client.post("/api/v1/reports", json=body)
            assert report.status_code == 201, report.text
            order_id = report.json()["work_order_id"]
            # The stream is still open: the event came through nginx as it happened.
            event = next_event(lines, lambda e: e.get("work_order_id") == order_id)
    assert event["type"] == "work_order"


def test_a_client_supplied_forwarded_for_is_overwritten(proxied: Proxied) -> None:
    def attempt(client: httpx.Client, username: str, spoof: str) -> int:
        body = {"username": username, "password": "wrong-guess-00"}
        return client.post("/api/v1/auth/login", json=body,
                           headers={"X-Forwarded-For": spoof}).status_code  # fmt: skip

    with proxied.client("127.0.0.1") as local, proxied.client("127.0.0.2") as other:
        # A client on the proxy's own address (trusted by the API): had nginx appended to its
        # header, the API would take the spoofed address as the client, a fresh one each time.
        tries = [attempt(local, f"nobody-{i}", SPOOFED[i]) for i in range(LOGINS_PER_CLIENT)]
        assert tries == [401] * LOGINS_PER_CLIENT
        assert attempt(local, "nobody-else", SPOOFED[-1]) == 429
        # Another real client is another client: nginx's address for it is believed.
        assert attempt(other, "nobody-0", SPOOFED[0]) == 401
    engine = create_engine(f"sqlite:///{proxied.db_path}")
    try:
        with engine.connect() as conn:
            keys = set(conn.execute(text("SELECT key FROM rate_limit_hits WHERE scope = 'login'"))
                       .scalars())  # fmt: skip
    finally:
        engine.dispose()
    assert keys == {"127.0.0.1", "127.0.0.2"}


def next_event(
    lines: Iterator[str], until: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0
) -> dict[str, Any]:
    """The data of the first event for which `until(data)` holds."""
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line.startswith("data: "):
            data: dict[str, Any] = orjson.loads(line.removeprefix("data: "))
            if until(data):
                return data
        if time.monotonic() > deadline:
            break
    raise AssertionError("the stream ended or went on without the event")
