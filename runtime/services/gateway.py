"""The gateway service: MQTT in; store delivery, rules and work orders out.

Everything is built in `__init__` (so a bad rule or alerts file stops the command before it
connects anywhere), started by `start()` in dependency order and stopped in reverse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts import rule_episodes, rule_windows_walked
from alerts.checkpoint_store import RuleCheckpointStore
from alerts.engine import RuleEngine
from alerts.escalation import EscalationLoop
from alerts.notify.relay import RelaySettings
from alerts.notify.service import Notifications
from alerts.rule_file import load_rule_file
from alerts.rules import default_rule_set
from alerts.settings import AlertSettings, load_alert_settings
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from alerts.takeover import take_over
from db.engine import make_engine
from db.id_scope import check_id_scope
from db.leader_lock import PostgresLeaderLock
from facility.clock import now_ms
from facility.errors import SettingsError
from facility.periodic import PeriodicWorker
from facility.prometheus import Metric
from facility.site import Site
from gateway import json_rows
from gateway.dead_letters import DeadLetter, JsonlDeadLetters
from gateway.decoder import Decoder, DecoderLimits
from gateway.leadership import FencedSource, Leadership, ShardSettings, StandbyLoop
from gateway.mqtt import MqttConsumer
from gateway.mqtt import MqttSettings as ConsumerSettings
from gateway.pipeline import Gateway, PipelineSettings
from gateway.shard_site import shard_name, shard_site, shard_topics
from gateway.status_server import StatusServer
from ingest import line_protocol
from ingest.delivery import Delivery, DeliverySettings
from ingest.interface import RejectedPoints, TimeSeriesWriter
from ingest.registry import open_history, open_retention, open_writers
from ingest.settings import StoreSettings
from ingest.spool import Spool
from mqtt import fast
from mqtt.broker_stats import BrokerStats
from runtime.lifecycle import ServiceStack
from runtime.settings.tree import GatewaySettings, MqttSettings

log = logging.getLogger(__name__)


def compiled_parts() -> dict[str, bool]:
    """Which of the gateway's C extensions were built at install (setup.py)."""
    return {
        "decoding": json_rows.COMPILED,
        "line protocol": line_protocol.COMPILED,
        "MQTT packets": fast.COMPILED,
        "rule windows": rule_windows_walked.COMPILED,
        "rule episodes": rule_episodes.COMPILED,
    }


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
    shard: ShardSettings = field(default_factory=ShardSettings)


def consumer_settings(config: GatewayConfig) -> ConsumerSettings:
    mqtt, gateway = config.mqtt, config.gateway
    return ConsumerSettings(
        **mqtt.connection(),
        client_id=gateway.client_id,
        protocol=gateway.protocol,
        session_expiry_s=gateway.session_expiry_s,
        shared_group=gateway.shared_group,
    )


def check_standby(config: GatewayConfig, dialect: str) -> None:
    """Hot standby needs the shard's lock in PostgreSQL and one reader per session."""
    if not config.shard.standby:
        return
    if dialect != "postgresql":
        raise SettingsError(
            "shard-standby",
            f"needs the work-order database on PostgreSQL (db-url postgresql://...), not "
            f"{dialect}: with SQLite run one gateway, without standby",
        )
    if config.gateway.shared_group:
        raise SettingsError("shard-standby", "cannot be combined with shared-group")


class GatewayService:
    def __init__(self, config: GatewayConfig, site: Site) -> None:
        self.config = config
        self.shard = shard_name(config.shard, site)
        whole = site  # notices name any order of the database, not only this shard's
        site = shard_site(config.shard, site)  # a portfolio's estates this shard serves
        self.site = site
        files = config.gateway
        db_engine = make_engine(config.db_url)
        check_standby(config, db_engine.dialect.name)
        self._lock = PostgresLeaderLock(config.db_url, self.shard) if config.shard.standby else None
        self.leadership = None if self._lock is None else Leadership(self.shard, self._lock)
        self._single = Leadership(self.shard, _NoLock())
        self._single.role, self._single.terms = "leader", 1  # no standby: always the active one
        alert_settings = AlertSettings()
        if files.alerts_config is not None:
            alert_settings = load_alert_settings(files.alerts_config)
        self.store = WorkOrderStore(db_engine, policy=alert_settings.policy)
        self.store.migrate()
        # Plain ids under a portfolio (or the reverse) would file orders nobody's scope sees
        # and judge checkpoints of other devices: refuse, naming `facility db scope-ids`.
        check_id_scope(self.store.engine, whole)
        self.escalation = EscalationLoop(self.store, alert_settings.escalation_interval_s)
        self.notifications = Notifications(
            alert_settings, whole, self.store.engine, relay_settings=config.notify
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
        self.checkpoints = (
            RuleCheckpointStore(self.store.engine, self.shard, holder=self._lock.holder)
            if self._lock is not None
            else None
        )  # a standby's rule state comes from the database: the next leader is elsewhere
        self.history = open_history(site, config.store)
        self.replays = 0
        self.replay_failures = 0
        rule_set = load_rule_file(files.rules) if files.rules else default_rule_set()
        self.alerts = AlertsSink(
            site,
            RuleEngine.from_rule_set(
                site, rule_set, stall_after_s=max(5.0, 3 * files.rules_tick_s)
            ),  # the timer missing 3 ticks: the process was stopped
            self.store,
            checkpoint_path=files.rules_state,
            checkpoints=self.checkpoints,
        )
        self.gateway = Gateway(
            Decoder(site, config.decoder),
            [self.alerts],
            self.letters,
            durable=self.delivery,
            settings=config.pipeline,
        )
        self.consumer = MqttConsumer(
            consumer_settings(config),
            shard_topics(config.shard, site),
            may_reconnect=None if self.leadership is None else self.leadership.check,
        )
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
                "rules-timer", files.rules_tick_s, self._when_leader(self._tick)
            ),  # silence is seen with no data arriving
            PeriodicWorker(
                "rules-checkpoint",
                files.rules_checkpoint_s,
                self._when_leader(self.alerts.checkpoint),
                on_stop=self._when_leader(self.alerts.checkpoint),
            ),
            PeriodicWorker(
                "escalation",
                alert_settings.escalation_interval_s,
                self._when_leader(self.escalation.run_once),
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

    def _tick(self) -> None:
        self.alerts.tick(now_ms())

    def _when_leader(self, job: Callable[[], object]) -> Callable[[], None]:
        """A job only the shard's active gateway runs (a standby's rule state is stale)."""

        def run() -> None:
            if self.leadership is None or self.leadership.holds:
                job()

        return run

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
            *self._leadership().prometheus(),
            *self._takeover_metrics(),
        ]

    def _takeover_metrics(self) -> list[Metric]:
        if self.leadership is None:
            return []
        return [
            Metric.single(
                "facility_shard_replayed_readings_total", "counter",
                "Stored readings replayed into the rules on takeovers.", self.replays,
            ),
            Metric.single(
                "facility_shard_replay_failures_total", "counter",
                "Takeovers whose replay from the store failed (rules from the checkpoint).",
                self.replay_failures,
            ),
            Metric.single(
                "facility_shard_checkpoints_fenced_total", "counter",
                "Rule checkpoints not written because the shard's lock was no longer held.",
                self.checkpoints.fenced if self.checkpoints is not None else 0,
            ),
        ]  # fmt: skip

    def _leadership(self) -> Leadership:
        return self.leadership if self.leadership is not None else self._single

    def health(self) -> tuple[bool, dict[str, Any]]:
        """A standby serves when its store is up: it is not meant to be connected."""
        store = self.delivery.health()
        connected = self.consumer.connected
        leader = self.leadership is None or self.leadership.role == "leader"
        detail = {
            "mqtt_connected": connected,
            "store": store,
            "rules": self.alerts.health(),
            "shard": self._leadership().report(),
        }
        return bool(store["up"]) and (connected or not leader), detail

    def start(self) -> None:
        stack = self._stack
        for writer in self.writers:
            stack.callback(writer.close)
        stack.callback(self.store.engine.dispose)
        stack.callback(self.history.close)
        if self.status is not None:
            stack.start(self.status)
        stack.start(self.delivery)
        stack.start(self.notifications)
        if self.leadership is None:
            self._connect()
        else:
            assert self._lock is not None
            stack.callback(self._lock.dispose)
        stack.start_all(self.workers)
        log.info(
            "gateway for shard %s (site %s) started%s; writing to %s", self.shard,
            "+".join(s.id for s in self.site.sites),
            " as a standby" if self.leadership else "", self.writer.name,
        )  # fmt: skip
        missing = [name for name, built in compiled_parts().items() if not built]
        if missing:
            log.warning(
                "built without its C extensions for %s (no C compiler at install): the same "
                "work on the slower Python and numpy paths, about twice the CPU per reading",
                ", ".join(missing),
            )

    def _connect(self) -> None:
        self._stack.start(self.consumer)
        if self.broker_stats is not None:
            self._stack.start(self.broker_stats)

    def run(self, stop: threading.Event) -> None:
        if self.leadership is None:
            self.gateway.run(self.consumer, stop)
            return
        s = self.config.shard
        StandbyLoop(self.leadership, self, poll_s=s.lock_poll_s, check_s=s.lock_check_s).run(stop)

    # -- a leader's term (gateway.leadership.Term) -----------------------------------------

    def take_over(self) -> None:
        """The shard is ours: bring the rules up to date (the shard's checkpoint, then the
        readings stored since it), then connect with the shard's session (the broker
        resumes it and sends what the old leader had not acked)."""
        assert self.checkpoints is not None
        s = self.config.shard
        try:
            replayed = take_over(
                self.alerts, self.checkpoints, self.history, now_ms=now_ms(),
                margin_ms=round(s.replay_margin_s * 1000), max_gap_ms=round(s.replay_max_s * 1000),
            )  # fmt: skip
            self.replays += replayed.readings
            log.info("shard %s: rules brought up to date: %s in %.2f s, %d stored reading(s) "
                     "from %d replayed in %.2f s", self.shard,
                     "checkpoint loaded" if replayed.checkpoint else "no checkpoint yet",
                     replayed.load_s, replayed.readings, replayed.start_ms,
                     replayed.replay_s)  # fmt: skip
        except Exception:  # the store away: serve anyway, with the checkpoint's state
            self.replay_failures += 1
            log.exception("shard %s: stored readings not replayed into the rules", self.shard)
        self.alerts.checkpoint()  # the next takeover starts from here, not from before the gap
        self.consumer.start()
        if self.broker_stats is not None:
            self.broker_stats.start()

    def serve(self, end: threading.Event) -> None:
        assert self.leadership is not None
        self.gateway.run(FencedSource(self.consumer, self.leadership), end)

    def step_down(self) -> None:
        """Disconnect; what was received and not acked goes to the next leader. A term that
        ends by stopping (the lock still ours) checkpoints the rules first."""
        assert self.leadership is not None
        if self.leadership.holds:
            self.alerts.checkpoint()
        self.consumer.stop()
        dropped = self.consumer.drop_pending()
        if self.broker_stats is not None:
            self.broker_stats.stop()
        log.info("shard %s: disconnected from MQTT (%d unhandled message(s) left to the "
                 "broker)", self.shard, dropped)  # fmt: skip

    def stop(self) -> None:
        self._stack.close()


class _NoLock:
    """The lock of a gateway without standby: never asked (its role is fixed)."""

    def try_acquire(self) -> bool:
        return True

    def check(self) -> bool:
        return True

    def release(self) -> None:
        return None
