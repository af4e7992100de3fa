"""Residents' photos are stored as the picture alone: decoded, turned upright, encoded again
without the GPS position, camera, comment or text a phone wrote around it; what does not
decode, or would decode to too many pixels, is refused with the answer the form gives."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from fastapi import HTTPException
from PIL import Image

from api.uploads import clean_photo
from facility.images import MAX_PIXELS
from tests.images import SECRET_PLACE, jpeg, picture, pixels, png, png_claiming, webp

RED, BLUE = (255, 0, 0), (0, 0, 255)


def near(got: tuple[int, ...], want: tuple[int, int, int], slack: int = 60) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize(
    ("make", "media_type", "fmt"),
    [(jpeg, "image/jpeg", "JPEG"), (png, "image/png", "PNG"), (webp, "image/webp", "WEBP")],
)
def test_the_picture_is_kept_and_what_the_phone_wrote_around_it_is_not(
    make: Callable[[], bytes], media_type: str, fmt: str
) -> None:
    sent = make()
    assert SECRET_PLACE.encode() in sent  # the test's metadata is really in what is sent
    stored_type, stored = clean_photo(sent)
    assert stored_type == media_type
    size, stored_format, colours = pixels(stored)
    assert (size, stored_format) == ((4, 2), fmt)
    assert near(colours[0], RED)
    assert near(colours[3], BLUE)
    assert SECRET_PLACE.encode() not in stored
    image = Image.open(io.BytesIO(stored))
    assert dict(image.getexif()) == {}
    assert not {"comment", "exif", "xmp", "Location"} & set(image.info)


def test_a_photo_taken_with_the_phone_on_its_side_is_stored_upright() -> None:
    """EXIF orientation 6: the sensor's picture is to be turned 90 degrees clockwise. Once the
    EXIF is gone the turn must be in the pixels, or staff see the photo on its side."""
    stored_type, stored = clean_photo(jpeg(picture(4, 2), orientation=6))
    size, _, colours = pixels(stored)
    assert stored_type == "image/jpeg"
    assert size == (2, 4)
    assert near(colours[0], RED)
    assert near(colours[-1], BLUE)


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (jpeg()[:200], 415, "JPEG, PNG or WebP"),  # cut off: starts like a JPEG, is not one
        (b"\xff\xd8\xff" + b"<html>" * 20, 415, "JPEG, PNG or WebP"),  # a polyglot's start
        (png_claiming(4, 2)[:-12] + b"garbage!", 415, "JPEG, PNG or WebP"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 32, 415, "JPEG, PNG or WebP"),
        (b"GIF89a" + b"\x00" * 64, 415, "JPEG, PNG or WebP"),
        (png_claiming(10_000, 5_001), 413, "more than 50 megapixels"),  # just over ours
        (png_claiming(100_000, 100_000), 413, "more than 50 megapixels"),  # past Pillow's
    ],
)
def test_what_does_not_decode_or_is_too_large_is_refused(
    data: bytes, status: int, says: str
) -> None:
    with pytest.raises(HTTPException) as refused:
        clean_photo(data)
    assert refused.value.status_code == status
    assert says in str(refused.value.detail)


def test_the_pixel_limit_is_a_photo_of_any_phone() -> None:
    assert MAX_PIXELS >= 48_000_000  # a 48 MP phone photo at full size is taken
    assert clean_photo(png(picture(8, 6)))[0] == "image/png"


def test_a_pngs_transparency_is_part_of_the_picture_and_kept() -> None:
    palette = Image.new("P", (4, 2))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((3, 1), 1)
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=0)  # index 0 (red) is see-through
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    out_rgba = io.BytesIO()
    rgba.save(out_rgba, "PNG")
    for sent, clear, solid in (
        (out.getvalue(), (0, 0), (3, 1)),
        (out_rgba.getvalue(), (0, 0), None),
    ):
        stored = Image.open(io.BytesIO(clean_photo(sent)[1])).convert("RGBA")
        assert stored.getpixel(clear)[3] == 0  # type: ignore[index]
        if solid is not None:
            assert stored.getpixel(solid) == (0, 0, 255, 255)
