"""The writers' kept-alive HTTP connections against a loopback server whose misbehaviour the
test chooses: reuse, a connection the server dropped while idle, refusal, silence, garbage."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from facility.site import Site
from ingest.errors import StoreRejectedError, StoreUnavailableError
from ingest.http_exchange import ExchangeError, PooledConnections
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from tests.unit.test_http_writer import one_pump


@dataclass
class Script:
    """What the fake store does; what it saw."""

    status: int = 204
    body: bytes = b""
    drop_after_answer: bool = False
    """Close the connection after answering, without saying so (an idle timeout)."""
    say_close: bool = False
    hold: threading.Event | None = None
    """Answer only once set (a hung store)."""
    garbage: bool = False
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    peers: set[int] = field(default_factory=set)
    """Client ports: one per connection the client opened."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def _answer(self) -> None:
        script = self.server.script
        # what to answer, read once: the test may change the script as soon as it has an answer
        status, answer, drop, say_close = (
            script.status,
            script.body,
            script.drop_after_answer,
            script.say_close,
        )
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        script.seen.append((self.command, self.path, dict(self.headers.items()), body))
        script.peers.add(self.client_address[1])
        if script.hold is not None:
            script.hold.wait(10)
        if script.garbage:
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if say_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)
        if drop:
            self.close_connection = True

    do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

    def setup(self) -> None:
        super().setup()
        self.server.connections.append(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.connections: list[socket.socket] = []

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (the hung-store test's timeout) is what the test wants; any
        other error is printed as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def close_all(self) -> None:
        """Stop serving and end every connection, so no handler thread outlives the test."""
        self.shutdown()
        self.server_close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def opened() -> Iterator[list[PooledConnections]]:
    """Connections a test opened, closed after it (no socket left to the garbage collector)."""
    made: list[PooledConnections] = []
    yield made
    for connections in made:
        connections.close()


def pooled(opened: list[PooledConnections], url: str) -> PooledConnections:
    opened.append(PooledConnections(url))
    return opened[-1]


@pytest.fixture
def store() -> Iterator[tuple[Script, str]]:
    script = Script()
    server = Server(script)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if script.hold is not None:
            script.hold.set()
        server.close_all()
        thread.join(5)


def test_requests_share_one_kept_alive_connection(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    connections = pooled(opened, url)
    for n in range(5):
        answer = connections.exchange("POST", f"/write?n={n}", {"X-Test": "1"}, b"body", 5.0)
        assert answer.status_code == 204
    assert [path for _, path, _, _ in script.seen] == [f"/write?n={n}" for n in range(5)]
    assert script.seen[0][2]["X-Test"] == "1"
    assert len(script.peers) == 1


def test_a_connection_the_store_dropped_while_idle_is_replaced_and_the_request_sent_once_more(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    script.drop_after_answer = True
    connections = pooled(opened, url)
    assert connections.exchange("POST", "/write", {}, b"first", 5.0).status_code == 204
    assert connections.exchange("POST", "/write", {}, b"second", 5.0).status_code == 204
    assert [body for _, _, _, body in script.seen] == [b"first", b"second"]
    assert len(script.peers) == 2


def test_an_answer_that_says_close_is_not_kept(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    script.say_close = True
    connections = pooled(opened, url)
    for _ in range(3):
        assert connections.exchange("GET", "/ping", {}, None, 5.0).status_code == 204
    assert len(script.peers) == 3


def test_callers_at_once_get_a_connection_each(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    script.hold = threading.Event()
    connections = pooled(opened, url)
    answers: list[int] = []
    callers = [
        threading.Thread(
            target=lambda: answers.append(connections.exchange("GET", "/", {}, None, 5).status_code)
        )
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    while len(script.seen) < 2:  # both requests are at the store, neither answered yet
        threading.Event().wait(0.01)
    script.hold.set()
    for caller in callers:
        caller.join(5)
    assert answers == [204, 204]
    assert len(script.peers) == 2


def test_a_refused_connection_is_an_exchange_error_with_its_cause() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        connections = PooledConnections(f"http://127.0.0.1:{port}")
        with pytest.raises(ExchangeError) as raised:
            connections.exchange("GET", "/", {}, None, 5.0)
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_a_store_that_does_not_answer_in_time_is_an_exchange_error(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    script.hold = threading.Event()
    with pytest.raises(ExchangeError) as raised:
        pooled(opened, url).exchange("POST", "/write", {}, b"x", 0.2)
    assert isinstance(raised.value.__cause__, TimeoutError)


def test_an_answer_that_is_not_http_is_an_exchange_error(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    script.garbage = True
    with pytest.raises(ExchangeError, match="BadStatusLine"):
        pooled(opened, url).exchange("GET", "/ping", {}, None, 5.0)


def test_a_base_url_path_prefixes_every_target(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    pooled(opened, url + "/influx/").exchange("GET", "/ping", {}, None, 5.0)
    assert script.seen[0][1] == "/influx/ping"


@pytest.mark.parametrize("url", ["ftp://influx", "influx:8086", "http://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        PooledConnections(url)


def test_after_close_nothing_is_sent(
    store: tuple[Script, str], opened: list[PooledConnections]
) -> None:
    script, url = store
    connections = pooled(opened, url)
    connections.close()
    with pytest.raises(ExchangeError, match="closed"):
        connections.exchange("GET", "/ping", {}, None, 5.0)
    assert script.seen == []


def test_the_writer_through_its_own_connections(store: tuple[Script, str], demo_site: Site) -> None:
    """The writer as the gateway runs it (no transport given): the request, then answers."""
    script, url = store
    writer = InfluxV1Writer(
        demo_site, InfluxV1Settings(url=url, database="db", username="gw", password="pw")
    )
    assert writer.write(one_pump(demo_site)).written == 2
    method, path, headers, body = script.seen[0]
    assert (method, path) == ("POST", "/write?db=db&precision=ms")
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Authorization"] == "Basic Z3c6cHc="
    assert gzip.decompress(body).decode().count("\n") == 1

    script.status, script.body = 400, b'{"error":"partial write: unable to parse \'x\' dropped=1"}'
    result = writer.write(one_pump(demo_site))
    assert (result.written, result.rejected[0].reason) == (1, "unparsable_point")

    script.body = b'{"error":"unable to parse everything"}'
    with pytest.raises(StoreRejectedError, match="unable to parse everything"):
        writer.write(one_pump(demo_site))

    script.status, script.body = 503, b"overloaded"
    with pytest.raises(StoreUnavailableError, match="overloaded"):
        writer.write(one_pump(demo_site))
    writer.close()
    assert len(script.peers) == 1
