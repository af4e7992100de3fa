"""The runner: determinism, scenario files, gateway-facing faults (bad payloads, power loss,
broker outage), generated portfolios."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from facility.site import parse_site
from facility.wire import parse_topic
from gateway.decoder import Decoder
from simulators.errors import InjectionError, ScenarioError
from simulators.injection import Ledger, parse_injection
from simulators.portfolio import generate_site, site_toml
from simulators.runner import FleetSimulator, SimulationSettings
from simulators.scenario import load_scenario, parse_scenario
from tests.unit.test_sim_faults import SITE, START_MS, ListPublisher

NOW_MS = START_MS + 3_600_000
SCENARIO = """
[scenario]
name = "busy morning"

[[inject]]
fault = "pump-dry-run"
targets = ["pa-1"]
at = "30s"
duration = 60

[[inject]]
fault = "bearing-wear"
targets = "50%"
at = 0
parameters = { rate_per_day = 20 }

[[inject]]
fault = "bad-payloads"
targets = ["b2-door"]
at = 20
parameters = { kinds = "nan,oversized,unknown-device", count = 2 }
"""


def _run(
    seconds: float,
    inject: tuple[str, ...] = (),
    *,
    seed: int = 1,
    batch: int = 1,
    scenario: str = "",
) -> tuple[ListPublisher, FleetSimulator]:
    injections = [parse_injection(text, SITE, seed=seed) for text in inject]
    if scenario:
        injections += parse_scenario(scenario, SITE, "s.toml", seed=seed)
    settings = SimulationSettings(
        speed=0, duration_s=seconds, start_ms=START_MS, seed=seed, readings_per_message=batch
    )
    simulator = FleetSimulator(SITE, settings, injections, Ledger(None), now_ms=NOW_MS)
    publisher = ListPublisher()
    simulator.run(publisher)
    return publisher, simulator


EVERYTHING = (
    "elevator-entrapment:b1-el1@5+20",
    "sensor-flat-line:*@3+30",
    "device-silent:b2@10+5",
    "site-power-loss:b1@40+10",
    "broker-disconnect@50+5",
    "gate-forced-open:2%@1",
)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first, _ = _run(90, EVERYTHING, batch=7, scenario=SCENARIO)
    again, _ = _run(90, EVERYTHING, batch=7, scenario=SCENARIO)
    other, _ = _run(90, EVERYTHING, batch=7, scenario=SCENARIO, seed=2)
    assert first.messages == again.messages
    assert len(first.messages) > 100
    assert first.messages != other.messages


def test_a_scenario_file_injects_what_it_lists(tmp_path: Path) -> None:
    path = tmp_path / "morning.toml"
    path.write_text(SCENARIO)
    injections = load_scenario(path, SITE, seed=1)
    assert [
        (i.fault.name, [d.id for d in i.devices], i.start_s, i.duration_s) for i in injections
    ] == [
        ("pump-dry-run", ["pa-1"], 30.0, 60.0),
        ("bearing-wear", [d.id for d in injections[1].devices], 0.0, None),
        ("bad-payloads", ["b2-door"], 20.0, None),
    ]
    assert len(injections[1].devices) == 2  # half of the 3 elevators, rounded
    assert injections[1].parameters["rate_per_day"] == 20.0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[inject]]\nfault = "pump-melts"\n', 2, "unknown fault 'pump-melts'"),
        (
            '[[inject]]\nfault = "pump-dry-run"\n\n'
            '[[inject]]\nfault = "pump-leak"\ntargets = ["b1-door"]\n',
            6,
            "needs a pump; 'b1-door'",
        ),
        ('[[inject]]\nfault = "pump-leak"\nat = "soon"\n', 3, "'at' must be a time"),
        ('[[inject]]\nfault = "pump-leak"\nduraton = 5\n', 3, "unknown key(s) 'duraton'"),
        (
            '[[inject]]\nfault = "pump-leak"\nparameters = { leak_lph = 3 }\n',
            3,
            "has no parameter 'leak_lph'",
        ),
        ('[[inject]]\nfault = "pump-leak"\nat = 5 5\nduration = 3\n', 3, "not valid TOML"),
        ('[scenario]\nname = "empty"\n', None, "no [[inject]] tables"),
    ],
)
def test_scenario_mistakes_name_the_file_and_line(
    text: str, line: int | None, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, SITE, "bad.toml")
    assert caught.value.line == line
    where = f"bad.toml:{line}: " if line else "bad.toml: "
    assert str(caught.value).startswith(where)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pump-leak:pa-1@5q", "START must be a time"),
        ("pump-leak/leak_m3h=lots", "leak_m3h must be a number"),
        ("pump-leak/colour=red", "has no parameter 'colour'"),
        ("pump-leak:150%", "must be in (0%, 100%]"),
        ("broker-disconnect:pa-1", "takes no target"),
        ("sensor-wire-cut:pa-1/signal=running", "has no analog signal 'running'"),
        ("bad-payloads/kinds=nan,gibberish", "unknown kind(s) gibberish"),
        ("emergency-battery-failure:b1-stair", "needs a lighting; 'b1-stair'"),
    ],
)
def test_bad_injections_are_explained(text: str, message: str) -> None:
    with pytest.raises(InjectionError) as caught:
        parse_injection(text, SITE)
    assert message in str(caught.value)


def test_times_take_units() -> None:
    injection = parse_injection("slow-doors:b1-el1@1.5h+2d/rate_per_day=1", SITE)
    assert (injection.start_s, injection.duration_s) == (5400.0, 172800.0)


def test_the_gateway_rejects_exactly_the_bad_payloads_sent() -> None:
    publisher, simulator = _run(30, ("bad-payloads:b1-door,pa-2@10",), batch=5)
    summary = simulator.summary
    assert summary.bad_messages == 2 * 13
    result = Decoder(SITE).decode(publisher.messages, now_ms=START_MS + 30_000)
    assert result.counts() == summary.bad_payloads
    assert len(result.batch) == summary.readings == 30 * len(SITE.devices)
    assert sum(result.counts().values()) == summary.bad_messages


def test_a_power_loss_silences_the_devices_then_they_reboot() -> None:
    publisher, simulator = _run(60, ("site-power-loss@20+10",))
    seqs: dict[str, list[tuple[int, int]]] = {}
    for topic, payload in publisher.messages:
        parsed = parse_topic(topic)
        assert parsed is not None
        reading = orjson.loads(payload)
        seqs.setdefault(parsed.device, []).append((reading["ts"], reading["seq"]))
    for device in SITE.devices:
        times = [ts for ts, _ in seqs[device.id]]
        assert not any(START_MS + 20_000 <= ts < START_MS + 30_000 for ts in times)
        after = [seq for ts, seq in seqs[device.id] if ts >= START_MS + 30_000]
        assert after == list(range(1, 31))  # rebooted: seq restarts at 1
    assert simulator.summary.reboots == len(SITE.devices)
    assert simulator.summary.readings == 50 * len(SITE.devices)


class SuspendingPublisher(ListPublisher):
    def suspend(self) -> None:
        self.events.append(("suspend", len(self.messages)))

    def resume(self) -> None:
        self.events.append(("resume", len(self.messages)))


def test_a_broker_outage_holds_the_readings_and_sends_them_on_reconnect() -> None:
    settings = SimulationSettings(speed=0, duration_s=60, start_ms=START_MS, seed=1)
    injections = [parse_injection("broker-disconnect@20+15", SITE)]
    publisher = SuspendingPublisher()
    ledger = Ledger(None)
    FleetSimulator(SITE, settings, injections, ledger, now_ms=NOW_MS).run(publisher)
    devices = len(SITE.devices)
    assert publisher.events == [("suspend", 20 * devices), ("resume", 20 * devices)]
    baseline, _ = _run(60)
    assert sorted(publisher.messages) == sorted(baseline.messages)  # nothing lost, seq intact
    assert ledger.entries == [
        {
            "device": None,
            "kind": None,
            "fault": "broker-disconnect",
            "start_ms": START_MS + 20_000,
            "end_ms": START_MS + 35_000,
            "parameters": {},
        }
    ]


def test_a_generated_portfolio_has_exactly_n_devices_and_round_trips_as_a_site_file(
    tmp_path: Path,
) -> None:
    site = generate_site(300)
    assert len(site.devices) == 300
    counts = {k: len(v) for k, v in site.by_kind.items()}
    assert counts == {"elevator": 114, "lighting": 120, "gate": 60, "pump": 6}
    again = parse_site(site_toml(site), tmp_path / "portfolio.toml")
    assert [(d.id, d.kind, d.building_id, d.unit_id, d.kind_index) for d in again.devices] == [
        (d.id, d.kind, d.building_id, d.unit_id, d.kind_index) for d in site.devices
    ]
    assert len(generate_site(10_000).devices) == 10_000
