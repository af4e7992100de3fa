"""What a time-series writer must do. One module per writer: influx_v1, influx_v2, sqlite_store,
memory. Batching, spooling and retries live once, in `ingest.delivery`, not in the writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from facility.batch import Batch


@dataclass(frozen=True, slots=True)
class RejectedPoints:
    """Points the store refused (a partial write): why, and what they were."""

    reason: str
    detail: str
    count: int
    sample: str
    """The offending line(s), truncated."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int
    rejected: tuple[RejectedPoints, ...] = field(default=())


class TimeSeriesWriter(Protocol):
    """Writes one batch in one request or transaction.

    Returns once the store has the batch (a 2xx, a commit), with the points it refused, if any.
    Raises `StoreUnavailableError` (retry later), `PayloadTooLargeError` (split and retry) or
    `StoreRejectedError` (the whole batch is refused). Writing the same readings twice is
    harmless: a point is keyed by kind + device + timestamp.
    """

    name: str

    def write(self, batch: Batch) -> WriteResult: ...

    def ping(self) -> None:
        """Raise `StoreUnavailableError` when the store does not answer."""

    def close(self) -> None: ...
