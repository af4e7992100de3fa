"""Residents' photos at the API: the answers for one that is too large or not an image,
`clean_photo` (`facility.images.clean_image` with those answers) and `PhotoDecodes`, the
threads it runs on."""

from __future__ import annotations

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import HTTPException

from facility.images import NotAnImageError, TooManyPixelsError, clean_image


def too_large(max_bytes: int) -> HTTPException:
    mib = max_bytes / (1024 * 1024)
    return HTTPException(
        status_code=413,
        detail=f"the photo is larger than {mib:g} MB ({max_bytes} bytes): send a smaller one",
    )


def clean_photo(data: bytes) -> tuple[str, bytes]:
    """The upload as it is stored (`facility.images.clean_image`); 415 for what is not a JPEG,
    PNG or WebP image, 413 for too many pixels."""
    try:
        return clean_image(data)
    except NotAnImageError as exc:
        raise HTTPException(status_code=415, detail=str(exc)) from exc
    except TooManyPixelsError as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from exc


class PhotoDecodes:
    """`clean_photo` on threads of their own, `threads` at once. A decode takes 0.1-0.3 s and
    the pixels of a 12 MP photo; on the worker threads of the database reads a burst of photos
    held those reads up. Here a burst waits for its own threads and bounds the pixels in memory
    at once, and the reads go on."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        # A limiter waits on its event loop's primitives: one per loop (a test client runs its
        # own), kept as anyio keeps its default thread limiter.
        self._limiter: RunVar[CapacityLimiter] = RunVar("photo_decodes")

    def limiter(self) -> CapacityLimiter:
        """This event loop's limiter."""
        try:
            return self._limiter.get()
        except LookupError:
            limiter = CapacityLimiter(self.threads)
            self._limiter.set(limiter)
            return limiter

    async def clean(self, data: bytes) -> tuple[str, bytes]:
        return await to_thread.run_sync(clean_photo, data, limiter=self.limiter())
