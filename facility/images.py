"""Photos as they are kept: the picture alone, without what a phone writes around it.

A phone's photo says where it was taken (GPS), when, and with which phone; staff need the
picture only. `clean_image` decodes the whole image (which also refuses what merely starts
like one, and a decompression bomb, before decoding it) and encodes it again in its own format,
turned upright by its EXIF orientation, with no metadata. The API cleans every upload
(`api.uploads`); revision 0014 cleaned the photos stored before it did.
"""

from __future__ import annotations

import io
from typing import Final

from PIL import Image, ImageOps

from facility.errors import FacilityError

PHOTO_TYPES: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
"""The types a photo may have -> the extension it is served with."""
PIL_FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_PIXELS: Final = 50_000_000
"""More than any phone camera's photo (a 200 MP sensor saves 12 MP by default): an image that
claims more is refused from its header, before it is decoded (a small file that decodes to
gigabytes of pixels)."""
JPEG_QUALITY: Final = 90


def image_type(data: bytes) -> str | None:
    """The photo's type by its magic bytes (JPEG, PNG, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class ImageError(FacilityError):
    """Bytes that cannot be kept as a photo."""


class NotAnImageError(ImageError):
    def __init__(self) -> None:
        super().__init__("the photo must be a JPEG, PNG or WebP image")


class TooManyPixelsError(ImageError):
    def __init__(self) -> None:
        super().__init__(
            f"the photo has more than {MAX_PIXELS // 1_000_000} megapixels: send a smaller one"
        )


def clean_image(data: bytes) -> tuple[str, bytes]:
    """The photo as it is kept: `(media type, bytes)`, decoded and encoded again in its own
    format, turned upright by its EXIF orientation, without any metadata (EXIF, XMP, comments,
    text chunks). JPEG and WebP are encoded at quality 90, PNG losslessly; the colour profile
    is kept. Raises `NotAnImageError` for anything that does not decode as the type its first
    bytes claim, `TooManyPixelsError` when its header claims more than `MAX_PIXELS`. Costs
    ~0.1-0.3 s for a 12 MP photo: keep it off an event loop.
    """
    media_type = image_type(data)
    if media_type is None:
        raise NotAnImageError()
    try:
        # Past twice Pillow's own limit (~179 MP) `open` refuses from the header; ours is lower.
        image = Image.open(io.BytesIO(data), formats=(PIL_FORMATS[media_type],))
        if image.width * image.height > MAX_PIXELS:
            raise TooManyPixelsError()
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # no second copy of the pixels
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError() from exc
    except ImageError:
        raise
    except Exception as exc:  # truncated, corrupt, not what it claims, broken metadata
        raise NotAnImageError() from exc
    profile = image.info.get("icc_profile")
    transparency = image.info.get("transparency")  # a PNG's tRNS: part of the picture
    picture: Image.Image = image
    if media_type == "image/webp" and picture.mode not in ("RGB", "RGBA"):
        alpha = transparency is not None or "A" in picture.getbands()
        picture = picture.convert("RGBA" if alpha else "RGB")  # reads the tRNS, so before:
    elif media_type == "image/jpeg" and picture.mode not in ("L", "RGB", "CMYK"):
        picture = picture.convert("RGB")
    picture.info = {}  # what the encoders would write back: comment, EXIF, XMP, text chunks
    options: dict[str, object] = {"icc_profile": profile} if profile else {}
    if media_type == "image/png":
        if transparency is not None:
            options["transparency"] = transparency
    else:
        options["quality"] = JPEG_QUALITY  # JPEG and WebP: lossy
    out = io.BytesIO()
    picture.save(out, PIL_FORMATS[media_type], **options)
    return media_type, out.getvalue()
