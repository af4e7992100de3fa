"""Alembic migrations of the product's database (`db.migrate` runs them).

Revision ids are plain numbers ("0005" follows "0004"); they are what `alembic_version` holds,
so they never change once released, wherever the files live.

New revision (from the repository root, against a scratch database at head):
    alembic -c db/migrations/alembic.ini revision --autogenerate --rev-id 0005 -m "what changed"
"""
