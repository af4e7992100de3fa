"""The API's own metrics (Prometheus text via `facility.prometheus`) and the ASGI middleware
that counts requests by route template, method and status."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from facility.prometheus import Metric

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.seconds: dict[tuple[str, str], float] = {}
        self.login_failures = 0
        self.login_backoffs = 0
        self.reports = 0
        self.rate_limited = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, str(status))] += 1
            key = (route, method)
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def prometheus(self) -> list[Metric]:
        with self._lock:
            requests: dict[tuple[tuple[str, str], ...], float] = {
                (("method", m), ("route", r), ("status", s)): float(n)
                for (r, m, s), n in sorted(self.requests.items())
            }
            seconds: dict[tuple[tuple[str, str], ...], float] = {
                (("method", m), ("route", r)): v for (r, m), v in sorted(self.seconds.items())
            }
            counters = [
                Metric.single(
                    "facility_api_login_failures_total",
                    "counter",
                    "Failed logins (wrong password or unknown user).",
                    self.login_failures,
                ),
                Metric.single(
                    "facility_api_login_backoffs_total",
                    "counter",
                    "Logins refused because this client must wait before trying this account"
                    " again (after repeated failures from it).",
                    self.login_backoffs,
                ),
                Metric.single(
                    "facility_api_rate_limited_total",
                    "counter",
                    "Requests refused by a rate limit (login, reports).",
                    self.rate_limited,
                ),
                Metric.single(
                    "facility_api_reports_total",
                    "counter",
                    "Work orders filed from residents' reports.",
                    self.reports,
                ),
            ]
        return [
            Metric(
                "facility_api_requests_total",
                "counter",
                "API requests by route, method and status.",
                requests,
            ),
            Metric(
                "facility_api_request_seconds_total",
                "counter",
                "Time spent answering API requests, by route and method (until the answer's"
                " start for streams).",
                seconds,
            ),
            *counters,
        ]


class MetricsMiddleware:
    """Counts every HTTP request under its route template (`/api/v1/work-orders/{id}`), so
    ids do not blow up the label set; unmatched paths count as `unmatched`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = scope.get("route")
                self.metrics.observe(
                    getattr(route, "path", "unmatched"),
                    scope["method"],
                    status,
                    time.perf_counter() - started,
                )
            await send(message)

        await self.app(scope, receive, send_counting)
