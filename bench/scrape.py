"""Reading a gateway's /metrics while a benchmark runs, without perturbing what it measures.

One client for every scrape (the tests' `tests.local_http.LOCAL`): `httpx.get` builds a client
(and its TLS context) per call, about 28 ms of CPU here, so polling every 20 ms that way took
more than half of one of the machine's two cores away from the gateway and the store in the
very rows it timed.
"""

from __future__ import annotations

import httpx

from tests.local_http import LOCAL


def metrics(port: int) -> dict[str, float]:
    """The unlabelled samples of the gateway's /metrics; empty while it does not answer."""
    try:
        text = LOCAL.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()[:2]
            out[name] = float(value)
    return out
