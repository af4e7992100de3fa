"""The spool's record format: one gateway batch as compressed numpy columns behind a checked header.

    record  = header payload
    header  = b"FSP2" | payload length | readings | crc32 of payload (u32 each, little-endian)
    payload = zlib(level 1) of: meta length (u32) | meta (JSON: site, [[kind, rows], ...])
              | per kind: device int32[n] | ts_ms deltas int64[n] | seq deltas int64[n]
                          | values float64, one field after another (column-major)

Columns compress far better than rows (an unreported field is a run of NaNs, deltas of
timestamps repeat); on the demo site that is 13-21 bytes a reading against ~135 for the old
one-`.npz`-per-batch files (docs/benchmarks.md). The CRC makes a torn or damaged record
detectable, so a crash mid-append never passes garbage off as readings. Everything is
numpy per column: nothing runs per reading.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import orjson

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from ingest.errors import SpoolError

MAGIC = b"FSP2"
HEADER = struct.Struct("<4sIII")
_META_LEN = struct.Struct("<I")
MAX_PAYLOAD = 1 << 30
"""A header claiming more than this is damage, not a record."""


def encode_record(batch: Batch, *, level: int = 1) -> bytes:
    """The batch as one record (header + compressed columns)."""
    kinds = [kb for kb in batch if len(kb)]
    meta = orjson.dumps({"site": batch.site_id, "kinds": [[kb.kind.name, len(kb)] for kb in kinds]})
    parts: list[bytes] = [_META_LEN.pack(len(meta)), meta]
    for kb in kinds:
        parts.append(kb.device.astype("<i4", copy=False).tobytes())
        parts.append(np.diff(kb.ts_ms, prepend=np.int64(0)).astype("<i8", copy=False).tobytes())
        parts.append(np.diff(kb.seq, prepend=np.int64(0)).astype("<i8", copy=False).tobytes())
        parts.append(kb.values.astype("<f8", copy=False).tobytes(order="F"))
    payload = zlib.compress(b"".join(parts), level)
    return HEADER.pack(MAGIC, len(payload), len(batch), zlib.crc32(payload)) + payload


def read_header(data: bytes | memoryview, offset: int = 0) -> tuple[int, int, int] | None:
    """(payload length, readings, crc) of the record at `offset`, or None if it is no header."""
    if len(data) - offset < HEADER.size:
        return None
    magic, length, readings, crc = HEADER.unpack_from(data, offset)
    if magic != MAGIC or length > MAX_PAYLOAD:
        return None
    return length, readings, crc


def decode_payload(payload: bytes) -> Batch:
    """The batch of one record's payload (already checked against its CRC)."""
    try:
        body = memoryview(bytearray(zlib.decompress(payload)))
        (meta_len,) = _META_LEN.unpack_from(body, 0)
        meta = orjson.loads(bytes(body[4 : 4 + meta_len]))
        at = 4 + meta_len
        kinds: dict[str, KindBatch] = {}
        for name, rows in meta["kinds"]:
            spec = KINDS[name]
            n, f = int(rows), len(spec.fields)
            device = np.frombuffer(body, "<i4", n, at).astype(np.int32, copy=False)
            at += 4 * n
            ts_ms = np.cumsum(np.frombuffer(body, "<i8", n, at), dtype=np.int64)
            at += 8 * n
            seq = np.cumsum(np.frombuffer(body, "<i8", n, at), dtype=np.int64)
            at += 8 * n
            values = np.frombuffer(body, "<f8", n * f, at).reshape(f, n).T.astype(np.float64)
            at += 8 * n * f
            kinds[name] = KindBatch(spec, device, ts_ms, seq, np.asfortranarray(values))
        if at != len(body):
            raise ValueError(f"{len(body) - at} bytes left over")
        return Batch(str(meta["site"]), kinds)
    except (zlib.error, ValueError, KeyError, TypeError, struct.error) as exc:
        raise SpoolError(f"spool record does not decode: {exc}") from exc


def decode_legacy_npz(data: bytes) -> Batch:
    """A batch of the old format (one `.npz` file per batch), for migrating old spools."""
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        site_id = str(stored["site_id"])
        kinds = {}
        for name, spec in KINDS.items():
            if f"{name}.device" not in stored:
                continue
            kinds[name] = KindBatch(
                spec,
                stored[f"{name}.device"],
                stored[f"{name}.ts_ms"],
                stored[f"{name}.seq"],
                stored[f"{name}.values"],
            )
    return Batch(site_id, kinds)


def encode_legacy_npz(batch: Batch) -> bytes:
    """The old format's bytes: only for tests of the migration."""
    arrays: dict[str, np.ndarray] = {"site_id": np.array(batch.site_id)}
    for kb in batch:
        name = kb.kind.name
        arrays[f"{name}.device"] = kb.device
        arrays[f"{name}.ts_ms"] = kb.ts_ms
        arrays[f"{name}.seq"] = kb.seq
        arrays[f"{name}.values"] = kb.values
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()
