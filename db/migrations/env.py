"""Alembic environment: the target is `db.schema.metadata`.

`db.migrate` hands over an open connection in `config.attributes["connection"]`, so the
product's engine settings (SQLite pragmas, PostgreSQL driver) apply to migrations too; the
`alembic` command line (developers only) connects with the URL from alembic.ini instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from db.engine import make_engine
from db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER constraints: such changes copy the table ("batch" mode).
        render_as_batch=connection.dialect.name == "sqlite",
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic.ini has no sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run them online")
run_migrations_online()
