"""db/: engines, migrations, write transactions and row readers, on SQLite and PostgreSQL.

The store suites use db/ through the stores; these pin what db/ itself promises: a database
goes up from empty or from the previous head and back down, every revision one step at a
time; the revision is reported; a bad URL, a database that does not answer and an unknown
revision are one-line errors naming the database (password hidden); and db/ stays below the
packages that use it.
"""

from __future__ import annotations

import ast
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text

from db.engine import begin_write, make_engine, upsert_for
from db.errors import DatabaseUnavailableError, DatabaseUrlError, MigrationError
from db.migrate import MIGRATIONS_DIR, current_revision, downgrade, head_revision, migrate
from db.rows import row_reader
from db.schema import (
    metadata,
    notification_cursors,
    report_photos,
    work_order_events,
    work_orders,
)
from runtime.cli import main
from tests import images
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000_000


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def add_order(engine: Engine, title: str) -> None:
    """A row with only the baseline's columns: it fits the table at every revision."""
    with begin_write(engine) as conn:
        conn.execute(
            work_orders.insert().values(
                site_id="s1",
                building_id="plant",
                severity="major",
                title=title,
                created_ms=T0,
                updated_ms=T0,
            )
        )


def order_titles(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(work_orders.c.title).order_by(work_orders.c.id)).scalars())


# -- migrations --------------------------------------------------------------------------------


def test_the_head_is_the_newest_numbered_revision() -> None:
    files = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    assert revisions() == [name.split("_", 1)[0] for name in files]
    assert head_revision() == revisions()[-1]


def test_an_empty_database_migrates_to_the_head(engine: Engine) -> None:
    assert current_revision(engine) is None

    migrate(engine)

    assert current_revision(engine) == head_revision()
    assert tables(engine) == set(metadata.tables)
    assert schema_diff(engine) == []


def test_a_database_at_the_previous_head_upgrades_in_place(engine: Engine) -> None:
    previous = revisions()[-2]
    migrate(engine, previous)
    add_order(engine, "kept")

    migrate(engine)

    assert current_revision(engine) == head_revision()
    assert order_titles(engine) == ["kept"]
    assert schema_diff(engine) == []


def test_photos_stored_before_revision_0014_lose_their_metadata(engine: Engine) -> None:
    """A phone's JPEG kept as it came (GPS, camera, comment, on its side) comes out of the
    upgrade upright and bare; a stored photo that does not decode is kept as it was."""
    migrate(engine, "0013")
    add_order(engine, "with photos")
    phone = images.jpeg(images.picture(4, 2), orientation=6)
    broken = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # passed the old first-bytes check
    with begin_write(engine) as conn:
        order_id = conn.execute(select(work_orders.c.id)).scalar_one()
        for data in (phone, broken):
            conn.execute(
                report_photos.insert().values(
                    work_order_id=order_id, media_type="image/jpeg", size_bytes=len(data),
                    created_ms=T0, data=data,
                )
            )  # fmt: skip

    migrate(engine)

    with engine.connect() as conn:
        rows = conn.execute(
            select(
                report_photos.c.media_type, report_photos.c.size_bytes, report_photos.c.data
            ).order_by(report_photos.c.id)
        ).all()
    (cleaned_type, cleaned_size, cleaned), (_, kept_size, kept) = rows
    assert images.SECRET_PLACE.encode() in phone
    assert images.SECRET_PLACE.encode() not in cleaned
    assert cleaned_type == "image/jpeg"
    assert cleaned_size == len(cleaned)
    assert images.pixels(bytes(cleaned))[0] == (2, 4)  # turned upright
    assert (kept_size, bytes(kept)) == (len(broken), broken)


def test_every_revision_goes_up_and_down_one_step_at_a_time(engine: Engine) -> None:
    steps = revisions()
    for revision in steps:
        migrate(engine, revision)
        assert current_revision(engine) == revision
    add_order(engine, "survives the downgrades")
    for revision in reversed(steps[:-1]):
        downgrade(engine, revision)
        assert current_revision(engine) == revision
    assert order_titles(engine) == ["survives the downgrades"]

    downgrade(engine, "base")

    assert current_revision(engine) is None
    assert tables(engine) == set()


def test_two_migrators_at_once_both_finish(empty_db_url: str) -> None:
    """One transaction and one migrator at a time: processes starting together are safe."""
    engines = [make_engine(empty_db_url) for _ in range(2)]
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            migrate(engine)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
    finally:
        for e in engines:
            e.dispose()


def test_opening_a_file_another_writer_holds_waits_for_it(tmp_path: Path) -> None:
    """Switching a new file to WAL while another connection holds its write lock fails at once
    in SQLite (no busy handler for that escalation); opening waits for the lock instead."""
    path = tmp_path / "busy.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, holder.execute, args=("COMMIT",))
    release.start()
    try:
        with make_engine(f"sqlite:///{path}").connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    finally:
        release.join()
        holder.close()


def test_an_unknown_revision_is_a_migration_error(engine: Engine) -> None:
    with pytest.raises(MigrationError, match=r"cannot migrate: .*'9999'"):
        migrate(engine, "9999")


def test_a_database_newer_than_the_code_is_a_migration_error(engine: Engine) -> None:
    migrate(engine)
    with begin_write(engine) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(MigrationError, match="'9999'"):
        migrate(engine)


def test_facility_db_upgrade(empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db-url", empty_db_url, "--revision", revisions()[0]]) == 0
    assert main(["db", "upgrade", "--db-url", empty_db_url]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f": empty -> {revisions()[0]}")
    assert out[1].endswith(f": {revisions()[0]} -> {head_revision()}")


# -- errors at the edge ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "not a database URL"),
        ("mysql://ops:s3cret@127.0.0.1/facility", "'mysql' is not supported"),
        ("postgresql+nodriver://ops:s3cret@127.0.0.1/facility", "no driver"),
    ],
)
def test_a_bad_url_is_refused_at_once_with_what_a_good_one_looks_like(url: str, says: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        make_engine(url)

    message = str(caught.value)
    assert says in message
    assert "use sqlite:///" in message
    assert "s3cret" not in message


def test_a_bad_url_stops_facility_db_upgrade_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade", "--db-url", "mysql://ops:s3cret@127.0.0.1/facility"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("facility: error: database mysql://ops:***@127.0.0.1/facility: ")
    assert len(err.splitlines()) == 1


def test_a_server_that_does_not_answer_names_the_database_without_its_password() -> None:
    engine = make_engine(f"postgresql://ops:s3cret@127.0.0.1:{free_port()}/facility")
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            current_revision(engine)
    finally:
        engine.dispose()

    message = str(caught.value)
    assert message.startswith("database postgresql+psycopg://ops:***@127.0.0.1:")
    assert "s3cret" not in message
    assert "\n" not in message
    assert caught.value.__cause__ is not None


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-directory.sqlite3").mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'a-directory.sqlite3'}")
    try:
        with pytest.raises(DatabaseUnavailableError, match=r"a-directory\.sqlite3"):
            migrate(engine)
    finally:
        engine.dispose()


# -- write transactions ------------------------------------------------------------------------


def test_a_sqlite_write_transaction_holds_the_write_lock_before_it_writes(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a read-then-write transaction cannot lose the lock to another writer."""
    path = tmp_path / "lock.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with begin_write(engine) as conn:
            conn.execute(select(func.count()).select_from(work_orders))  # a read, no write yet
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_a_write_transaction_rolls_back_on_an_exception(engine: Engine) -> None:
    migrate(engine)

    def write_then_fail() -> None:
        with begin_write(engine) as conn:
            conn.execute(notification_cursors.insert().values(channel="ops"))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        write_then_fail()

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(notification_cursors)).scalar() == 0


def test_upsert_for_does_nothing_on_a_conflict(engine: Engine) -> None:
    migrate(engine)
    insert = upsert_for(engine)

    for floor in (5, 9):
        with begin_write(engine) as conn:
            conn.execute(
                insert(notification_cursors)
                .values(channel="ops", floor=floor)
                .on_conflict_do_nothing(index_elements=[notification_cursors.c.channel])
            )

    with engine.connect() as conn:
        assert conn.execute(select(notification_cursors.c.floor)).scalars().all() == [5]


# -- rows by name ------------------------------------------------------------------------------


class Kind(StrEnum):
    CREATED = "created"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True)
class Event:
    # Not in the table's column order: the reader goes by name.
    note: str | None
    event: Kind
    id: int


@dataclass(frozen=True, slots=True)
class Order:
    title: str
    id: int


def test_a_row_reader_reads_by_name_and_converts_values_but_not_null(engine: Engine) -> None:
    migrate(engine)
    add_order(engine, "pump")
    with begin_write(engine) as conn:
        for event, note in (("created", None), ("comment", "on site at 9")):
            conn.execute(
                work_order_events.insert().values(
                    work_order_id=1, at_ms=T0, actor="ana", event=event, note=note
                )
            )
    read_event = row_reader(work_order_events, Event, convert={"event": Kind, "note": str.upper})
    read_order = row_reader(work_orders, Order)

    # A join: both tables have `id`, each reader takes its own.
    query = (
        select(work_order_events, work_orders)
        .join(work_orders, work_orders.c.id == work_order_events.c.work_order_id)
        .order_by(work_order_events.c.id)
    )
    with engine.connect() as conn:
        rows = [(read_event(row), read_order(row)) for row in conn.execute(query)]

    assert rows == [
        (Event(note=None, event=Kind.CREATED, id=1), Order(title="pump", id=1)),
        (Event(note="ON SITE AT 9", event=Kind.COMMENT, id=2), Order(title="pump", id=1)),
    ]
    assert type(rows[0][0].event) is Kind


def test_a_row_reader_refuses_a_field_without_a_column_when_it_is_made() -> None:
    @dataclass
    class Stray:
        id: int
        colour: str

    with pytest.raises(ValueError, match="no column colour in work_orders"):
        row_reader(work_orders, Stray)
    with pytest.raises(ValueError, match="no field status to convert"):
        row_reader(work_orders, Order, convert={"status": str})


# -- layering ----------------------------------------------------------------------------------


def test_db_imports_nothing_above_it() -> None:
    """db/ is shared by work orders, users and notifications: it may use only the kernel."""
    above = {"alerts", "api", "gateway", "ingest", "simulators", "bench", "tests"}
    found = []
    for path in sorted((ROOT / "db").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in above]
    assert found == []
