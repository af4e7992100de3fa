"""Prepared line-protocol requests sent to InfluxDB 1.x from several clients at once: the
store's own ceiling, as the benchmarks measure it beside the gateway."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx


def post_bodies(
    url: str, database: str, bodies: list[bytes], writers: int, *, gzipped: bool, timeout_s: float
) -> None:
    """Each of `writers` clients sends its share of the bodies (every `writers`-th) one by
    one, all at once; raises on a refused write."""
    headers = {"Content-Encoding": "gzip"} if gzipped else {}

    def send(share: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=timeout_s, headers=headers) as client:
            for body in share:
                client.post(
                    "/write", params={"db": database, "precision": "ms"}, content=body
                ).raise_for_status()

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(send, [bodies[i::writers] for i in range(writers)]))
