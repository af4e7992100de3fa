"""The API under test: an app over a real work-order store, users of every role, tokens.

Passwords are hashed with a cheap Argon2 cost; the clock is fake (tokens, login back-off and
rate limits follow it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from alerts.faults import FaultOpened
from alerts.interface import Category, Severity
from alerts.store import WorkOrderStore
from api.app import create_app
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.deps import AppContext
from api.settings import ApiSettings
from db.engine import make_engine
from db.schema import device_state
from facility.site import Site
from ingest.history import HistoryStore
from tests.fakes import FakeClock

T0 = 1_790_000_000_000
PASSWORD = "correct-horse-9"
SECRET = "test-secret-" + "x" * 40

USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "dispatcher": {"role": "dispatcher"},
    "tech": {"role": "technician", "team": "lift-contractor"},
    "plumber": {"role": "technician", "team": "plumbing"},
    "steward": {"role": "steward", "buildings": ["b03", "b05"]},
}
STEWARD_BUILDINGS = frozenset(USERS["steward"]["buildings"])


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    site: Site
    store: WorkOrderStore
    clock: FakeClock

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    def headers(self, username: str) -> dict[str, str]:
        user = self.context.users.by_username(username)
        assert user is not None
        token, _ = self.context.tokens.issue(
            username=user.username,
            user_id=user.id,
            role=str(user.role),
            version=user.token_version,
        )
        return {"Authorization": f"Bearer {token}"}

    def get(self, path: str, username: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(username), **kwargs)

    def post(self, path: str, username: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers(username), json=body, **kwargs)


def new_store(url: str, clock: FakeClock) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(url), clock_ms=clock)
    store.migrate()
    return store


@contextmanager
def running_api(
    site: Site,
    store: WorkOrderStore,
    clock: FakeClock,
    *,
    history: HistoryStore | None = None,
    monitor: bool = False,
    users: bool = True,
    **settings: Any,
) -> Iterator[Api]:
    app = create_app(
        site=site,
        store=store,
        clock_ms=clock,
        settings=ApiSettings(secret=SECRET, **settings),
        history=history,
        passwords=Passwords(FAST_FOR_TESTS),
        monitor=monitor,
    )
    if users:
        for name, spec in USERS.items():
            app.state.context.users.add(
                name, PASSWORD, spec["role"], team=spec.get("team"),
                buildings=spec.get("buildings", ()),
            )  # fmt: skip
    # A fresh client per test; no cookies carried between users unless a test logs in.
    try:
        with TestClient(app) as client:
            yield Api(client, app, site, store, clock)
    finally:
        store.engine.dispose()  # the store is the API's from here on


def fault(
    site: Site,
    device_id: str,
    *,
    rule_id: str = "test.rule",
    severity: Severity = Severity.CRITICAL,
    started_ms: int = T0,
) -> FaultOpened:
    device = site.by_id[device_id]
    return FaultOpened(
        rule_id=rule_id,
        kind=device.kind,
        device_id=device.id,
        building_id=device.building_id,
        unit_id=device.unit_id,
        severity=severity,
        category=Category.EQUIPMENT,
        title=f"{rule_id} on {device.name}",
        started_ms=started_ms,
        detected_ms=started_ms + 1000,
    )


def open_order(store: WorkOrderStore, site: Site, device_id: str, **kwargs: Any) -> int:
    """File a fault on the device; the id of its (new) work order."""
    store.open_for_faults(site.id, [fault(site, device_id, **kwargs)])
    (order,) = store.list_work_orders(device_id=device_id, limit=1)
    return order.id


def seen(store: WorkOrderStore, site: Site, device_id: str, ts_ms: int, **values: Any) -> None:
    device = site.by_id[device_id]
    with store.engine.begin() as conn:
        conn.execute(
            insert(device_state).values(
                device_id=device.id,
                site_id=site.id,
                kind=device.kind,
                building_id=device.building_id,
                last_seen_ms=ts_ms,
                last_seq=1,
                values_json=orjson.dumps(values).decode(),
            )
        )
