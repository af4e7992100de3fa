"""Every fault: its signature shows in the signals of the targeted devices, nowhere else, and
the ledger records it.

Each faulted run is compared with the same run (same seed) without the fault: a device the
fault does not target must publish exactly the same bytes (pumps of a targeted booster set
share water, so they may differ, but never show the signature).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import orjson
import pytest

from facility.site import Site, parse_site
from facility.wire import parse_topic
from simulators.faults import FAULT_TYPES
from simulators.injection import Ledger, parse_injection
from simulators.portfolio import generate_site
from simulators.publisher import MemoryPublisher, Published
from simulators.runner import FleetSimulator, SimulationSettings, SimulationSummary

START_MS = 1_790_033_400_000  # Tuesday 2026-09-22 07:30 in Asia/Shanghai: people are moving
SITE_TOML = """
[site]
id = "test-estate"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"
[[buildings.units]]
id = "b1-u1"
devices = [
  { id = "b1-el1", kind = "elevator" }, { id = "b1-el2", kind = "elevator" },
  { id = "b1-stair", kind = "lighting" },
  { id = "b1-emerg", kind = "lighting", name = "Emergency" },
  { id = "b1-door", kind = "gate", name = "Unit door" },
]

[[buildings]]
id = "b2"
[[buildings.units]]
id = "b2-u1"
devices = [
  { id = "b2-el1", kind = "elevator" }, { id = "b2-stair", kind = "lighting" },
  { id = "b2-emerg", kind = "lighting" }, { id = "b2-door", kind = "gate", name = "Unit door" },
]

[[buildings]]
id = "estate"
[[buildings.units]]
id = "gates"
devices = [{ id = "gate-north", kind = "gate" }, { id = "land-east", kind = "lighting" }]
[[buildings.units]]
id = "pumps-a"
devices = [{ id = "pa-1", kind = "pump" }, { id = "pa-2", kind = "pump" }]
[[buildings.units]]
id = "pumps-b"
devices = [
  { id = "pb-1", kind = "pump" }, { id = "pb-2", kind = "pump" }, { id = "pb-3", kind = "pump" },
]
"""
SITE = parse_site(SITE_TOML)


@dataclass(frozen=True)
class Config:
    rate_hz: float
    seconds: float


FAST = Config(1.0, 600.0)  # faults at @60+400
MEDIUM = Config(1 / 60, 12 * 3600.0)  # faults at @1h+10h
SLOW = Config(1 / 900, 3.5 * 86400.0)  # faults at @1h+3d
WINDOWS = {FAST: (60.0, 400.0), MEDIUM: (3600.0, 36000.0), SLOW: (3600.0, 3 * 86400.0)}


class ListPublisher(MemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []


@dataclass
class Run:
    messages: list[Published]
    ledger: list[dict[str, object]]
    summary: SimulationSummary

    def readings(self) -> dict[str, list[dict[str, float]]]:
        out: dict[str, list[dict[str, float]]] = defaultdict(list)
        for topic, payload in self.messages:
            parsed = parse_topic(topic)
            assert parsed is not None
            doc = orjson.loads(payload)
            out[parsed.device].extend(doc.get("readings", [doc]))
        return dict(out)


def simulate(
    config: Config, inject: tuple[str, ...] = (), *, site: Site = SITE, seed: int = 5
) -> Run:
    settings = SimulationSettings(
        rate_hz=config.rate_hz, speed=0, duration_s=config.seconds, start_ms=START_MS, seed=seed
    )
    ledger = Ledger(None)
    injections = [parse_injection(text, site, seed=seed) for text in inject]
    publisher = ListPublisher()
    simulator = FleetSimulator(site, settings, injections, ledger, now_ms=START_MS + 10**9)
    summary = simulator.run(publisher)
    return Run(publisher.messages, ledger.entries, summary)


@cache
def baseline(config: Config) -> dict[str, list[dict[str, float]]]:
    return simulate(config).readings()


def series(readings: list[dict[str, float]], name: str, lo_s: float, hi_s: float) -> np.ndarray:
    """Values of one field in [START + lo_s, START + hi_s)."""
    return np.array(
        [
            float(r[name])
            for r in readings
            if START_MS + lo_s * 1000 <= int(r["ts"]) < START_MS + hi_s * 1000
        ]
    )


Check = Callable[[list[dict[str, float]], list[dict[str, float]]], None]
"""(faulted readings, baseline readings) of one targeted device -> assertions."""

H, D = 3600.0, 86400.0


def _entrapment(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "running", 70, 460) == 0)
    assert np.all(np.abs(series(f, "level_error_mm", 70, 460)) > 150)
    assert np.all(series(f, "door_state", 70, 460) == 0)
    assert np.all(series(f, "alarm_button", 70, 460) == 1)
    assert np.all(series(f, "fault_code", 70, 460) == 32)
    assert series(f, "running", 460, 600).max() == 1  # rescued, back in service


def _door_obstruction(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert series(f, "door_reopen_count", 120, 460).mean() > 1.0
    assert series(f, "door_reopen_count", 120, 460).max() >= 3
    assert series(b, "door_reopen_count", 120, 460).mean() < 0.5


def _slow_doors(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    early = series(f, "door_open_time_s", 1 * H, 3 * H)
    assert series(f, "door_open_time_s", 9 * H, 11 * H).mean() > 1.6 * early.mean()
    assert series(b, "door_open_time_s", 9 * H, 11 * H).mean() < 1.3 * early.mean()


def _at_stops(readings: list[dict[str, float]], lo_s: float, hi_s: float) -> np.ndarray:
    running = series(readings, "running", lo_s, hi_s)
    stopped: np.ndarray = np.abs(series(readings, "level_error_mm", lo_s, hi_s)[running == 0])
    return stopped


def _levelling_drift(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.median(_at_stops(f, 9 * H, 11 * H)) > 15
    assert np.median(_at_stops(b, 9 * H, 11 * H)) < 5


def _overheating(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    hot = series(f, "motor_temp_c", 4 * H, 11 * H)
    assert hot.min() > series(b, "motor_temp_c", 0, 12 * H).max()
    assert series(f, "fault_code", 1 * H, 11 * H).max() == 71


def _bearing_wear(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    def moving(readings: list[dict[str, float]]) -> np.ndarray:
        running = series(readings, "running", 7 * H, 11 * H)
        vibration: np.ndarray = series(readings, "vibration_mm_s", 7 * H, 11 * H)[running == 1]
        return vibration

    assert np.median(moving(f)) > 2.5 * np.median(moving(b))


def _missed_test(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    ok = series(f, "alarm_test_ok", 1 * H, 3 * D + 1 * H)
    assert ok.min() == 0
    assert ok[-1] == 0
    first_fail = int(np.argmax(ok == 0))
    assert np.all(ok[first_fail:] == 0)  # stays failed until a later test passes
    assert series(b, "alarm_test_ok", 0, 4 * D).min() == 1


def _dry_run(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "running", 60, 460) == 1)
    assert series(f, "suction_bar", 60, 460).max() < 0.2
    assert series(f, "flow_m3h", 60, 460).max() < 1.0
    assert series(b, "suction_bar", 0, 600).min() > 0.3


def _pump_bearing_wear(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    running = series(b, "running", 60, 460) == 1
    assert running.all(), "pick a running pump for this check"
    vib_f, vib_b = series(f, "vibration_mm_s", 60, 460), series(b, "vibration_mm_s", 60, 460)
    assert vib_f.mean() > 2.5 * vib_b.mean()


def _cavitation(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    running = series(b, "running", 60, 460) == 1
    assert running.all(), "pick a running pump for this check"
    vib_f, vib_b = series(f, "vibration_mm_s", 60, 460), series(b, "vibration_mm_s", 60, 460)
    assert vib_f.mean() > 2.0 * vib_b.mean()
    dis_f, dis_b = series(f, "discharge_bar", 60, 460), series(b, "discharge_bar", 60, 460)
    assert dis_b.mean() - dis_f.mean() > 0.5
    cur_f, cur_b = series(f, "motor_current_a", 60, 460), series(b, "motor_current_a", 60, 460)
    assert np.std(cur_f / cur_b) > 0.05


def _low_tank(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    tank = series(f, "tank_level_pct", 1 * H, 11 * H)
    assert tank.min() < 8
    assert series(b, "tank_level_pct", 0, 12 * H).min() > 25
    low = tank < 4.5
    assert low.any()
    assert np.all(series(f, "running", 1 * H, 11 * H)[low] == 0)  # the low-level cut-out


def _leak(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "leak", 60, 460) == 1)
    assert series(b, "leak", 0, 600).max() == 0


def _flat_line(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert len(set(series(f, "discharge_bar", 60, 460))) == 1
    assert len(set(series(b, "discharge_bar", 60, 460))) > 10
    # only that signal: everything else the device reports is unchanged
    for rf, rb in zip(f, b, strict=True):
        assert {k: v for k, v in rf.items() if k != "discharge_bar"} == {
            k: v for k, v in rb.items() if k != "discharge_bar"
        }


def _wire_cut(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "discharge_bar", 60, 460) == -1.0)
    assert series(b, "discharge_bar", 60, 460).min() > 0


def _forced_open(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "forced_open", 60, 460) == 1)
    assert np.all(series(f, "door_open", 60, 460) == 1)
    assert series(b, "forced_open", 0, 600).max() == 0


def _held_open(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "door_open", 60, 460) == 1)
    assert np.all(series(f, "held_open", 130, 460) == 1)
    assert series(f, "forced_open", 0, 600).max() == 0


def _reader_failure(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert series(f, "granted", 60, 460).sum() == 0
    assert series(f, "denied", 60, 460).sum() > series(b, "denied", 60, 460).sum() + 5
    assert series(b, "granted", 60, 460).sum() > 5


def _dark(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "commanded_on", 60, 460) == 1)
    assert series(f, "current_a", 60, 460).max() == 0
    assert series(b, "current_a", 60, 460).min() > 0.1


def _lamp_failures(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert series(f, "lamp_failures", 60, 460).min() >= 7
    ratio = series(f, "current_a", 60, 460).mean() / series(b, "current_a", 60, 460).mean()
    assert 0.45 < ratio < 0.75


def _day_burning(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "commanded_on", 60, 460) == 1)
    assert series(f, "current_a", 60, 460).min() > 0.1
    assert series(b, "commanded_on", 60, 460).max() == 0


def _battery(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert np.all(series(f, "emergency_battery_ok", 60, 460) == 0)
    assert series(b, "emergency_battery_ok", 0, 600).min() == 1


def _silent(f: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert len(series(f, "seq", 60, 460)) == 0
    after = series(f, "seq", 460, 600)
    assert after[0] == series(b, "seq", 460, 600)[0]  # a gap of the 400 readings not sent
    assert len(series(f, "seq", 0, 60)) == 60


CASES: dict[str, tuple[str, Config, Check]] = {
    "elevator-entrapment": ("elevator-entrapment:b1-el2@60+400", FAST, _entrapment),
    "door-obstruction": ("door-obstruction:b1-el1@60+400", FAST, _door_obstruction),
    "slow-doors": ("slow-doors:b2-el1@1h+10h/rate_per_day=6", MEDIUM, _slow_doors),
    "levelling-drift": ("levelling-drift:b1-el1@1h+10h/mm_per_day=100", MEDIUM, _levelling_drift),
    "motor-overheating": ("motor-overheating:b1-el2@1h+10h", MEDIUM, _overheating),
    "bearing-wear": ("bearing-wear:b1-el1@1h+10h/rate_per_day=12", MEDIUM, _bearing_wear),
    "missed-alarm-test": ("missed-alarm-test:b2-el1@1h+3d", SLOW, _missed_test),
    "pump-dry-run": ("pump-dry-run:pb-2@60+400", FAST, _dry_run),
    "pump-cavitation": ("pump-cavitation:pb-1@60+400", FAST, _cavitation),
    "pump-bearing-wear": (
        "pump-bearing-wear:pb-1@60+400/rate_per_day=100000",
        FAST,
        _pump_bearing_wear,
    ),
    "low-tank": ("low-tank:pb-1@1h+10h", MEDIUM, _low_tank),
    "pump-leak": ("pump-leak:pa-2@60+400", FAST, _leak),
    "sensor-flat-line": ("sensor-flat-line:pa-1@60+400", FAST, _flat_line),
    "sensor-wire-cut": ("sensor-wire-cut:pa-1@60+400", FAST, _wire_cut),
    "gate-forced-open": ("gate-forced-open:b2-door@60+400", FAST, _forced_open),
    "gate-held-open": ("gate-held-open:b1-door@60+400", FAST, _held_open),
    "card-reader-failure": ("card-reader-failure:gate-north@60+400", FAST, _reader_failure),
    "lighting-circuit-dark": ("lighting-circuit-dark:b2-emerg@60+400", FAST, _dark),
    "lamp-failures": ("lamp-failures:b1-emerg@60+400", FAST, _lamp_failures),
    "day-burning": ("day-burning:b1-stair@60+400", FAST, _day_burning),
    "emergency-battery-failure": ("emergency-battery-failure:b2-emerg@60+400", FAST, _battery),
    "device-silent": ("device-silent:land-east@60+400", FAST, _silent),
}
SITE_WIDE = {"site-power-loss", "broker-disconnect", "bad-payloads"}


def test_every_fault_has_a_signature_test() -> None:
    assert set(CASES) | SITE_WIDE == set(FAULT_TYPES)


@pytest.mark.parametrize("fault", sorted(CASES))
def test_the_signature_shows_on_the_targets_only_and_the_ledger_has_it(fault: str) -> None:
    text, config, check = CASES[fault]
    run = simulate(config, (text,))
    base = baseline(config)
    faulted = run.readings()
    targets = {str(e["device"]) for e in run.ledger}
    assert targets == {text.split(":")[1].split("@")[0]} | (
        {"pb-1", "pb-2", "pb-3"} if fault == "low-tank" else set()
    )
    for target in targets:
        check(faulted[target], base[target])
    sets = {d.unit_id for d in SITE.devices if d.id in targets and d.kind == "pump"}
    for device in SITE.devices:
        if device.id in targets:
            continue
        if device.unit_id in sets:  # shares the water of a targeted pump: no signature though
            if fault in ("pump-dry-run", "pump-cavitation"):
                assert series(faulted[device.id], "suction_bar", 0, config.seconds).min() > 0.3
            continue
        assert faulted[device.id] == base[device.id], device.id
    start_s, duration_s = WINDOWS[config]
    tick_ms = 1000.0 / config.rate_hz
    for entry in run.ledger:
        assert entry["fault"] == fault
        assert entry["kind"] == SITE.by_id[str(entry["device"])].kind
        assert entry["start_ms"] == START_MS + int(np.ceil(start_s * 1000 / tick_ms) * tick_ms)
        assert entry["end_ms"] == START_MS + int(
            np.ceil((start_s + duration_s) * 1000 / tick_ms) * tick_ms
        )
        assert entry["parameters"] == dict(FAULT_TYPES[fault].parameters) | _given(text)


def _given(text: str) -> dict[str, object]:
    params: dict[str, object] = {}
    for part in text.split("/")[1:]:
        key, _, value = part.partition("=")
        params[key] = float(value)
    return params


def test_a_share_of_a_kind_hits_that_many_devices_picked_by_the_seed() -> None:
    site = generate_site(1000)
    elevators = len(site.by_kind["elevator"])
    picked = parse_injection("bearing-wear:10%", site, seed=1).devices
    assert len(picked) == round(elevators * 0.1)
    assert {d.kind for d in picked} == {"elevator"}
    assert parse_injection("bearing-wear:10%", site, seed=1).devices == picked
    assert parse_injection("bearing-wear:10%", site, seed=2).devices != picked
    everything = parse_injection("device-silent:*", site).devices
    assert len(everything) == 1000
    building = parse_injection("lamp-failures:c001-b03", site).devices
    assert [d.id for d in building] == [
        "c001-b03-u1-stair",
        "c001-b03-u1-emerg",
        "c001-b03-u2-stair",
        "c001-b03-u2-emerg",
    ]
