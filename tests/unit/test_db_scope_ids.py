"""A single-site database moved to a portfolio (`facility db scope-ids`), on SQLite and
PostgreSQL: filled by the single-site deployment (orders, a resident's report with its photo
and code, device states, a steward's building, the live feed, a rules checkpoint, maintenance
tracking), refused by a portfolio API until moved, moved once (idempotent), then served as the
portfolio: the old orders under `bravo:b03`, the steward's scope and the printed code kept.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from alerts.rule_faults import site_fault
from api.settings import ApiSettings
from db.engine import make_engine
from db.id_scope import IdScopeError, check_id_scope, scope_ids
from db.schema import (
    device_state,
    live_events,
    live_feed,
    maintenance_tracking,
    rule_checkpoints,
    user_buildings,
    work_orders,
)
from facility.batch import Batch, KindBatch
from facility.catalog import ELEVATOR
from facility.portfolio import load_portfolio
from facility.site import Site, load_site
from ingest.history import SeriesQuery
from ingest.sqlite_history import SQLiteHistory
from ingest.sqlite_store import SQLiteTimeSeries
from runtime import cli
from runtime.services.api import ApiService
from runtime.settings.tree import HttpSettings
from tests.api_support import PASSWORD, SECRET, T0, new_store, open_order, running_api, seen
from tests.fakes import FakeClock
from tests.portfolio_support import file_report, write_estates


def _checkpoint(device_ids: list[str]) -> bytes:
    arrays = {
        "version": np.array(1),
        "elevator.devices": np.array(device_ids, dtype=str),
        "elevator.last_ts": np.zeros(len(device_ids), np.int64),
    }
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _fill_as_single_site(single: Site, url: str, clock: FakeClock) -> dict[str, object]:
    """What a single-site deployment leaves in its database."""
    with running_api(single, new_store(url, clock), clock) as api:
        api.context.users.add("b03-steward", PASSWORD, "steward", buildings=["b03"])
        for device in single.devices:
            seen(api.store, single, device.id, T0)
        monitor = api.app.state.monitor
        monitor.poll_once()
        fault = open_order(api.store, single, "b03-u1-el1")
        report = file_report(api.store, single, "b03")
        api.store.open_for_faults(single.id, [site_fault(single, T0, T0 + 1000)])
        code = api.context.report_codes.code_for("b03-u1")
        filed = api.client.post("/api/v1/reports", json={"code": code, "description": "Lift stuck"})
        assert filed.status_code == 201
        monitor.poll_once()  # the feed now holds events naming b03
        with api.store.engine.begin() as conn:
            conn.execute(
                insert(rule_checkpoints).values(
                    shard="site-bravo", saved_ms=T0, state=_checkpoint(["b03-u1-el1", "b01-u1-el1"])
                )
            )
            conn.execute(
                insert(maintenance_tracking).values(
                    plan_id="lift.monthly", device_id="b03-u1-el1", since_ms=T0
                )
            )
        with api.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(live_events)).scalar()
        return {"fault": fault, "report": report, "code": code, "filed": filed.json()}


def test_a_single_site_database_moves_to_the_portfolio_and_keeps_everything(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = write_estates(tmp_path / "sites")
    single, estates = load_site(sites / "bravo.toml"), load_portfolio(sites)
    clock = FakeClock(T0)
    before = _fill_as_single_site(single, db_url, clock)

    engine = make_engine(db_url)
    try:
        check_id_scope(engine, single)  # as it was: fine
        with pytest.raises(IdScopeError, match=r"facility db scope-ids --site <site id>"):
            check_id_scope(engine, estates)
        store = new_store(db_url, clock)
        with pytest.raises(IdScopeError, match="facility db scope-ids"):
            ApiService(estates, store, ApiSettings(secret=SECRET), HttpSettings(), history=None)
        store.engine.dispose()
    finally:
        engine.dispose()

    capsys.readouterr()
    assert cli.main(["db", "scope-ids", "--site", "bravo", "--db-url", db_url]) == 0
    counts = dict(
        line.split(": ") for line in capsys.readouterr().out.splitlines() if ": " in line[:40]
    )
    # the fault order, the two reports (building, unit); the fault's device; not the site's own
    assert counts["work_orders.building_id"] == "3"
    assert counts["work_orders.unit_id"] == "3"
    assert counts["work_orders.device_id"] == "1"
    assert counts["device_state.device_id"] == str(len(single.devices))
    assert counts["user_buildings.building_id"] == "3"  # b03-steward's, the demo steward's two
    assert counts["maintenance_tracking.device_id"] == "1"
    assert counts["rate_limit_hits.key"] == "1"
    assert counts["rule_checkpoints"] == "1"
    assert int(counts["live_events"]) > 0

    capsys.readouterr()
    assert cli.main(["db", "scope-ids", "--site", "bravo", "--db-url", db_url]) == 0
    again = capsys.readouterr().out
    assert all(line.endswith(": 0") for line in again.splitlines()[:-1]), again
    assert "0 stored ids" in again

    engine = make_engine(db_url)
    try:
        check_id_scope(engine, estates)  # now the portfolio's
        with pytest.raises(IdScopeError, match="serve the portfolio"):
            check_id_scope(engine, single)
        with engine.connect() as conn:
            whole = conn.execute(
                select(work_orders.c.building_id, work_orders.c.device_id).where(
                    work_orders.c.rule_id == site_fault(single, T0, T0).rule_id
                )
            ).one()
            assert tuple(whole) == ("bravo", "bravo")  # the estate's own order: its id, as is
            states = set(conn.execute(select(device_state.c.device_id)).scalars())
            assert states == {d.id for d in estates.devices if d.site_id == "bravo"}
            assert conn.execute(select(func.count()).select_from(live_events)).scalar() == 0
            assert conn.execute(select(live_feed.c.pruned_through)).scalar()
            saved = conn.execute(select(rule_checkpoints.c.state)).scalar_one()
            with np.load(io.BytesIO(saved)) as data:
                assert data["elevator.devices"].tolist() == ["bravo:b03-u1-el1", "bravo:b01-u1-el1"]
            assert sorted(conn.execute(select(user_buildings.c.building_id)).scalars()) == [
                "bravo:b03",  # the demo steward's (b03, b05) and b03-steward's
                "bravo:b03",
                "bravo:b05",
            ]
    finally:
        engine.dispose()

    with running_api(estates, new_store(db_url, clock), clock, users=False) as api:
        # another estate's b03, filed after the move
        alpha = open_order(api.store, estates, "alpha:b03-u1-el1")
        me = api.get("/api/v1/auth/me", "b03-steward").json()
        assert me["buildings"] == ["bravo:b03"]
        page = api.get("/api/v1/work-orders", "b03-steward", params={"limit": 100}).json()
        old = {before["fault"], before["report"], before["filed"]["work_order_id"]}  # type: ignore[index]
        assert {o["id"] for o in page["items"]} == old
        assert {(o["building_id"], o["site_id"]) for o in page["items"]} == {("bravo:b03", "bravo")}
        assert api.get(f"/api/v1/work-orders/{alpha}", "b03-steward").status_code == 404
        assert api.get("/api/v1/buildings/alpha:b03", "b03-steward").status_code == 404
        status = api.get("/api/v1/devices/bravo:b03-u1-el1/status", "b03-steward").json()
        assert status["last_seen_ms"] == T0
        assert [o["id"] for o in status["open_work_orders"]] == [before["fault"]]
        everything = api.get("/api/v1/work-orders", "dispatcher", params={"site": "bravo"}).json()
        assert everything["total"] == len(old) + 1  # and the estate's own order
        # the sticker printed before the move still files into the same unit
        refiled = api.client.post(
            "/api/v1/reports", json={"code": before["code"], "description": "Still stuck"}
        )
        assert refiled.status_code == 201
        assert refiled.json()["unit_id"] == "bravo:b03-u1"


def _lift_readings(site: Site, value: float, ts_ms: int) -> Batch:
    """Every elevator of `site` at `ts_ms`, its motor at `value` C."""
    lifts = site.by_kind["elevator"]
    values = np.full((len(lifts), len(ELEVATOR.fields)), np.nan)
    values[:, ELEVATOR.col("motor_temp_c")] = value
    rows = np.array([d.kind_index for d in lifts], np.int32)
    kb = KindBatch(ELEVATOR, rows, np.full(len(rows), ts_ms, np.int64),
                   np.ones(len(rows), np.int64), values)  # fmt: skip
    return Batch(site.id, {"elevator": kb})


def test_the_embedded_telemetry_file_moves_with_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Estate bravo ran alone on the embedded SQLite stores, then joins the portfolio: with
    `--sqlite-path` its readings are charted under the scoped ids, beside the portfolio's."""
    sites = write_estates(tmp_path / "sites")
    single, estates = load_site(sites / "bravo.toml"), load_portfolio(sites)
    telemetry = tmp_path / "telemetry.sqlite3"
    url = f"sqlite:///{tmp_path / 'wo.sqlite3'}"
    alone = SQLiteTimeSeries(single, telemetry)
    lifts = len(single.by_kind["elevator"])
    assert alone.write(_lift_readings(single, 31.0, T0)).written == lifts
    alone.close()
    args = ["db", "scope-ids", "--site", "bravo", "--db-url", url, "--sqlite-path", str(telemetry)]
    capsys.readouterr()

    assert cli.main(args) == 0

    printed = capsys.readouterr().out
    assert f"ts_elevator: {lifts}" in printed
    assert f"{lifts} readings' device ids scoped" in printed
    joined = SQLiteTimeSeries(estates, telemetry)  # the portfolio's gateway goes on writing
    everyone = len(estates.by_kind["elevator"])
    assert joined.write(_lift_readings(estates, 32.0, T0 + 1000)).written == everyone
    joined.close()
    history = SQLiteHistory(telemetry, estates)
    try:

        def temps(device: str) -> list[tuple[int, float]]:
            query = SeriesQuery("elevator", device, "motor_temp_c", T0, T0 + 2000)
            return [(p.ts_ms, p.value) for p in history.raw(query)]

        assert temps("bravo:b03-u1-el1") == [(T0, 31.0), (T0 + 1000, 32.0)]
        assert temps("alpha:b03-u1-el1") == [(T0 + 1000, 32.0)]  # alpha's own only
    finally:
        history.close()
    assert cli.main(args) == 0  # again: nothing left to scope
    assert "0 readings' device ids scoped" in capsys.readouterr().out

    missing = [*args[:-1], str(tmp_path / "none.sqlite3")]
    assert cli.main(missing) == 2
    err = capsys.readouterr().err
    assert "none.sqlite3: no such file" in err
    assert err.count("\n") == 1


def test_scope_ids_refuses_a_bad_site_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'wo.sqlite3'}"
    capsys.readouterr()
    assert cli.main(["db", "scope-ids", "--site", "Not A Site", "--db-url", url]) == 2
    assert "'Not A Site' is not a site id" in capsys.readouterr().err
    engine = make_engine(url)
    try:
        with pytest.raises(IdScopeError):
            scope_ids(engine, "a:b")
    finally:
        engine.dispose()


def test_an_empty_database_suits_either_deployment(tmp_path: Path) -> None:
    sites = write_estates(tmp_path / "sites")
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", FakeClock(T0))
    try:
        check_id_scope(store.engine, load_site(sites / "alpha.toml"))
        check_id_scope(store.engine, load_portfolio(sites))
    finally:
        store.engine.dispose()


def test_a_gateway_refuses_a_database_of_the_other_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A portfolio gateway on a single-site database would file orders under ids no scope
    sees: it stops before it connects, naming the command that moves the database."""
    sites = write_estates(tmp_path / "sites")
    single = load_site(sites / "alpha.toml")
    url = f"sqlite:///{tmp_path / 'wo.sqlite3'}"
    store = new_store(url, FakeClock(T0))
    try:
        open_order(store, single, "b03-u1-el1")
    finally:
        store.engine.dispose()
    capsys.readouterr()
    argv = ["gateway", "--site", str(sites), "--db-url", url, "--metrics-port", "0"]
    assert cli.main(argv) == 2
    assert "facility db scope-ids --site" in capsys.readouterr().err
