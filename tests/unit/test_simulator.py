"""The walking-skeleton simulator: valid, deterministic telemetry and faults where injected."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from facility.site import Site
from gateway.decoder import Decoder
from simulators.faults import FAULT_TYPES
from simulators.injection import InjectionError, Ledger, parse_injection
from simulators.publisher import MemoryPublisher, Published
from simulators.runner import FleetSimulator, SimulationSettings

START_MS = 1_790_000_000_000  # 2026-09-21 14:13 UTC: 22:13, evening in Asia/Shanghai
FAULT_RULE = {
    "pump-dry-run": "pump.dry_run",
    "elevator-entrapment": "elevator.entrapment",
    "gate-forced-open": "gate.forced_open",
    "lighting-circuit-dark": "lighting.circuit_dark",
}


def _run(
    site: Site,
    seconds: int,
    *,
    seed: int = 0,
    batch: int = 1,
    inject: tuple[str, ...] = (),
    ledger: Path | None = None,
    start_ms: int = START_MS,
) -> list[Published]:
    settings = SimulationSettings(
        speed=0, duration_s=seconds, start_ms=start_ms, seed=seed, readings_per_message=batch
    )
    injections = [parse_injection(text, site) for text in inject]
    publisher = MemoryPublisher()
    FleetSimulator(site, settings, injections, Ledger(ledger)).run(publisher)
    return publisher.messages


def _faults(site: Site, messages: list[Published], now_ms: int) -> list[tuple[str, str]]:
    result = Decoder(site).decode(messages, now_ms=now_ms)
    assert result.rejections == [], result.rejections[:3]
    opened = RuleEngine.from_rule_set(site, default_rule_set()).evaluate(result.batch).opened
    return sorted((f.device_id, f.rule_id) for f in opened)


def test_same_seed_same_bytes_other_seed_other_bytes(demo_site: Site) -> None:
    first = _run(demo_site, 20, seed=3, batch=4, inject=("pump-dry-run@5",))
    again = _run(demo_site, 20, seed=3, batch=4, inject=("pump-dry-run@5",))
    other = _run(demo_site, 20, seed=4, batch=4, inject=("pump-dry-run@5",))
    assert first == again
    assert first != other


def test_every_device_reports_every_tick_with_rising_seq(demo_site: Site) -> None:
    messages = _run(demo_site, 10, batch=5)
    assert len(messages) == 2 * len(demo_site.devices)
    _topic, payload = messages[0]
    readings = orjson.loads(payload)["readings"]
    assert [r["seq"] for r in readings] == [1, 2, 3, 4, 5]
    assert [r["ts"] for r in readings] == [START_MS + i * 1000 for i in range(5)]


@pytest.mark.parametrize("hour_offset_h", [0, 6, 12, 18])
def test_a_normal_quarter_hour_is_valid_and_raises_no_fault(
    demo_site: Site, hour_offset_h: int
) -> None:
    start = START_MS + hour_offset_h * 3_600_000
    messages = _run(demo_site, 900, batch=60, start_ms=start)
    assert _faults(demo_site, messages, now_ms=start + 900_000) == []


@pytest.mark.parametrize("fault", sorted(FAULT_RULE))
def test_each_fault_fires_its_rule_on_the_targeted_device_only(
    demo_site: Site, fault: str, tmp_path: Path
) -> None:
    kind = FAULT_TYPES[fault].kind
    target = demo_site.by_kind[kind][1].id
    ledger = tmp_path / "ledger.jsonl"
    messages = _run(demo_site, 120, batch=30, inject=(f"{fault}:{target}@10+100",), ledger=ledger)
    assert _faults(demo_site, messages, now_ms=START_MS + 120_000) == [(target, FAULT_RULE[fault])]
    entries = [orjson.loads(line) for line in ledger.read_bytes().splitlines()]
    assert entries == [
        {
            "device": target,
            "kind": kind,
            "fault": fault,
            "start_ms": START_MS + 10_000,
            "end_ms": START_MS + 110_000,
            "parameters": {},
        }
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pump-dry-run:gate-north", "needs a pump"),
        ("pump-dry-run:nope", "needs a pump"),
        ("boiler-explodes", "unknown fault"),
        ("pump-dry-run@soon", "expected NAME"),
        ("", "expected NAME"),
    ],
)
def test_bad_injections_are_explained(demo_site: Site, text: str, message: str) -> None:
    with pytest.raises(InjectionError, match=message):
        parse_injection(text, demo_site)
