"""ingest/gzip_body.py: any gzip reader inflates the body back, at every level."""

from __future__ import annotations

import gzip
import zlib

import pytest

from ingest import gzip_body

BODY = b"\n".join(
    b"pump,site=s1,building=b,unit=u,device=p%d running=true,suction_bar=%.3f %d"
    % (i % 40, 1.4 + i % 7 / 100, 1_790_000_000_000 + i)
    for i in range(5000)
)


@pytest.mark.parametrize("level", [1, 2, 6, 9])
def test_the_body_inflates_back(level: int) -> None:
    packed = gzip_body.compress(BODY, level)
    assert packed[:2] == b"\x1f\x8b"  # a gzip member, as Content-Encoding: gzip says
    assert gzip.decompress(packed) == BODY
    assert zlib.decompress(packed, wbits=31) == BODY
    assert len(packed) < len(BODY) / 4


def test_level_1_is_no_bigger_than_zlibs() -> None:
    assert len(gzip_body.compress(BODY, 1)) <= len(gzip.compress(BODY, compresslevel=1)) * 1.05


def test_an_empty_body() -> None:
    assert gzip.decompress(gzip_body.compress(b"", 1)) == b""


def test_level_0_is_the_body_as_it_is() -> None:
    assert gzip_body.compress(BODY, 0) is BODY
    assert not gzip_body.compresses(0)
    assert gzip_body.compresses(1)
