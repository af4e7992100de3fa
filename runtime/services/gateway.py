"""The gateway service: MQTT in; store delivery, rules and work orders out.

Everything is built in `__init__` (so a bad rule or alerts file stops the command before it
connects anywhere), started by `start()` in dependency order and stopped in reverse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.engine import RuleEngine
from alerts.escalation import EscalationLoop
from alerts.notify.relay import RelaySettings
from alerts.notify.service import Notifications
from alerts.rule_file import load_rule_file
from alerts.rules import default_rule_set
from alerts.settings import AlertSettings, load_alert_settings
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.clock import now_ms
from facility.periodic import PeriodicWorker
from facility.prometheus import Metric
from facility.site import Site
from facility.wire import subscription
from gateway.dead_letters import DeadLetter, JsonlDeadLetters
from gateway.decoder import Decoder, DecoderLimits
from gateway.mqtt import MqttConsumer
from gateway.mqtt import MqttSettings as ConsumerSettings
from gateway.pipeline import Gateway, PipelineSettings
from gateway.status_server import StatusServer
from ingest.delivery import Delivery, DeliverySettings
from ingest.interface import RejectedPoints, TimeSeriesWriter
from ingest.registry import open_retention, open_writers
from ingest.settings import StoreSettings
from ingest.spool import Spool
from mqtt.broker_stats import BrokerStats
from runtime.lifecycle import ServiceStack
from runtime.settings.tree import GatewaySettings, MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What one gateway process is made of (the settings tree's sections it reads)."""

    gateway: GatewaySettings
    mqtt: MqttSettings
    store: StoreSettings
    db_url: str
    decoder: DecoderLimits
    pipeline: PipelineSettings
    delivery: DeliverySettings
    notify: RelaySettings


def consumer_settings(config: GatewayConfig) -> ConsumerSettings:
    mqtt, gateway = config.mqtt, config.gateway
    return ConsumerSettings(
        **mqtt.connection(),
        client_id=gateway.client_id,
        protocol=gateway.protocol,
        session_expiry_s=gateway.session_expiry_s,
        shared_group=gateway.shared_group,
    )


class GatewayService:
    def __init__(self, config: GatewayConfig, site: Site) -> None:
        self.config = config
        self.site = site
        files = config.gateway
        alert_settings = AlertSettings()
        if files.alerts_config is not None:
            alert_settings = load_alert_settings(files.alerts_config)
        self.store = WorkOrderStore(make_engine(config.db_url), policy=alert_settings.policy)
        self.store.migrate()
        self.escalation = EscalationLoop(self.store, alert_settings.escalation_interval_s)
        self.notifications = Notifications(
            alert_settings, site, self.store.engine, relay_settings=config.notify
        )
        self.writers: list[TimeSeriesWriter] = open_writers(site, config.store)
        self.writer = self.writers[0]
        self.letters = JsonlDeadLetters(files.dead_letters)
        self.delivery = Delivery(
            self.writers,
            Spool(
                files.spool_dir,
                max_bytes=files.spool_max_bytes,
                segment_bytes=files.spool_segment_bytes,
                when_full=files.spool_when_full,
            ),
            on_rejected=self._dead_letter,
            settings=config.delivery,
        )
        rule_set = load_rule_file(files.rules) if files.rules else default_rule_set()
        self.alerts = AlertsSink(
            site,
            RuleEngine.from_rule_set(
                site, rule_set, stall_after_s=max(5.0, 3 * files.rules_tick_s)
            ),  # the timer missing 3 ticks: the process was stopped
            self.store,
            checkpoint_path=files.rules_state,
        )
        self.gateway = Gateway(
            Decoder(site, config.decoder),
            [self.alerts],
            self.letters,
            durable=self.delivery,
            settings=config.pipeline,
        )
        self.consumer = MqttConsumer(consumer_settings(config), subscription(site.id))
        self.broker_stats = (
            BrokerStats(consumer_settings(config), f"{files.client_id}-sys")
            if files.broker_stats
            else None
        )  # broker-wide $SYS figures: an orphaned session's queue shows nowhere else
        self.status = (
            StatusServer(
                files.metrics_host, files.metrics_port, metrics=self.metrics, health=self.health
            )
            if files.metrics_port
            else None
        )
        self.workers = [
            PeriodicWorker(
                "rules-timer", files.rules_tick_s, lambda: self.alerts.tick(now_ms())
            ),  # silence is seen with no data arriving
            PeriodicWorker(
                "rules-checkpoint",
                files.rules_checkpoint_s,
                self.alerts.checkpoint,
                on_stop=self.alerts.checkpoint,
            ),
            PeriodicWorker(
                "escalation", alert_settings.escalation_interval_s, self.escalation.run_once
            ),
        ]
        retention = open_retention(self.writer, config.store)
        if retention is not None:  # the embedded store prunes itself; servers have policies
            self.workers.append(
                PeriodicWorker(
                    "telemetry-retention", retention.interval_s, retention.run_once,
                    run_at_start=True,
                )
            )  # fmt: skip
        self._stack = ServiceStack()

    def _dead_letter(self, rejected: Sequence[RejectedPoints]) -> None:
        now = now_ms()
        self.letters.add(
            [
                DeadLetter(
                    now,
                    r.reason,
                    f"store:{self.writer.name}",
                    f"{r.count} point(s): {r.detail}",
                    r.sample,
                )
                for r in rejected
            ]
        )

    def metrics(self) -> list[Metric]:
        return [
            *self.gateway.metrics.prometheus(),
            *self.alerts.prometheus(),
            *self.delivery.prometheus(),
            *self.notifications.prometheus(),
            *(self.broker_stats.prometheus() if self.broker_stats is not None else ()),
        ]

    def health(self) -> tuple[bool, dict[str, Any]]:
        store = self.delivery.health()
        connected = self.consumer.connected
        detail = {"mqtt_connected": connected, "store": store, "rules": self.alerts.health()}
        return bool(store["up"]) and connected, detail

    def start(self) -> None:
        stack = self._stack
        for writer in self.writers:
            stack.callback(writer.close)
        stack.callback(self.store.engine.dispose)
        if self.status is not None:
            stack.start(self.status)
        stack.start(self.delivery)
        stack.start(self.notifications)
        stack.start(self.consumer)
        if self.broker_stats is not None:
            stack.start(self.broker_stats)
        stack.start_all(self.workers)
        log.info("gateway for site %s started; writing to %s", self.site.id, self.writer.name)

    def run(self, stop: threading.Event) -> None:
        self.gateway.run(self.consumer, stop)

    def stop(self) -> None:
        self._stack.close()
