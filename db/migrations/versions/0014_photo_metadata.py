"""Residents' photos stored before the API cleaned uploads lose their metadata too: each is
decoded and encoded again as `facility.images.clean_image` does (upright, no EXIF/GPS, XMP,
comments). A stored photo that does not decode (the API once checked only its first bytes) is
kept as it is; the count of those is logged.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from facility.images import ImageError, clean_image

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
CHUNK = 50
"""Photos read at a time (up to 5 MB each)."""

photos = sa.table(
    "report_photos",
    sa.column("id", sa.Integer),
    sa.column("media_type", sa.String),
    sa.column("size_bytes", sa.Integer),
    sa.column("data", sa.LargeBinary),
)


def upgrade() -> None:
    connection = op.get_bind()
    after, cleaned, kept = 0, 0, 0
    while True:
        rows = connection.execute(
            sa.select(photos.c.id, photos.c.data)
            .where(photos.c.id > after)
            .order_by(photos.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        for photo_id, data in rows:
            after = photo_id
            try:
                media_type, clean = clean_image(bytes(data))
            except ImageError:
                kept += 1
                continue
            connection.execute(
                photos.update()
                .where(photos.c.id == photo_id)
                .values(media_type=media_type, size_bytes=len(clean), data=clean)
            )
            cleaned += 1
    if cleaned or kept:
        log.info("report photos: %d cleaned of their metadata, %d kept (not decodable)",
                 cleaned, kept)  # fmt: skip


def downgrade() -> None:
    pass  # what was taken out (the phone's GPS position, camera, time) is not kept anywhere
