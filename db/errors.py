"""Errors of the database package, raised at its edge in place of SQLAlchemy's and the driver's.

    FacilityError
     └── DatabaseError                 the database cannot be used as asked
          ├── DatabaseUrlError         the URL names no database we can open (syntax, dialect,
          │                            driver); says what a good one looks like
          ├── DatabaseUnavailableError no connection (refused, auth, missing database)
          └── MigrationError           the database is at a revision this code does not know

Each names the database with its password hidden and keeps the library error as `__cause__`.
Errors of a statement inside a transaction (an `IntegrityError` a store expects) are not
mapped: the store that wrote the statement knows what they mean.
"""

from __future__ import annotations

from facility.errors import FacilityError


class DatabaseError(FacilityError):
    """The database cannot be used as asked."""

    def __init__(self, database: str, message: str) -> None:
        self.database = database
        """The URL with its password hidden."""
        super().__init__(f"database {database}: {message}")


class DatabaseUrlError(DatabaseError):
    """The URL names no database this product can open."""


class DatabaseUnavailableError(DatabaseError):
    """No connection to the database (refused, authentication, no such database)."""


class MigrationError(DatabaseError):
    """The database's schema revision is unknown to this code, or a migration failed."""
