"""The durable on-disk spool: batches the store could not take yet, oldest first.

Each batch is one segment file (`<number>.<readings>.npz`), written to a temporary name,
fsynced, renamed and the directory fsynced: once `append` returns, the batch survives a crash,
so the gateway may ack its messages. When the spool is over its size cap, the oldest segments
are dropped and their readings counted. Segments left by a previous run are drained first.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from ingest.errors import SpoolError

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^(\d{16})\.(\d+)\.npz$")


@dataclass(frozen=True, slots=True)
class Segment:
    number: int
    readings: int
    path: Path
    size: int


def encode_batch(batch: Batch) -> bytes:
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


def decode_batch(data: bytes) -> Batch:
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_directory(directory: Path) -> IO[bytes]:
    """Hold `directory/.lock` for this process's life: two gateways sharing one spool would
    drain, and delete, each other's batches. A POSIX record lock is per process, so a second
    Spool on the directory in the same process (a restart in a test) is allowed."""
    path = directory / ".lock"
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - held open for as long as the process runs
    except OSError as exc:
        raise SpoolError(f"cannot open {path}: {exc}") from exc
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "unknown"
        handle.close()
        raise SpoolError(
            f"spool directory {directory} is in use by another process (pid {holder}); "
            "give each gateway its own --spool-dir"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise SpoolError("spool max_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped_readings = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc}") from exc
        self._lock_file = _lock_directory(directory)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a write that crashed before its rename never counted
        self._segments = sorted(self._scan(), key=lambda s: s.number)
        self._next = self._segments[-1].number + 1 if self._segments else 1
        if self._segments:
            log.info(
                "spool %s holds %d batch(es), %d readings from a previous run",
                directory,
                len(self._segments),
                self.readings,
            )

    def close(self) -> None:
        """Let go of the directory (another process may then take it); idempotent."""
        self._lock_file.close()

    def _scan(self) -> list[Segment]:
        found = []
        for path in self.directory.iterdir():
            match = _SEGMENT.match(path.name)
            if match:
                found.append(Segment(int(match[1]), int(match[2]), path, path.stat().st_size))
        return found

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def readings(self) -> int:
        return sum(s.readings for s in list(self._segments))

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    def append(self, batch: Batch) -> Segment:
        data = encode_batch(batch)
        with self._lock:
            number = self._next
            self._next += 1
            path = self.directory / f"{number:016d}.{len(batch)}.npz"
            tmp = path.with_suffix(".tmp")
            try:
                with tmp.open("wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                tmp.rename(path)
                _fsync_dir(self.directory)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise SpoolError(f"cannot write spool segment {path}: {exc}") from exc
            segment = Segment(number, len(batch), path, len(data))
            self._segments.append(segment)
            self._enforce_cap()
            self._changed.notify_all()
            return segment

    def _enforce_cap(self) -> None:
        total = sum(s.size for s in self._segments)
        while total > self.max_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(0)
            oldest.path.unlink(missing_ok=True)
            total -= oldest.size
            self.dropped_readings += oldest.readings
            log.error(
                "spool over its %d-byte cap: dropped the oldest batch (%d readings)",
                self.max_bytes,
                oldest.readings,
            )

    def oldest(self, timeout_s: float = 0.0) -> tuple[Segment, Batch] | None:
        """The oldest segment and its batch, waiting up to `timeout_s` for one."""
        with self._changed:
            if not self._segments:
                self._changed.wait(timeout_s)
            if not self._segments:
                return None
            segment = self._segments[0]
        try:
            return segment, decode_batch(segment.path.read_bytes())
        except (OSError, ValueError, KeyError) as exc:
            log.error("spool segment %s is unreadable (%s); moving it aside", segment.path, exc)
            segment.path.rename(segment.path.with_suffix(".corrupt"))
            self.remove(segment)
            return None

    def remove(self, segment: Segment) -> None:
        """Forget a segment the store now has."""
        with self._lock:
            if segment in self._segments:
                self._segments.remove(segment)
            segment.path.unlink(missing_ok=True)
