"""The spool's files: the directory lock, fsyncs, and checking a segment record by record."""

from __future__ import annotations

import fcntl
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest.errors import SpoolError
from ingest.spool_codec import HEADER, read_header

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where one record lies in its segment."""

    offset: int
    length: int
    """Header and payload."""
    readings: int


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_directory(directory: Path) -> IO[bytes]:
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


def scan_segment(path: Path) -> tuple[list[RecordRef], int, int]:
    """The segment's intact records, its size after the check, and 1 if a tail was cut.

    A record whose header, length or CRC is wrong ends the segment: a crash mid-append leaves
    exactly that. The cut bytes are kept beside it (`<segment>.torn-<offset>`) and logged, and
    every record before them stays.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpoolError(f"cannot read spool segment {path}: {exc}") from exc
    records: list[RecordRef] = []
    at = 0
    while at < len(data):
        header = read_header(data, at)
        end = at + HEADER.size + (header[0] if header else 0)
        if header is None or end > len(data):
            break
        if zlib.crc32(data[at + HEADER.size : end]) != header[2]:
            break
        records.append(RecordRef(at, end - at, header[1]))
        at = end
    if at == len(data):
        return records, at, 0
    aside = path.with_name(f"{path.name}.torn-{at}")
    try:
        aside.write_bytes(data[at:])
        os.truncate(path, at)
    except OSError as exc:
        raise SpoolError(f"cannot cut the torn tail of spool segment {path}: {exc}") from exc
    log.warning(
        "spool segment %s ends in a torn or damaged record (%d bytes at offset %d, a crash "
        "mid-append?): cut off and kept as %s; the %d record(s) before it are intact",
        path, len(data) - at, at, aside.name, len(records),
    )  # fmt: skip
    return records, at, 1
