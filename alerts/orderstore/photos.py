"""Photos residents attach to their reports: stored with the order, in the shared database
(any API replica serves them), named by id; the bytes are read only when one is asked for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from alerts.orderstore.base import StoreCore
from db.schema import report_photos


@dataclass(frozen=True, slots=True)
class Photo:
    """An image as it is stored: its type and bytes (the API decoded it and dropped its
    metadata: `api.uploads.clean_photo`)."""

    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    id: int
    work_order_id: int
    media_type: str
    size_bytes: int
    created_ms: int


_META = (
    report_photos.c.id,
    report_photos.c.work_order_id,
    report_photos.c.media_type,
    report_photos.c.size_bytes,
    report_photos.c.created_ms,
)


def add_photo(conn: Connection, order_id: int, photo: Photo, now_ms: int) -> int:
    """Store the photo of order `order_id` inside the caller's transaction; its id."""
    return int(
        conn.execute(
            report_photos.insert()
            .values(
                work_order_id=order_id,
                media_type=photo.media_type,
                size_bytes=len(photo.data),
                created_ms=now_ms,
                data=photo.data,
            )
            .returning(report_photos.c.id)
        ).scalar_one()
    )


class ReportPhotos(StoreCore):
    def photos_of(self, order_ids: Iterable[int]) -> dict[int, list[StoredPhoto]]:
        """Each order's photos (without their bytes), oldest first."""
        ids = list(order_ids)
        if not ids:
            return {}
        query = (
            select(*_META)
            .where(report_photos.c.work_order_id.in_(ids))
            .order_by(report_photos.c.id)
        )
        out: dict[int, list[StoredPhoto]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                out.setdefault(row.work_order_id, []).append(StoredPhoto(*row))
        return out

    def photo(self, order_id: int, photo_id: int) -> tuple[StoredPhoto, bytes] | None:
        """One photo of the order and its bytes, or None."""
        query = select(*_META, report_photos.c.data).where(
            report_photos.c.id == photo_id, report_photos.c.work_order_id == order_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredPhoto(*row[:5]), bytes(row.data)
