"""Work orders and device state in SQL (SQLAlchemy Core; SQLite default, PostgreSQL).

Opening a work order is an `INSERT ... ON CONFLICT DO NOTHING` against the partial unique
index of open episodes, so concurrent or repeated faults cannot make two open orders.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite

from alerts.faults import FaultCleared, FaultOpened
from alerts.schema import OPEN_EPISODE_WHERE, OPEN_STATUSES, device_state, metadata, work_orders
from facility.batch import Batch
from facility.catalog import reading_dict
from facility.clock import Clock, now_ms
from facility.site import Site


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    site_id: str
    building_id: str
    unit_id: str | None
    device_id: str | None
    kind: str | None
    rule_id: str | None
    severity: str
    category: str
    title: str
    status: str
    fault_started_ms: int | None
    detected_ms: int | None
    created_ms: int
    updated_ms: int
    cleared_ms: int | None


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    kind: str
    building_id: str
    last_seen_ms: int
    last_seq: int
    values: dict[str, Any]


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class WorkOrderStore:
    def __init__(self, engine: Engine, *, clock_ms: Clock = now_ms) -> None:
        self.engine = engine
        self.clock_ms = clock_ms
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._write_lock = threading.Lock()

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    # -- faults -> work orders -------------------------------------------------------------

    def open_for_faults(self, site_id: str, faults: Sequence[FaultOpened]) -> int:
        """Open one work order per fault episode; returns how many were new."""
        if not faults:
            return 0
        now = self.clock_ms()
        created = 0
        with self._write_lock, self.engine.begin() as conn:
            for fault in faults:
                stmt = (
                    self._dialect.insert(work_orders)
                    .values(
                        site_id=site_id,
                        building_id=fault.building_id,
                        unit_id=fault.unit_id,
                        device_id=fault.device_id,
                        kind=fault.kind,
                        rule_id=fault.rule_id,
                        severity=str(fault.severity),
                        category=str(fault.category),
                        title=fault.title,
                        status="open",
                        fault_started_ms=fault.started_ms,
                        detected_ms=fault.detected_ms,
                        created_ms=now,
                        updated_ms=now,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[work_orders.c.device_id, work_orders.c.rule_id],
                        index_where=OPEN_EPISODE_WHERE,
                    )
                )
                created += conn.execute(stmt).rowcount
        return created

    def record_clears(self, clears: Sequence[FaultCleared]) -> None:
        if not clears:
            return
        now = self.clock_ms()
        with self._write_lock, self.engine.begin() as conn:
            for clear in clears:
                conn.execute(
                    update(work_orders)
                    .where(
                        work_orders.c.device_id == clear.device_id,
                        work_orders.c.rule_id == clear.rule_id,
                        OPEN_EPISODE_WHERE,
                        work_orders.c.cleared_ms.is_(None),
                    )
                    .values(cleared_ms=clear.cleared_ms, updated_ms=now)
                )

    def list_work_orders(
        self,
        *,
        statuses: Iterable[str] | None = None,
        building_ids: Iterable[str] | None = None,
        device_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkOrder]:
        query = select(work_orders).order_by(work_orders.c.id.desc()).limit(limit).offset(offset)
        if statuses is not None:
            query = query.where(work_orders.c.status.in_(list(statuses)))
        if building_ids is not None:
            query = query.where(work_orders.c.building_id.in_(list(building_ids)))
        if device_id is not None:
            query = query.where(work_orders.c.device_id == device_id)
        with self.engine.connect() as conn:
            return [WorkOrder(**row._mapping) for row in conn.execute(query)]

    def open_work_orders(self, building_ids: Iterable[str] | None = None) -> list[WorkOrder]:
        return self.list_work_orders(
            statuses=OPEN_STATUSES, building_ids=building_ids, limit=10_000
        )

    # -- device state ----------------------------------------------------------------------

    def update_device_state(self, site: Site, batch: Batch) -> None:
        """Upsert each device's newest reading in the batch (one row per device, not reading)."""
        rows: list[dict[str, Any]] = []
        for kb in batch:
            ordered = kb.time_ordered()
            last = np.ones(len(ordered), np.bool_)
            last[:-1] = ordered.device[:-1] != ordered.device[1:]
            devices = site.by_kind[kb.kind.name]
            for row in np.flatnonzero(last):
                device = devices[int(ordered.device[row])]
                rows.append(
                    {
                        "device_id": device.id,
                        "site_id": site.id,
                        "kind": device.kind,
                        "building_id": device.building_id,
                        "last_seen_ms": int(ordered.ts_ms[row]),
                        "last_seq": int(ordered.seq[row]),
                        "values_json": orjson.dumps(
                            reading_dict(kb.kind, ordered.values[row])
                        ).decode(),
                    }
                )
        if not rows:
            return
        insert = self._dialect.insert(device_state)
        stmt = insert.on_conflict_do_update(
            index_elements=[device_state.c.device_id],
            set_={
                "last_seen_ms": insert.excluded.last_seen_ms,
                "last_seq": insert.excluded.last_seq,
                "values_json": insert.excluded.values_json,
            },
            where=insert.excluded.last_seen_ms >= device_state.c.last_seen_ms,
        )
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def device_states(self, device_ids: Iterable[str] | None = None) -> dict[str, DeviceState]:
        query = select(device_state)
        if device_ids is not None:
            query = query.where(device_state.c.device_id.in_(list(device_ids)))
        with self.engine.connect() as conn:
            return {row.device_id: _device_state(row) for row in conn.execute(query)}


def _device_state(row: Any) -> DeviceState:
    return DeviceState(
        device_id=row.device_id,
        kind=row.kind,
        building_id=row.building_id,
        last_seen_ms=row.last_seen_ms,
        last_seq=row.last_seq,
        values=orjson.loads(row.values_json),
    )
