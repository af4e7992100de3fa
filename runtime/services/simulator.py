"""The simulator service: a fleet of simulated devices publishing over MQTT."""

from __future__ import annotations

import threading

from facility.site import Site
from runtime.settings.tree import MqttSettings, SimulateSettings
from simulators.injection import Ledger, parse_injection
from simulators.publisher import MqttPublisher, PublisherSettings
from simulators.runner import FleetSimulator, SimulationSettings, SimulationSummary
from simulators.scenario import load_scenario


def fleet(site: Site, settings: SimulateSettings) -> FleetSimulator:
    """The simulated fleet with its injected faults (a bad injection fails here, at start)."""
    injections = []
    if settings.scenario is not None:
        injections += load_scenario(settings.scenario, site, seed=settings.seed)
    injections += [parse_injection(text, site, seed=settings.seed) for text in settings.inject]
    return FleetSimulator(
        site,
        SimulationSettings(
            rate_hz=settings.rate_hz,
            speed=settings.speed,
            duration_s=settings.duration_s,
            start_ms=settings.start_ms,
            seed=settings.seed,
            readings_per_message=settings.batch,
        ),
        injections,
        Ledger(settings.ledger),
    )


def publisher_settings(
    mqtt: MqttSettings, settings: SimulateSettings, *, client_id: str | None = None
) -> PublisherSettings:
    return PublisherSettings(
        **mqtt.connection(),
        client_id=client_id or settings.client_id,
        qos=int(settings.qos),
        protocol=settings.protocol,
        reconnect_min_s=mqtt.reconnect_min_s,
        reconnect_max_s=mqtt.reconnect_max_s,
    )


class SimulatorService:
    def __init__(self, simulator: FleetSimulator, publisher: PublisherSettings) -> None:
        self.simulator = simulator
        self.publisher = MqttPublisher(publisher)
        self.summary: SimulationSummary | None = None

    def start(self) -> None:
        self.publisher.connect()

    def run(self, stop: threading.Event) -> None:
        self.summary = self.simulator.run(self.publisher, stop)

    def stop(self) -> None:
        self.publisher.close()
