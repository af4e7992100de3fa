"""Errors of the ingest stage.

IngestError
 ├── WriteError                   the store did not take a batch
 │    ├── StoreUnavailableError   connection refused, timeout, 5xx, 429: retry later
 │    ├── PayloadTooLargeError    413: split the batch and try the halves
 │    └── StoreRejectedError      4xx: the store refuses the data itself; retrying won't help
 └── SpoolError                   the on-disk spool cannot be written or read
      └── SpoolFullError          the spool is at its cap (and drops nothing): hold the acks
"""

from __future__ import annotations

from facility.errors import FacilityError


class IngestError(FacilityError):
    pass


class WriteError(IngestError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message if status is None else f"{message} (HTTP {status})")


class StoreUnavailableError(WriteError):
    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status)


class PayloadTooLargeError(WriteError):
    pass


class StoreRejectedError(WriteError):
    pass


class SpoolError(IngestError):
    pass


class SpoolFullError(SpoolError):
    pass
