"""Small real images for the photo tests, made with Pillow: a phone's JPEG with the EXIF a
phone writes (GPS position, camera, time, orientation), a PNG with text chunks, a WebP with
EXIF, and headers that claim more pixels than they hold."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin

ORIENTATION = 0x0112
MAKE = 0x010F
GPS_IFD = 0x8825
GPS_LATITUDE = 2
SECRET_PLACE = "Building 3, flat 1203"
"""Text only metadata holds: a test finds it in no stored photo."""


def picture(width: int = 4, height: int = 2) -> Image.Image:
    """Left half red, right half blue: which way round it was stored shows after a turn."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    return image


def phone_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker " + SECRET_PLACE
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD)[GPS_LATITUDE] = (31.0, 14.0, 5.5)
    return exif


def jpeg(image: Image.Image | None = None, *, orientation: int = 1) -> bytes:
    out = io.BytesIO()
    (image or picture()).save(
        out, "JPEG", quality=95, exif=phone_exif(orientation), comment=SECRET_PLACE.encode()
    )
    return out.getvalue()


def png(image: Image.Image | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", SECRET_PLACE)
    out = io.BytesIO()
    (image or picture()).save(out, "PNG", pnginfo=info, exif=phone_exif())
    return out.getvalue()


def webp(image: Image.Image | None = None) -> bytes:
    out = io.BytesIO()
    (image or picture()).save(out, "WEBP", lossless=True, exif=phone_exif())
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for `width` x `height` pixels and one tiny compressed row: a decompression
    bomb's header (or a broken file) in a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def pixels(data: bytes) -> tuple[tuple[int, int], str, list[tuple[int, ...]]]:
    """What a stored photo shows: its size, format and each pixel (RGB)."""
    image = Image.open(io.BytesIO(data))
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    return image.size, str(image.format), [tuple(int(c) for c in p) for p in rgb]
