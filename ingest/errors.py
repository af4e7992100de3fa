"""Errors of the ingest stage.

IngestError
 └── WriteError            the store did not take a batch
      ├── StoreUnavailableError  connection refused, timeout, 5xx, 429: retry later
      └── StoreRejectedError     4xx: the store refuses the data itself
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
    pass


class StoreRejectedError(WriteError):
    pass
