"""Running the Alembic migrations in `db/migrations` from the product (no alembic.ini needed).

Every run is one transaction and one migrator at a time (SQLite's write lock, a PostgreSQL
advisory lock), so processes that start together on one database are safe. The migrations get
the product's own connection, so the engine's settings (SQLite pragmas, the psycopg driver)
apply to them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine, inspect

from db.engine import WRITE_OPTION, connect, display_url
from db.errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
BASELINE_REVISION: Final = "0001"
"""The schema `metadata.create_all` made before migrations: such databases are stamped here."""
BASELINE_TABLE: Final = "work_orders"
"""A table of the baseline: present without `alembic_version`, the database is from then."""
_MIGRATION_LOCK_ID: Final = 0x46_4D_57_4F  # PostgreSQL advisory lock: one migrator at a time


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to `revision`.

    A database made by `create_all` before migrations existed is stamped at the baseline
    first, so its rows are kept.
    """
    _alembic(engine, revision, down=False)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to `revision` (an operator's undo; data of newer tables goes)."""
    _alembic(engine, revision, down=True)


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty database (or one from before migrations)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415  (start-up only)

    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows: what `migrate` brings a database to."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # only a broken installation ships no revisions
        raise RuntimeError(f"no revisions in {MIGRATIONS_DIR}")
    return head


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415  (Alembic is only needed at start-up)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _alembic(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command  # noqa: PLC0415
    from alembic.util.exc import CommandError  # noqa: PLC0415

    config = _config()
    with connect(engine) as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        try:
            with conn.begin():
                _lock(conn)
                config.attributes["connection"] = conn
                tables = set(inspect(conn).get_table_names())
                if BASELINE_TABLE in tables and "alembic_version" not in tables:
                    command.stamp(config, BASELINE_REVISION)
                if down:
                    command.downgrade(config, revision)
                else:
                    command.upgrade(config, revision)
        except CommandError as exc:  # an unknown revision, asked for or found in the database
            raise MigrationError(display_url(engine.url), f"cannot migrate: {exc}") from exc


def _lock(conn: Connection) -> None:
    """Wait for any other migrator (SQLite: BEGIN IMMEDIATE has taken the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
