"""A small HTTP endpoint of a gateway process: /metrics (Prometheus) and /health (JSON).

It runs in its own thread on the standard library's server: it must keep answering while the
gateway loop is busy or the store is down, and it must not pull a web framework into the
gateway process.

/health has three answers. 200 "ok"; 200 "degraded" when the process still does its job but
a part says it is impaired (a part of the detail with a non-empty `degraded` list, e.g. the
rules with a quarantined rule: readings are still stored and acked), its reasons gathered at
the top; 503 "degraded" when the health check fails (MQTT or the store down), so a load
balancer or orchestrator acts only on the last. `serving` tells the two "degraded" apart.

Only GET, without a body: any other method is a 405 and a body a 413, answered from the
request line and headers (the body is never read), with no `Server` banner. A client gets
`TIMEOUT_S` per read: a slow one holds one thread for that long at most.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from facility.prometheus import CONTENT_TYPE, Metric, render

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0

Health = Callable[[], tuple[bool, dict[str, Any]]]


class StatusServer:
    def __init__(
        self, host: str, port: int, *, metrics: Callable[[], Iterable[Metric]], health: Health
    ) -> None:
        collect, check = metrics, health

        class Handler(BaseHTTPRequestHandler):
            timeout = TIMEOUT_S

            def parse_request(self) -> bool:
                """The request line and headers are read: refuse what is not a plain GET."""
                if not super().parse_request():
                    return False
                if self.command != "GET":
                    self.close_connection = True
                    self._send(405, "text/plain", b"only GET\n", {"Allow": "GET"})
                    return False
                if self.headers.get("Transfer-Encoding") or _length(self.headers) != 0:
                    self.close_connection = True
                    self._send(413, "text/plain", b"no request body here\n")
                    return False
                return True

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE, render(collect()).encode())
                elif self.path == "/health":
                    ok, detail = check()
                    reasons = impairments(detail)
                    status = "ok" if ok and not reasons else "degraded"
                    answer = {"status": status, "serving": ok, **detail}
                    if reasons:
                        answer["degraded"] = reasons
                    body = json.dumps(answer).encode()
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(
                self,
                status: int,
                content_type: str,
                body: bytes,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response_only(status)  # no Server banner (send_response adds one)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                """Malformed requests (http.server's own answers), also without the banner."""
                self.close_connection = True
                self._send(code, "text/plain", f"{(message or str(code))[:100]}\n".encode())

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would flood the log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status-server", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on port %d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _length(headers: Message) -> int:
    """The declared body length; a malformed one counts as a body (refused)."""
    value = headers.get("Content-Length")
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return -1


def impairments(detail: dict[str, Any]) -> list[str]:
    """The `degraded` reasons of the detail's parts (and of the detail itself), in order."""
    parts = [detail, *(part for part in detail.values() if isinstance(part, dict))]
    return [str(reason) for part in parts for reason in part.get("degraded") or ()]
