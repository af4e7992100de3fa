"""The gateway's side of a portfolio: three estates with the same building and device ids
(`b03`, `b03-u1-el2`) must land, be stored, be judged and be filed each on its own estate."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import select

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.notify.outbox import OutboxRow
from alerts.notify.service import NoticeMaker
from alerts.rule_faults import SITE_RULE_ID, site_fault
from alerts.rule_file import parse_rule_file
from alerts.store import WorkOrderStore
from alerts.workorders import EventKind
from db.engine import make_engine
from db.schema import device_state
from facility.batch import Batch, KindBatch
from facility.catalog import ELEVATOR, PUMP, KindSpec
from facility.errors import SettingsError
from facility.portfolio import load_portfolio
from facility.site import Site
from gateway.decoder import Decoder, Message, RejectReason
from gateway.leadership import ShardSettings
from gateway.shard_site import shard_name, shard_site, shard_topics
from ingest.line_protocol import encode, series_keys
from simulators.injection import InjectionError, parse_injection
from simulators.runner import FleetSimulator, SimulationSettings
from tests.portfolio_sites import DEVICES_PER_ESTATE, ESTATES, write_estates

NOW = 1_790_000_000_000


@pytest.fixture
def portfolio(tmp_path: Path) -> Site:
    return load_portfolio(write_estates(tmp_path / "sites"))


def _topic(site: str, device: str, building: str = "b03", kind: str = "elevator") -> str:
    return f"facility/v1/{site}/{building}/{kind}/{device}/telemetry"


def _reading(ts_ms: int, **values: float) -> bytes:
    return orjson.dumps({"ts": ts_ms, "seq": 1, **values})


# -- decoder ---------------------------------------------------------------------------------


def test_each_estates_topic_lands_on_its_own_row(portfolio: Site) -> None:
    messages = [
        Message(_topic(site, "b03-u1-el2"), _reading(NOW - 1000 * i, load_kg=100.0 * (i + 1)))
        for i, site in enumerate(ESTATES)
    ]
    result = Decoder(portfolio).decode(messages, now_ms=NOW)
    assert result.rejections == []
    kb = result.batch.kinds["elevator"]
    rows = portfolio.by_kind["elevator"]
    landed = {
        rows[int(d)].id: float(v) for d, v in zip(kb.device, kb.column("load_kg"), strict=True)
    }
    assert landed == {
        "alpha:b03-u1-el2": 100.0,
        "beta:b03-u1-el2": 200.0,
        "gamma:b03-u1-el2": 300.0,
    }


@pytest.mark.parametrize(
    ("topic", "reason", "detail"),
    [
        (_topic("delta", "b03-u1-el2"), RejectReason.UNKNOWN_SITE, "'alpha', 'beta', 'gamma'"),
        (_topic("portfolio", "b03-u1-el2"), RejectReason.UNKNOWN_SITE, "not one of"),
        (_topic("beta", "b03-u1-el9"), RejectReason.UNKNOWN_DEVICE, "of site 'beta'"),
        (_topic("beta", "b03-u1-el2", building="b04"), RejectReason.UNKNOWN_DEVICE, "'b04'"),
        (_topic("beta", "b03-u1-el2", kind="pump"), RejectReason.UNKNOWN_DEVICE, "no pump"),
        # the portfolio's scoped ids are not the topic's ids
        (_topic("beta", "beta:b03-u1-el2"), RejectReason.UNKNOWN_DEVICE, "beta:b03-u1-el2"),
        (_topic("beta", "b03-u1-el2", building="beta:b03"), RejectReason.UNKNOWN_DEVICE, "b03"),
    ],
)
def test_a_wrong_estate_or_device_is_rejected_and_counted(
    portfolio: Site, topic: str, reason: RejectReason, detail: str
) -> None:
    good = Message(_topic("gamma", "b03-u1-el1"), _reading(NOW, load_kg=1.0))
    result = Decoder(portfolio).decode(
        [Message(topic, _reading(NOW, load_kg=1.0)), good], now_ms=NOW
    )
    assert [(r.reason, r.topic) for r in result.rejections] == [(reason, topic)]
    assert detail in result.rejections[0].detail
    assert len(result.batch) == 1  # the good message goes on


# -- line protocol ---------------------------------------------------------------------------


def _batch(spec: KindSpec, rows: list[tuple[int, float, dict[str, float]]]) -> KindBatch:
    """rows: (kind_index, seconds after NOW, {field: value})."""
    values = np.full((len(rows), len(spec.fields)), math.nan)
    for i, (_, _, fields) in enumerate(rows):
        for name, value in fields.items():
            values[i, spec.col(name)] = value
    return KindBatch(
        spec,
        np.array([r[0] for r in rows], np.int32),
        np.array([NOW + round(1000 * r[1]) for r in rows], np.int64),
        np.arange(len(rows), dtype=np.int64),
        values,
    )


def test_each_series_is_tagged_with_its_own_estate_and_scoped_ids(portfolio: Site) -> None:
    keys = series_keys(portfolio, PUMP)
    assert keys.tolist() == [
        f"pump,site={s},building={s}:b03,unit={s}:b03-u1,device={s}:b03-pump" for s in ESTATES
    ]
    lines = encode(keys, _batch(PUMP, [(1, 0, {"running": 1.0})]))
    assert lines == [
        f"pump,site=beta,building=beta:b03,unit=beta:b03-u1,device=beta:b03-pump "
        f"running=true {NOW}".encode()
    ]


# -- rules: site silence and schedules estate by estate --------------------------------------

OFFLINE = """
[[rules]]
id = "offline"
kind = "any"
when = "age() > heartbeat_s"
severity = "major"
title = "Offline: {device}"
"""


def _every_device(site: Site, t_s: float, estates: set[str]) -> Batch:
    """One reading at `t_s` of every device of the given estates."""
    kinds = {}
    for spec in (ELEVATOR, PUMP):
        rows = [
            (d.kind_index, t_s, {spec.fields[0].name: 1.0})
            for d in site.by_kind[spec.name]
            if d.site_id in estates
        ]
        if rows:
            kinds[spec.name] = _batch(spec, rows)
    return Batch(site.id, kinds)


def test_one_estate_going_silent_is_one_incident_on_that_estate(portfolio: Site) -> None:
    rules = parse_rule_file(OFFLINE)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    engine.tick(NOW)
    opened: list[FaultOpened] = []
    cleared: list[FaultCleared] = []
    for t in range(0, 400):  # alpha reports once; beta and gamma every second
        evaluation = engine.evaluate(
            _every_device(portfolio, t, {"beta", "gamma"} | ({"alpha"} if t == 0 else set()))
        )
        opened += evaluation.opened
        opened += engine.tick(NOW + 1000 * t + 500).opened
    assert [(f.rule_id, f.device_id, f.building_id, f.site_id, f.started_ms) for f in opened] == [
        (SITE_RULE_ID, "alpha", "alpha", "alpha", NOW)
    ]
    assert "Estate Alpha" in opened[0].title
    back = engine.evaluate(_every_device(portfolio, 401, set(ESTATES)))
    cleared += back.cleared
    assert cleared == [FaultCleared(SITE_RULE_ID, "alpha", NOW + 401_000)]
    # the checkpoint keeps each estate's incident
    engine.tick(NOW + 1_000_000)  # every estate silent now
    saved = engine.checkpoint_arrays()
    again = RuleEngine(portfolio, rules.rules, params=rules.params)
    again.restore(saved)
    assert again.site_active.tolist() == [True, True, True]
    assert saved["site.ids"].tolist() == list(ESTATES)


def test_a_silent_estates_devices_are_not_offline_one_by_one(portfolio: Site) -> None:
    rules = parse_rule_file(OFFLINE)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    engine.tick(NOW)
    engine.evaluate(_every_device(portfolio, 0, set(ESTATES)))
    opened = []
    for t in range(1, 200):  # gamma's el2 alone stops; alpha stops altogether
        batch = _every_device(portfolio, t, {"beta", "gamma"})
        kinds = dict(batch.kinds)
        el = kinds["elevator"]
        keep = np.array(
            [portfolio.by_kind["elevator"][int(d)].id != "gamma:b03-u1-el2" for d in el.device]
        )
        kinds["elevator"] = el.take(keep)
        engine.evaluate(Batch(batch.site_id, kinds))
        opened += engine.tick(NOW + 1000 * t + 500).opened
    assert sorted((f.rule_id, f.device_id, f.site_id) for f in opened) == [
        ("offline", "gamma:b03-u1-el2", "gamma"),
        (SITE_RULE_ID, "alpha", "alpha"),
    ]


OFFICE_HOURS = """
[[rules]]
id = "office"
kind = "pump"
when = "running > 0"
schedule = { hours = "10:00-15:00" }
severity = "warning"
title = "Running in office hours: {device}"
"""


@pytest.mark.parametrize(
    ("utc_hour", "expected"),
    [
        (3, ["alpha:b03-pump"]),  # 11:00 in Shanghai, 03:00 in London, 22:00 in New York
        (12, ["beta:b03-pump"]),  # 20:00 in Shanghai, 12:00 in London, 07:00 in New York
        (16, ["gamma:b03-pump"]),  # 00:00 in Shanghai, 16:00 in London, 11:00 in New York
        (9, []),  # 17:00, 09:00, 04:00
    ],
)
def test_a_schedule_is_read_in_each_estates_time_zone(
    portfolio: Site, utc_hour: int, expected: list[str]
) -> None:
    rules = parse_rule_file(OFFICE_HOURS)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    at = datetime(2026, 1, 6, utc_hour, tzinfo=UTC)  # a Tuesday, no daylight saving anywhere
    at_s = (at.timestamp() * 1000 - NOW) / 1000
    batch = Batch(
        portfolio.id, {"pump": _batch(PUMP, [(i, at_s, {"running": 1.0}) for i in range(3)])}
    )
    opened = engine.evaluate(batch).opened
    assert [f.device_id for f in opened] == expected
    assert [f.site_id for f in opened] == [d.split(":")[0] for d in expected]


# -- filing ----------------------------------------------------------------------------------


def test_orders_and_device_state_are_filed_on_each_devices_estate(portfolio: Site) -> None:
    store = WorkOrderStore(make_engine("sqlite://"))
    store.migrate()
    rules = parse_rule_file(OFFICE_HOURS)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    at_s = (datetime(2026, 1, 6, 12, tzinfo=UTC).timestamp() * 1000 - NOW) / 1000
    batch = Batch(
        portfolio.id, {"pump": _batch(PUMP, [(i, at_s, {"running": 1.0}) for i in range(3)])}
    )
    store.open_for_faults(portfolio.id, engine.evaluate(batch).opened)
    store.update_device_state(portfolio, batch)
    orders = store.list_work_orders()
    assert [(o.site_id, o.building_id, o.device_id) for o in orders] == [
        ("beta", "beta:b03", "beta:b03-pump")
    ]
    with store.engine.connect() as conn:
        rows = conn.execute(select(device_state.c.device_id, device_state.c.site_id)).all()
    assert sorted(rows) == [(f"{s}:b03-pump", s) for s in ESTATES]


def test_root_cause_and_site_incident_orders_are_filed_on_their_estate(portfolio: Site) -> None:
    store = WorkOrderStore(make_engine("sqlite://"))
    store.migrate()
    rules = parse_rule_file(OFFICE_HOURS + OFFLINE)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    day_s = (datetime(2026, 1, 6, 12, tzinfo=UTC).timestamp() * 1000 - NOW) / 1000
    on, off = {"running": 1.0}, {"running": 0.0}
    for episode in range(3):  # beta's pump runs in office hours three times: a root cause
        t = day_s + 3600 * episode  # an hour apart: not a flap (the default gap is 30 min)
        for values in (on, off):
            batch = _batch(PUMP, [(1, t, values)])
            store.open_for_faults(
                portfolio.id, engine.evaluate(Batch(portfolio.id, {"pump": batch})).opened
            )
            t += 60
    engine.tick(NOW + round(day_s * 1000))
    store.open_for_faults(
        portfolio.id, engine.tick(NOW + round(day_s * 1000) + 4 * 3_600_000).opened
    )
    orders = sorted(
        (o.source, o.site_id, o.building_id, o.device_id) for o in store.list_work_orders()
    )
    assert orders == [
        ("fault", "alpha", "alpha", "alpha"),  # every estate silent: one incident each
        ("fault", "beta", "beta", "beta"),
        ("fault", "beta", "beta:b03", "beta:b03-pump"),
        ("fault", "gamma", "gamma", "gamma"),
        ("root_cause", "beta", "beta:b03", "beta:b03-pump"),
    ]


# -- shards ----------------------------------------------------------------------------------


def test_a_shard_serves_every_estate_by_default(portfolio: Site) -> None:
    shard = ShardSettings()
    assert shard_site(shard, portfolio) is portfolio
    assert shard_name(shard, portfolio) == "site-portfolio"
    assert shard_topics(shard, portfolio) == tuple(
        f"facility/v1/{s}/+/+/+/telemetry" for s in ESTATES
    )


def test_a_shard_of_some_estates_knows_only_their_devices(portfolio: Site) -> None:
    shard = ShardSettings(sites=("gamma", "alpha"))
    served = shard_site(shard, portfolio)
    assert [s.id for s in served.sites] == ["alpha", "gamma"]
    assert len(served.devices) == 2 * DEVICES_PER_ESTATE
    assert {d.site_id for d in served.devices} == {"alpha", "gamma"}
    assert [d.kind_index for d in served.by_kind["elevator"]] == [0, 1, 2, 3]
    assert shard_name(shard, portfolio) == "sites-alpha+gamma"
    assert shard_topics(shard, served) == (
        "facility/v1/alpha/+/+/+/telemetry",
        "facility/v1/gamma/+/+/+/telemetry",
    )
    # beta's telemetry is not this gateway's: rejected, never judged silent
    result = Decoder(served).decode(
        [Message(_topic("beta", "b03-u1-el1"), _reading(NOW))], now_ms=NOW
    )
    assert [r.reason for r in result.rejections] == [RejectReason.UNKNOWN_SITE]
    rules = parse_rule_file(OFFLINE)
    engine = RuleEngine(served, rules.rules, params=rules.params)
    engine.tick(NOW)
    engine.evaluate(_every_device(served, 0, {"alpha", "gamma"}))
    opened = []
    for t in range(1, 100):
        engine.evaluate(_every_device(served, t, {"alpha", "gamma"}))
        opened += engine.tick(NOW + 1000 * t + 500).opened
    assert opened == []


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        (("alpha", "delta"), "no site 'delta' in the site file(s); they hold: alpha, beta, gamma"),
        (("portfolio",), "no site 'portfolio'"),
    ],
)
def test_a_shard_naming_an_unknown_estate_is_refused(
    portfolio: Site, sites: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SettingsError, match="shard-sites") as info:
        shard_site(ShardSettings(sites=sites), portfolio)
    assert message in str(info.value)


@pytest.mark.parametrize(("sites", "message"), [(("a", "a"), "twice"), (("",), "empty")])
def test_bad_shard_sites_are_refused(sites: tuple[str, ...], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ShardSettings(sites=sites)


# -- simulator -------------------------------------------------------------------------------


def test_the_simulator_publishes_each_device_on_its_estates_topic(portfolio: Site) -> None:
    sim = FleetSimulator(portfolio, SimulationSettings(duration_s=1, speed=0), [], now_ms=NOW)
    assert sim.topics["elevator"] == [
        _topic(s, d) for s in ESTATES for d in ("b03-u1-el1", "b03-u1-el2")
    ]
    assert sim.topics["pump"] == [_topic(s, "b03-pump", kind="pump") for s in ESTATES]


def test_an_injection_takes_a_scoped_device_building_or_estate(portfolio: Site) -> None:
    one = parse_injection("pump-dry-run:beta:b03-pump@20+100", portfolio)
    assert [d.id for d in one.devices] == ["beta:b03-pump"]
    building = parse_injection("elevator-entrapment:gamma:b03@20", portfolio)
    assert [d.id for d in building.devices] == ["gamma:b03-u1-el1", "gamma:b03-u1-el2"]
    estate = parse_injection("elevator-entrapment:alpha@20", portfolio)
    assert [d.id for d in estate.devices] == ["alpha:b03-u1-el1", "alpha:b03-u1-el2"]
    with pytest.raises(InjectionError, match="'b03-pump' is not one"):
        parse_injection("pump-dry-run:b03-pump@20", portfolio)  # which estate's?


def test_a_notice_names_the_estate_and_reads_its_time_zone(portfolio: Site) -> None:
    store = WorkOrderStore(make_engine("sqlite://"))
    store.migrate()
    incident = site_fault(portfolio.sites[0], NOW, NOW + 60_000)
    rules = parse_rule_file(OFFICE_HOURS)
    engine = RuleEngine(portfolio, rules.rules, params=rules.params)
    at_s = (datetime(2026, 1, 6, 12, tzinfo=UTC).timestamp() * 1000 - NOW) / 1000
    batch = _batch(PUMP, [(1, at_s, {"running": 1.0})])
    faults = [incident, *engine.evaluate(Batch(portfolio.id, {"pump": batch})).opened]
    store.open_for_faults(portfolio.id, faults)
    make = NoticeMaker(portfolio, None)
    notices = {
        o.device_id: make(OutboxRow(o.id, EventKind.CREATED, NOW, None, o), o)
        for o in store.list_work_orders()
    }
    assert {d: (n.building_name, n.time_zone) for d, n in notices.items()} == {
        "alpha": ("Estate Alpha", "Asia/Shanghai"),
        "beta:b03-pump": ("Building 3", "Europe/London"),
    }
