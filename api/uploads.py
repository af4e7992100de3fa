"""Residents' photos at the API: the answers for one that is too large or not an image, and
`clean_photo` (`facility.images.clean_image` with those answers)."""

from __future__ import annotations

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
