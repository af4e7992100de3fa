"""The gzip of a line-protocol request body: ISA-L at level 1, zlib above it.

Level 1 (the default) is the gateway's hot path: ISA-L's level 1 makes the same format (any
gzip reader inflates it) in about a fifth of zlib's CPU, and on the gateway's bodies a slightly
smaller one (docs/benchmarks.md). Levels 2-9 are zlib's, as before, for a slow link. Level 0
sends the body as it is: the default for a store on this host (`StoreSettings.gzip_level`),
where compressing only costs CPU on both ends (InfluxDB 1.x used ~4 % more CPU for the same
points gzipped).
"""

from __future__ import annotations

import gzip

from isal import igzip

FAST_LEVEL = 1


def compresses(level: int) -> bool:
    """Whether bodies at this level are gzipped (sent with Content-Encoding: gzip)."""
    return level > 0


def compress(body: bytes, level: int = FAST_LEVEL) -> bytes:
    if level <= 0:
        return body
    if level <= FAST_LEVEL:
        return igzip.compress(body, FAST_LEVEL)
    return gzip.compress(body, compresslevel=level)
