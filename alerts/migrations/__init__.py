"""Alembic migrations of the work-order database (`alerts.store.migrate` runs them).

New revision (from the repository root, against a scratch database at head):
    alembic -c alerts/migrations/alembic.ini revision --autogenerate -m "what changed"
"""
