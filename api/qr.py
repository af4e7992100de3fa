"""QR codes as SVG (segno): the links residents scan in the stairwell."""

from __future__ import annotations

import io

import segno


def qr_svg(url: str, *, title: str = "") -> str:
    """A scalable QR code of `url` (error correction M: still reads when a corner is
    scuffed), with a quiet zone, sized by its container when printed."""
    buffer = io.BytesIO()
    segno.make_qr(url, error="m").save(
        buffer, kind="svg", scale=4, border=4, title=title or None, svgclass="qr", omitsize=True
    )
    return buffer.getvalue().decode()
