"""One HTTP client for the tests' polls of local services (readiness, /health, /metrics).

`httpx.get` builds a client, and its TLS context, per call: about 28 ms of CPU here, spent on
every poll of a loop that waits for a service, beside the services under test on two cores.
"""

from __future__ import annotations

import httpx

LOCAL = httpx.Client(timeout=5.0)
