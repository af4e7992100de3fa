"""Residents' photos: what an upload is, told by its first bytes (the client's content type
and file name are not believed), and the answers for one that is too large or not an image."""

from __future__ import annotations

from typing import Final

from fastapi import HTTPException

PHOTO_TYPES: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
"""The types a photo may have -> the extension it is served with."""


def image_type(data: bytes) -> str | None:
    """The photo's type by its magic bytes (JPEG, PNG, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def too_large(max_bytes: int) -> HTTPException:
    mib = max_bytes / (1024 * 1024)
    return HTTPException(
        status_code=413,
        detail=f"the photo is larger than {mib:g} MB ({max_bytes} bytes): send a smaller one",
    )


def not_an_image() -> HTTPException:
    return HTTPException(status_code=415, detail="the photo must be a JPEG, PNG or WebP image")
