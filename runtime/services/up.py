"""`facility up`: everything in one process on embedded defaults, for the demo.

An in-process MQTT broker, the gateway with SQLite stores under the demo's var dir, the
simulated site and the dashboard, started in that order and stopped in reverse.
"""

from __future__ import annotations

import dataclasses
import threading

from alerts.maintenance.settings import MaintenanceSettings
from alerts.notify.relay import RelaySettings
from api.settings import ApiSettings
from api.users_cli import DemoUsers, ensure_demo_users
from facility.site import Site
from gateway.decoder import DecoderLimits
from gateway.embedded_broker import EmbeddedBroker
from gateway.pipeline import PipelineSettings
from ingest.delivery import DeliverySettings
from ingest.registry import open_history
from ingest.settings import StoreSettings
from runtime.lifecycle import ServiceStack
from runtime.services.api import ApiService
from runtime.services.gateway import GatewayConfig, GatewayService
from runtime.services.simulator import SimulatorService, fleet, publisher_settings
from runtime.settings.resolve import Resolved
from runtime.settings.tree import (
    DemoSettings,
    GatewaySettings,
    HttpSettings,
    MqttSettings,
    SimulateSettings,
)


class UpService:
    def __init__(self, site: Site, settings: Resolved) -> None:
        self.site = site
        self.demo = demo = settings.get(DemoSettings)
        self.http = settings.get(HttpSettings)
        self.api_settings: ApiSettings = settings.get(ApiSettings)
        self.maintenance = settings.get(MaintenanceSettings)
        var = demo.var_dir
        var.mkdir(parents=True, exist_ok=True)
        self.telemetry = var / "telemetry.sqlite3"
        sim = settings.get(SimulateSettings)
        self.simulator = fleet(site, sim)  # a bad --inject stops here, before anything runs
        mqtt = MqttSettings(port=demo.broker_port)
        gateway = dataclasses.replace(
            settings.get(GatewaySettings),
            client_id="facility-up-gateway",
            protocol="3.1.1",  # the embedded broker speaks MQTT 3.1.1
            rules_state=var / "rules-state.npz",
            dead_letters=var / "dead-letters.jsonl",
            spool_dir=var / "spool",
            broker_stats=False,  # amqtt publishes none of Mosquitto's $SYS figures
        )
        self.config = GatewayConfig(
            gateway=gateway,
            mqtt=mqtt,
            store=StoreSettings(kind="sqlite", sqlite_path=self.telemetry),
            db_url=f"sqlite:///{var / 'facility.sqlite3'}",
            decoder=settings.get(DecoderLimits),
            pipeline=settings.get(PipelineSettings),
            delivery=settings.get(DeliverySettings),
            notify=settings.get(RelaySettings),
        )
        self.publisher = publisher_settings(mqtt, sim, client_id="facility-up-simulator")
        self.logins = DemoUsers([], [])
        self._stack = ServiceStack()
        self._threads: list[threading.Thread] = []
        self.gateway: GatewayService | None = None
        self.api: ApiService | None = None
        self._sim_service: SimulatorService | None = None

    def start(self) -> None:
        stack = self._stack
        try:
            stack.start(EmbeddedBroker("127.0.0.1", self.demo.broker_port))
            self.gateway = GatewayService(self.config, self.site)
            stack.start(self.gateway)
            self.gateway.consumer.wait_connected(15.0)
            self.logins = ensure_demo_users(
                self.gateway.store.engine, self.site, self.demo.password
            )
            self._sim_service = SimulatorService(self.simulator, self.publisher)
            stack.start(self._sim_service)
            self.api = ApiService(
                self.site,
                self.gateway.store,
                self.api_settings,
                self.http,
                history=open_history(self.site, self.config.store),
                log_level="warning",
                maintenance=self.maintenance,
            )
            stack.start(self.api)
        except BaseException:
            stack.close()
            raise

    def _sites_words(self) -> str:
        if not self.site.scoped:
            return f"site {self.site.id!r}"
        return f"{len(self.site.sites)} sites ({', '.join(s.id for s in self.site.sites)})"

    def announce(self) -> None:
        url = f"http://{self.http.host}:{self.http.port}"
        print(
            f"Facility Monitor is up: {self._sites_words()}, {len(self.site.devices)} simulated "
            f"devices\n  dashboard  {url}/\n  API        {url}/docs\n"
            f"  MQTT       127.0.0.1:{self.demo.broker_port} (embedded broker: loopback only, "
            "anonymous, for the demo)\n"
            + self._metrics_line()
            + f"  data       {self.demo.var_dir}/\n"
            + "".join(
                f"  login      {u.username} / {u.password}  ({u.note})\n"
                for u in self.logins.created
            )
            + self._kept_line()
            + "Ctrl-C stops everything.",
            flush=True,
        )

    def _kept_line(self) -> str:
        if not self.logins.kept:
            return ""
        return (
            f"  logins     {', '.join(self.logins.kept)}: existing accounts, passwords "
            "unchanged (facility users passwd NAME sets one)\n"
        )

    def _metrics_line(self) -> str:
        gateway = self.config.gateway
        if not gateway.metrics_port:
            return ""
        return f"  metrics    http://{gateway.metrics_host}:{gateway.metrics_port}/metrics\n"

    def run(self, stop: threading.Event) -> None:
        assert self.gateway is not None
        assert self._sim_service is not None
        assert self.api is not None
        for name, target in (("gateway", self.gateway.run), ("simulator", self._sim_service.run)):
            thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self.api.run(stop)
        finally:
            stop.set()
            for thread in self._threads:
                thread.join(timeout=10)

    def stop(self) -> None:
        self._stack.close()
