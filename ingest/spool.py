"""The durable on-disk spool: batches the store could not take yet, as append-only segments.

A segment (`<number>.seg`) holds many records, one per gateway batch (`ingest.spool_codec`:
compressed columns behind a CRC-checked header). `append` writes a record and fsyncs the
segment before it returns, so the gateway may ack the batch's messages; a new segment's
directory entry is fsynced too. The drainer `take`s records from the oldest segment on, as
many as make one good-sized store write, and `commit`s them once the store has them; a
segment whose records are all committed is deleted. A crash between the store's answer and
the commit only means those records are written again, which every store takes as the same
points (they are keyed by kind + device + timestamp).

At start the segments of a previous run are read and checked record by record. A crash in
the middle of an append leaves a torn tail: it is cut off (kept beside the segment as
`<segment>.torn-<offset>` for inspection), counted, and logged, and every record before it
stays. Old-format spools (one `.npz` file per batch) are migrated into a segment first.

The size cap counts the segment files' bytes. When a record does not fit, `when_full`
decides: `block` raises `SpoolFullError` (the gateway stops acking and the broker holds the
stream), `drop-oldest` deletes the oldest segments and counts their readings as dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facility.batch import Batch
from ingest.errors import SpoolError, SpoolFullError
from ingest.spool_codec import HEADER, decode_legacy_npz, decode_payload, encode_record, read_header
from ingest.spool_files import RecordRef, fsync_dir, lock_directory, scan_segment

log = logging.getLogger(__name__)

WhenFull = Literal["block", "drop-oldest"]
_SEGMENT = re.compile(r"^(\d{16})\.seg$")
_LEGACY = re.compile(r"^(\d{16})\.(\d+)\.npz$")


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    records: list[RecordRef] = field(default_factory=list)
    consumed: int = 0
    """Records from the start that the store has (committed)."""
    size: int = 0

    @property
    def pending_readings(self) -> int:
        return sum(r.readings for r in self.records[self.consumed :])


@dataclass(frozen=True, slots=True)
class Lease:
    """Records handed to the drainer, merged into one batch; `commit` them once written."""

    batch: Batch
    upto: tuple[tuple[int, int], ...]
    """(segment number, records consumed once this lease is committed)."""
    records: int
    corrupt_readings: int = 0


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 4 << 20,
        when_full: WhenFull = "block",
    ) -> None:
        if max_bytes <= 0:
            raise SpoolError("spool max_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = max(min(segment_bytes, max_bytes // 4), 1)
        """At most a quarter of the cap, so drop-oldest never drops most of the spool at once."""
        self.when_full = when_full
        self.dropped_readings = 0
        self.torn_records = 0
        self.corrupt_readings = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._segments: list[_Segment] = []
        self._active: int | None = None
        """File descriptor of the last segment while this run appends to it."""
        self._bytes = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc}") from exc
        self._lock_file = lock_directory(directory)
        self._recover()
        self._next = self._segments[-1].number + 1 if self._segments else 1
        self._migrate_legacy()
        if self._segments:
            log.info(
                "spool %s holds %d record(s), %d readings from a previous run",
                directory, len(self), self.readings,
            )  # fmt: skip

    # -- state ------------------------------------------------------------------------------

    @property
    def disk_bytes(self) -> int:
        """Bytes of the segment files: what the cap counts."""
        with self._lock:
            return self._bytes

    @property
    def readings(self) -> int:
        with self._lock:
            return sum(s.pending_readings for s in self._segments)

    @property
    def segments(self) -> int:
        with self._lock:
            return len(self._segments)

    def __len__(self) -> int:
        """Records not yet committed to the store."""
        with self._lock:
            return sum(len(s.records) - s.consumed for s in self._segments)

    def close(self) -> None:
        """Let go of the directory (another process may then take it); idempotent."""
        with self._lock:
            self._seal()
        self._lock_file.close()

    # -- appending --------------------------------------------------------------------------

    def append(self, batch: Batch) -> None:
        """Make the batch durable in the spool; raises SpoolFullError when full and blocking."""
        record = encode_record(batch)
        with self._lock:
            if self._bytes and self._bytes + len(record) > self.max_bytes:
                if self.when_full != "drop-oldest":
                    raise SpoolFullError(f"spool {self.directory} is full ({self._bytes} bytes)")
                self._drop_oldest(len(record))
            self._write(record, len(batch))
            self._changed.notify_all()

    def _write(self, record: bytes, readings: int) -> None:
        segment = self._writable(len(record))
        assert self._active is not None
        offset = segment.size
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(self._active, view) :]
            os.fsync(self._active)
        except OSError as exc:
            with contextlib.suppress(OSError):  # never leave half a record behind us
                os.ftruncate(self._active, offset)
            raise SpoolError(f"cannot append to spool segment {segment.path}: {exc}") from exc
        segment.records.append(RecordRef(offset, len(record), readings))
        segment.size += len(record)
        self._bytes += len(record)

    def _writable(self, length: int) -> _Segment:
        """The segment to append `length` bytes to: a new one when the last is full."""
        if self._active is not None:
            last = self._segments[-1]
            if last.size == 0 or last.size + length <= self.segment_bytes:
                return last
            self._seal()
        path = self.directory / f"{self._next:016d}.seg"
        try:
            self._active = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            fsync_dir(self.directory)
        except OSError as exc:
            raise SpoolError(f"cannot create spool segment {path}: {exc}") from exc
        segment = _Segment(self._next, path)
        self._next += 1
        self._segments.append(segment)
        return segment

    def _seal(self) -> None:
        if self._active is not None:
            os.close(self._active)
            self._active = None

    def _drop_oldest(self, need: int) -> None:
        while self._segments and self._bytes + need > self.max_bytes:
            oldest = self._segments[0]
            if self._active is not None and oldest is self._segments[-1]:
                self._seal()
            lost = oldest.pending_readings
            self._forget(oldest)
            self.dropped_readings += lost
            log.error(
                "spool over its %d-byte cap: dropped its oldest segment (%d readings)",
                self.max_bytes, lost,
            )  # fmt: skip

    def _forget(self, segment: _Segment) -> None:
        self._segments.remove(segment)
        self._bytes -= segment.size
        segment.path.unlink(missing_ok=True)

    # -- draining ---------------------------------------------------------------------------

    def wait(self, timeout_s: float) -> None:
        """Wait until something changes (an append, a commit, `wake`) or the timeout."""
        with self._changed:
            self._changed.wait(timeout_s)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def take(
        self, max_readings: int, timeout_s: float = 0.0, *, after: Lease | None = None
    ) -> Lease | None:
        """The oldest records not yet committed, merged into one batch of about `max_readings`
        (at least one record), waiting up to `timeout_s` for one.

        `after`: a lease taken and not yet committed; the records that follow it instead (the
        drainer reads the next write while the store takes the current one). Commit leases in
        the order they were taken; a lease left uncommitted is taken again, with those after
        it."""
        ends = dict(after.upto) if after is not None else {}
        last = max(ends, default=-1)

        def begin(segment: _Segment) -> int:
            """The first record to take: after `after`'s end (whole segments before it)."""
            if segment.number < last and segment.number not in ends:
                return len(segment.records)
            return max(segment.consumed, ends.get(segment.number, 0))

        with self._changed:
            if not any(begin(s) < len(s.records) for s in self._segments):
                self._changed.wait(timeout_s)
            chunks: list[tuple[bytes, list[RecordRef]]] = []
            upto: list[tuple[int, int]] = []
            readings = 0
            for segment in self._segments:
                first = begin(segment)
                records = segment.records[first:]
                taken: list[RecordRef] = []
                for record in records:
                    if readings and readings + record.readings > max_readings:
                        break
                    taken.append(record)
                    readings += record.readings
                if taken:
                    chunks.append((self._read(segment, taken), taken))
                    upto.append((segment.number, first + len(taken)))
                if len(taken) < len(records):
                    break  # the write is full
        if not upto:
            return None
        return self._decode(chunks, tuple(upto))

    def _read(self, segment: _Segment, records: list[RecordRef]) -> bytes:
        start = records[0].offset
        end = records[-1].offset + records[-1].length
        try:
            with segment.path.open("rb") as source:
                source.seek(start)
                data = source.read(end - start)
        except OSError as exc:
            raise SpoolError(f"cannot read spool segment {segment.path}: {exc}") from exc
        return data

    def _decode(
        self, chunks: list[tuple[bytes, list[RecordRef]]], upto: tuple[tuple[int, int], ...]
    ) -> Lease:
        batches: list[Batch] = []
        corrupt = 0
        site = ""
        for data, records in chunks:
            base = records[0].offset
            for record in records:
                at = record.offset - base
                header = read_header(data, at)
                payload = data[at + HEADER.size : at + record.length]
                if header is None or zlib.crc32(payload) != header[2]:
                    corrupt += record.readings
                    continue
                try:
                    batch = decode_payload(payload)
                except SpoolError as exc:
                    log.error("a spool record does not decode (%s); its readings are lost", exc)
                    corrupt += record.readings
                    continue
                site = site or batch.site_id
                batches.append(batch)
        if corrupt:
            log.error("%d spooled reading(s) were damaged on disk and are lost", corrupt)
            with self._lock:
                self.corrupt_readings += corrupt
        merged = Batch.concat(site, batches)
        return Lease(merged, upto, sum(len(r) for _, r in chunks), corrupt)

    def commit(self, lease: Lease) -> None:
        """The store has the lease's readings: forget them, deleting finished segments."""
        with self._lock:
            for number, upto in lease.upto:
                segment = next((s for s in self._segments if s.number == number), None)
                if segment is None:
                    continue  # dropped meanwhile (drop-oldest)
                segment.consumed = max(segment.consumed, upto)
                if segment.consumed == len(segment.records):
                    if self._active is not None and segment is self._segments[-1]:
                        self._seal()
                    self._forget(segment)
            self._changed.notify_all()

    # -- start-up ---------------------------------------------------------------------------

    def _recover(self) -> None:
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()  # an old-format write that crashed before its rename never counted
        found = sorted(
            (int(m[1]), p) for p in self.directory.iterdir() if (m := _SEGMENT.match(p.name))
        )
        for number, path in found:
            segment = self._scan(number, path)
            if segment.records:
                self._segments.append(segment)
                self._bytes += segment.size
            else:
                path.unlink(missing_ok=True)

    def _scan(self, number: int, path: Path) -> _Segment:
        records, size, torn = scan_segment(path)
        self.torn_records += torn
        return _Segment(number, path, records, size=size)

    def _migrate_legacy(self) -> None:
        """Old spools held one `.npz` per batch: each becomes a record, then is deleted."""
        found = sorted(
            (int(m[1]), p) for p in self.directory.iterdir() if (m := _LEGACY.match(p.name))
        )
        if not found:
            return
        migrated = 0
        with self._lock:
            for _, path in found:
                try:
                    batch = decode_legacy_npz(path.read_bytes())
                except (OSError, ValueError, KeyError) as exc:
                    log.error("old spool file %s is unreadable (%s); moved aside", path, exc)
                    path.rename(path.with_suffix(".corrupt"))
                    continue
                self._write(encode_record(batch), len(batch))  # the cap waits: nothing is lost
                path.unlink()
                migrated += len(batch)
            self._seal()
        log.info("migrated %d old spool file(s), %d readings, into segments", len(found), migrated)
