"""Work-order migrations on SQLite and a real PostgreSQL, and the fixture's own server.

The schema in `db/schema.py` and the Alembic revisions must describe the same database;
a database made before migrations existed must be adopted with its rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from alerts.faults import FaultOpened
from alerts.interface import Category, Severity
from alerts.store import WorkOrderStore
from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, migrate
from db.schema import metadata
from tests.services import start_postgres

T0 = 1_790_000_000_000
HEAD = head_revision()


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _fault(started_ms: int) -> FaultOpened:
    return FaultOpened(
        rule_id="pump.dry_run",
        kind="pump",
        device_id="p1",
        building_id="plant",
        unit_id="pump-room",
        severity=Severity.CRITICAL,
        category=Category.EQUIPMENT,
        title="dry run",
        started_ms=started_ms,
        detected_ms=started_ms + 30_000,
    )


def test_migrations_build_exactly_the_schema_the_code_declares(engine: Engine) -> None:
    migrate(engine)

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert current_revision(engine) == HEAD


def test_migrating_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)

    assert current_revision(engine) == HEAD


def test_a_database_from_before_migrations_is_adopted_with_its_rows(engine: Engine) -> None:
    migrate(engine, "0001")  # the tables create_all used to make ...
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # ... without Alembic's bookkeeping
        conn.execute(
            text(
                "INSERT INTO work_orders (site_id, building_id, device_id, kind, rule_id,"
                " severity, title, fault_started_ms, created_ms, updated_ms)"
                " VALUES ('s1', 'plant', 'p1', 'pump', 'pump.dry_run', 'critical', 'old',"
                " :t, :t, :t)"
            ),
            {"t": T0},
        )

    store = WorkOrderStore(engine, clock_ms=lambda: T0 + 60_000)
    store.create_schema()

    assert current_revision(engine) == HEAD
    order = store.get(1)
    assert (order.title, order.source, order.status, order.last_fault_ms) == (
        "old",
        "fault",
        "open",
        T0,
    )
    assert [e.event for e in store.history(1)] == ["created"]
    # Its episode was carried over: a replay files nothing, a new episode annotates it.
    assert store.open_for_faults("s1", [_fault(T0)]) == 0
    assert store.open_for_faults("s1", [_fault(T0 + 600_000)]) == 0
    assert store.get(1).recurrences == 1


def test_downgrade_to_the_baseline_and_up_again(engine: Engine) -> None:
    migrate(engine)
    store = WorkOrderStore(engine, clock_ms=lambda: T0)
    store.open_for_faults("s1", [_fault(T0)])

    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "work_order_events" not in inspect(engine).get_table_names()
    migrate(engine)

    assert store.get(1).title == "dry run"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


@pytest.mark.integration
def test_the_fixture_can_start_its_own_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the machine has no server on 5432, the fixture runs Debian's binaries itself."""
    monkeypatch.setenv("FACILITY_TEST_POSTGRES", "start")
    server = start_postgres()
    try:
        assert server.process is not None
        pid = server.process.pid
        assert not server.admin_url.endswith(":5432/postgres")
        engine = make_engine(server.admin_url)
        try:
            migrate(engine)
            assert current_revision(engine) == HEAD
        finally:
            engine.dispose()
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
