"""The `facility` command. Components are imported inside their commands, never at module level.

Every option can also come from the environment (`FACILITY_<OPTION>`, e.g. FACILITY_MQTT_PORT);
an option on the command line wins.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facility.errors import FacilityError

DEFAULT_SITE = "sites/shangri-la.toml"
log = logging.getLogger("facility")


def _env(option: str, default: Any) -> Any:
    return os.environ.get("FACILITY_" + option.upper().replace("-", "_"), default)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _add(parser: argparse.ArgumentParser, option: str, default: Any, **kwargs: Any) -> None:
    """An option whose default can come from FACILITY_<OPTION>."""
    value = _env(option, default)
    if kwargs.get("action") == "store_true" and isinstance(value, str):
        value = value.strip().lower() in ("1", "true", "yes", "on")
    parser.add_argument(f"--{option}", default=value, **kwargs)


def _site_option(parser: argparse.ArgumentParser) -> None:
    _add(parser, "site", DEFAULT_SITE, type=Path, help="site file (TOML)")


def _mqtt_options(parser: argparse.ArgumentParser, *, client_id: str, protocol: str) -> None:
    _add(parser, "mqtt-host", "127.0.0.1", help="MQTT broker host")
    _add(parser, "mqtt-port", 1883, type=_port, help="MQTT broker port")
    _add(parser, "mqtt-client-id", client_id, help="MQTT client id (fixed: the session is kept)")
    _add(parser, "mqtt-protocol", protocol, choices=("5", "3.1.1"), help="MQTT protocol version")
    _add(parser, "mqtt-username", None, help="MQTT username")
    _add(parser, "mqtt-password", None, help="MQTT password")


def _mqtt_connection(args: argparse.Namespace) -> dict[str, Any]:
    """The connection settings `_mqtt_options` collected, as keyword arguments."""
    return {
        "host": args.mqtt_host,
        "port": args.mqtt_port,
        "client_id": args.mqtt_client_id,
        "protocol": args.mqtt_protocol,
        "username": args.mqtt_username,
        "password": args.mqtt_password,
    }


# -- commands --------------------------------------------------------------------------------


def cmd_rules_check(args: argparse.Namespace) -> int:
    from alerts.engine import RuleEngine
    from alerts.rule_file import load_rule_file
    from facility.site import load_site

    rule_set = load_rule_file(args.file)
    if args.site is not None:
        RuleEngine.from_rule_set(load_site(args.site), rule_set)  # site parameters must be known
    kinds = sorted({r.kind for r in rule_set.rules})
    print(
        f"{args.file}: {len(rule_set.rules)} rules for {', '.join(kinds)}; "
        f"{len(rule_set.params)} parameters"
    )
    return 0


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from alerts.backtest import run_command

    lines = run_command(
        site_path=args.site, rules_path=args.rules, sqlite_path=args.sqlite_path,
        start=args.start, end=args.end, influx_url=args.influx_url, influx_db=args.influx_db,
        influx_username=args.influx_username, influx_password=args.influx_password,
    )  # fmt: skip
    print("\n".join(lines))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from db.engine import make_engine
    from db.migrate import current_revision, migrate

    engine = make_engine(args.db_url)
    try:
        before = current_revision(engine)
        migrate(engine, args.revision)
        print(f"{engine.url.render_as_string()}: {before or 'empty'} -> {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def cmd_site_check(args: argparse.Namespace) -> int:
    from facility.site import load_site

    site = load_site(args.file)
    counts = ", ".join(f"{len(v)} {k}" for k, v in site.by_kind.items())
    units = sum(len(b.units) for b in site.buildings)
    print(
        f"{args.file}: site {site.id!r}: {len(site.buildings)} buildings, {units} units, {counts}"
    )
    return 0


def _simulator(args: argparse.Namespace, site: Any) -> Any:
    from facility.errors import SettingsError
    from simulators.faults import Ledger, parse_injection
    from simulators.runner import FleetSimulator, SimulationSettings
    from simulators.scenario import load_scenario

    if args.rate <= 0:
        raise SettingsError("--rate", "must be more than 0 readings per second")
    if args.batch < 1:
        raise SettingsError("--batch", "must be at least 1 reading per message")
    settings = SimulationSettings(
        rate_hz=args.rate,
        speed=args.speed,
        duration_s=args.duration,
        start_ms=args.start_ms,
        seed=args.seed,
        readings_per_message=args.batch,
    )
    injections = []
    if args.scenario is not None:
        injections += load_scenario(args.scenario, site, seed=args.seed)
    injections += [parse_injection(text, site, seed=args.seed) for text in args.inject]
    return FleetSimulator(site, settings, injections, Ledger(args.ledger))


def _add_simulation_options(parser: argparse.ArgumentParser, *, speed: float) -> None:
    _add(parser, "rate", 1.0, type=_positive, help="readings per device per simulated second")
    _add(
        parser,
        "speed",
        speed,
        type=_positive,
        help="simulated seconds per wall second (0 = flat out)",
    )
    _add(parser, "seed", 0, type=int, help="random seed; same seed, same payloads")
    _add(parser, "batch", 1, type=int, help="readings per message (1 = one reading per message)")
    parser.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="FAULT[:TARGET,...][@START[+DURATION]][/PARAM=VALUE...]",
        help="inject a fault, e.g. pump-dry-run:pump-1@10+120 or bearing-wear:10%%@1h+3d "
        "(repeatable; docs/simulators.md lists the faults)",
    )
    _add(parser, "scenario", None, type=Path, help="inject the faults of this scenario file")
    _add(parser, "ledger", None, type=Path, help="write injected faults to this JSONL file")


def cmd_simulate(args: argparse.Namespace) -> int:
    import orjson

    from facility.site import load_site
    from simulators.publisher import MqttPublisher, PublisherSettings

    if args.devices:
        from simulators.portfolio import generate_site, site_toml

        site = generate_site(args.devices)
        if args.write_site is not None:
            args.write_site.write_text(site_toml(site), encoding="utf-8")
    else:
        site = load_site(args.site)
    simulator = _simulator(args, site)
    publisher = MqttPublisher(
        PublisherSettings(
            **_mqtt_connection(args), qos=args.qos, tls=args.mqtt_tls, ca_file=args.mqtt_ca_file
        )
    )
    publisher.connect()
    stop = _stop_on_signals()
    live = sys.stderr.isatty() if args.live is None else args.live
    try:
        if live:
            from simulators.live import LiveView

            with LiveView(simulator):
                summary = simulator.run(publisher, stop)
        else:
            summary = simulator.run(publisher, stop)
    finally:
        publisher.close()
    print(orjson.dumps(summary.as_dict()).decode())
    return 0


class _Pipeline:
    """The gateway's parts wired together: MQTT in; store delivery, rules and work orders out."""

    def __init__(self, args: argparse.Namespace, site: Any, *, db_url: str, mqtt: Any) -> None:
        from alerts.engine import RuleEngine
        from alerts.escalation import EscalationLoop
        from alerts.notify.service import Notifications
        from alerts.rule_file import load_rule_file
        from alerts.rules import default_rule_set
        from alerts.settings import AlertSettings, load_alert_settings
        from alerts.sink import AlertsSink
        from alerts.store import WorkOrderStore
        from db.engine import make_engine
        from facility.clock import now_ms
        from facility.wire import subscription
        from gateway.dead_letters import DeadLetter, JsonlDeadLetters
        from gateway.decoder import Decoder, DecoderLimits
        from gateway.mqtt import MqttConsumer
        from gateway.pipeline import Gateway
        from ingest.delivery import Delivery
        from ingest.spool import Spool

        settings = AlertSettings()
        if args.alerts_config:
            settings = load_alert_settings(args.alerts_config)
        self.store = WorkOrderStore(make_engine(db_url), policy=settings.policy)
        self.store.migrate()
        self.escalation = EscalationLoop(self.store, settings.escalation_interval_s)
        self.notifications = Notifications(settings, site, self.store.engine)
        self.writer = _writer(args, site)
        letters = JsonlDeadLetters(args.dead_letters)

        def dead_letter(rejected: Any) -> None:
            now = now_ms()
            letters.add(
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

        self.delivery = Delivery(
            self.writer,
            Spool(args.spool_dir, max_bytes=args.spool_max_bytes),
            on_rejected=dead_letter,
        )
        alerts = AlertsSink(
            site,
            RuleEngine.from_rule_set(
                site, load_rule_file(args.rules) if args.rules else default_rule_set()
            ),
            self.store,
            checkpoint_path=args.rules_state,
        )
        from alerts.timer import RulesTimer

        self.rules_timer = RulesTimer(alerts)  # offline on a timer; state checkpoints
        limits = DecoderLimits(
            max_payload_bytes=args.max_payload_bytes,
            max_future_skew_s=args.max_future_skew_s,
            max_age_s=args.max_age_s,
        )
        self.gateway = Gateway(Decoder(site, limits), [alerts], letters, durable=self.delivery)
        self.consumer = MqttConsumer(mqtt, subscription(site.id))
        self.status: Any = None
        if args.metrics_port:
            from gateway.status_server import StatusServer

            self.status = StatusServer(
                args.metrics_host, args.metrics_port, metrics=self.metrics, health=self.health
            )

    def metrics(self) -> list[Any]:
        return [
            *self.gateway.metrics.prometheus(),
            *self.delivery.prometheus(),
            *self.notifications.prometheus(),
        ]

    def health(self) -> tuple[bool, dict[str, Any]]:
        store = self.delivery.health()
        connected = self.consumer.connected
        return bool(store["up"]) and connected, {"mqtt_connected": connected, "store": store}

    def start(self) -> None:
        if self.status is not None:
            self.status.start()
        self.delivery.start()
        self.escalation.start()
        self.notifications.start()
        self.consumer.start()
        self.rules_timer.start()

    def run(self, stop: threading.Event) -> None:
        self.gateway.run(self.consumer, stop)

    def stop(self) -> None:
        self.consumer.stop()
        self.rules_timer.stop()
        self.notifications.stop()
        self.escalation.stop()
        self.delivery.stop()
        self.writer.close()
        if self.status is not None:
            self.status.stop()


def _add_gateway_options(parser: argparse.ArgumentParser) -> None:
    _add(parser, "rules", None, type=Path, help="rule file (default: the built-in rule pack)")
    _add(parser, "rules-state", "var/rules-state.npz", type=Path, help="rules engine checkpoint")
    _add(parser, "dead-letters", "var/dead-letters.jsonl", type=Path, help="dead-letter file")
    _add(parser, "spool-dir", "var/spool", type=Path, help="on-disk spool for store outages")
    _add(parser, "spool-max-bytes", 1 << 30, type=int, help="spool cap; oldest dropped beyond")
    _add(parser, "max-payload-bytes", 256 * 1024, type=int, help="larger messages are rejected")
    _add(parser, "max-future-skew-s", 300.0, type=_positive, help="reject readings further ahead")
    _add(parser, "max-age-s", 30 * 86400.0, type=_positive, help="reject readings older than this")
    _add(
        parser, "alerts-config", None, type=Path,
        help="alerts settings: work-order policy, escalation, notifications (docs/operations.md)",
    )  # fmt: skip
    _add(parser, "metrics-host", "127.0.0.1", help="address of /metrics and /health")
    _add(parser, "metrics-port", 9108, type=int, help="port of /metrics and /health (0 = off)")


def cmd_gateway(args: argparse.Namespace) -> int:
    from facility.site import load_site
    from gateway.mqtt import MqttSettings

    site = load_site(args.site)
    mqtt = MqttSettings(
        **_mqtt_connection(args),
        shared_group=args.shared_group,
        tls=args.mqtt_tls,
        ca_file=args.mqtt_ca_file,
        session_expiry_s=args.session_expiry_s,
    )
    pipeline = _Pipeline(args, site, db_url=args.db_url, mqtt=mqtt)
    stop = _stop_on_signals()
    pipeline.start()
    log.info("gateway for site %s started; writing to %s", site.id, pipeline.writer.name)
    try:
        pipeline.run(stop)
    finally:
        pipeline.stop()
    return 0


def _writer(args: argparse.Namespace, site: Any) -> Any:
    if args.store == "influx-v1":
        from ingest.errors import StoreUnavailableError
        from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer

        writer = InfluxV1Writer(
            site,
            InfluxV1Settings(
                url=args.influx_url,
                database=args.influx_db,
                username=args.influx_username,
                password=args.influx_password,
            ),
        )
        try:
            writer.ensure_database()
        except StoreUnavailableError as exc:  # it is created on the first write that needs it
            log.warning("InfluxDB not reachable at start (%s); spooling until it is", exc)
        return writer
    if args.store == "influx-v2":
        from ingest.influx_v2 import InfluxV2Settings, InfluxV2Writer

        return InfluxV2Writer(
            site,
            InfluxV2Settings(
                url=args.influx_url,
                org=args.influx_org,
                bucket=args.influx_bucket,
                token=args.influx_token,
            ),
        )
    from ingest.sqlite_store import SQLiteTimeSeries

    return SQLiteTimeSeries(site, args.sqlite_path)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from alerts.store import WorkOrderStore
    from api.app import create_app
    from api.settings import settings_from_secret
    from db.engine import make_engine
    from facility.site import load_site

    site = load_site(args.site)
    store = WorkOrderStore(make_engine(args.db_url))
    store.migrate()
    history = None
    if args.history_sqlite is not None and Path(args.history_sqlite).exists():
        from ingest.sqlite_history import SQLiteHistory

        history = SQLiteHistory(args.history_sqlite)
    app = create_app(
        site=site, store=store, settings=settings_from_secret(args.api_secret), history=history
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=3)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from facility.site import load_site
    from gateway.embedded_broker import EmbeddedBroker
    from gateway.mqtt import MqttSettings
    from simulators.publisher import MqttPublisher, PublisherSettings

    site = load_site(args.site)
    var: Path = args.var_dir
    var.mkdir(parents=True, exist_ok=True)
    args.dead_letters = var / "dead-letters.jsonl"
    args.spool_dir = var / "spool"
    args.rules_state = var / "rules-state.npz"
    args.store, args.sqlite_path = "sqlite", var / "telemetry.sqlite3"
    simulator = _simulator(args, site)
    broker = EmbeddedBroker("127.0.0.1", args.mqtt_port)
    broker.start()
    pipeline = _Pipeline(
        args,
        site,
        db_url=f"sqlite:///{var / 'facility.sqlite3'}",
        mqtt=MqttSettings(port=args.mqtt_port, protocol="3.1.1", client_id="facility-up-gateway"),
    )
    pipeline.start()
    pipeline.consumer.wait_connected(15.0)
    from api.users_cli import ensure_demo_users

    logins = ensure_demo_users(
        pipeline.store.engine, site, os.environ.get("FACILITY_DEMO_PASSWORD") or None
    )
    stop = _stop_on_signals()  # also what uvicorn re-raises its captured signal into
    publisher = MqttPublisher(
        PublisherSettings(port=args.mqtt_port, client_id="facility-up-simulator", protocol="3.1.1")
    )
    publisher.connect()
    threads = [
        threading.Thread(target=pipeline.run, args=(stop,), name="gateway", daemon=True),
        threading.Thread(
            target=simulator.run, args=(publisher, stop), name="simulator", daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    url = f"http://{args.host}:{args.port}"
    print(
        f"Facility Monitor is up: site {site.id!r}, {len(site.devices)} simulated devices\n"
        f"  dashboard  {url}/\n  API        {url}/docs\n"
        f"  MQTT       127.0.0.1:{args.mqtt_port} (embedded broker)\n  data       {var}/\n"
        + "".join(f"  login      {u.username} / {u.password}  ({u.note})\n" for u in logins)
        + "Ctrl-C stops everything.",
        flush=True,
    )
    try:
        from api.settings import settings_from_secret
        from ingest.sqlite_history import SQLiteHistory

        uvicorn.run(
            create_app(
                site=site,
                store=pipeline.store,
                settings=settings_from_secret(os.environ.get("FACILITY_API_SECRET"), warn=False),
                history=SQLiteHistory(args.sqlite_path),
            ),
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        publisher.close()
        pipeline.stop()
        broker.stop()
    return 0


# -- plumbing --------------------------------------------------------------------------------


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facility", description=__doc__)
    _add(parser, "log-level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    commands = parser.add_subparsers(dest="command", required=True)

    site = commands.add_parser("site", help="site files")
    site_commands = site.add_subparsers(dest="site_command", required=True)
    check = site_commands.add_parser("check", help="validate a site file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_site_check)

    rules = commands.add_parser("rules", help="rule files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    rules_check = rules_commands.add_parser("check", help="validate a rule file")
    rules_check.add_argument("file", type=Path)
    rules_check.add_argument(
        "--site", type=Path, default=None, help="also check the site's parameter overrides"
    )
    rules_check.set_defaults(func=cmd_rules_check)
    backtest = rules_commands.add_parser("backtest", help="replay stored history through rules")
    backtest.add_argument("--from", dest="start", required=True, help="ISO date/time (UTC)")
    backtest.add_argument("--to", dest="end", required=True, help="ISO date/time (UTC)")
    _site_option(backtest)
    _add(backtest, "rules", None, type=Path, help="rule file (default: the built-in pack)")
    _add(backtest, "sqlite-path", "var/telemetry.sqlite3", type=Path, help="embedded store file")
    _add(backtest, "influx-url", None, help="read InfluxDB 1.x at this URL instead of SQLite")
    _add(backtest, "influx-db", "facility", help="InfluxDB database")
    _add(backtest, "influx-username", None, help="InfluxDB user")
    _add(backtest, "influx-password", None, help="InfluxDB password")
    backtest.set_defaults(func=cmd_rules_backtest)

    simulate = commands.add_parser("simulate", help="publish a simulated site's telemetry")
    _site_option(simulate)
    _mqtt_options(simulate, client_id="facility-simulator", protocol="3.1.1")
    _add_simulation_options(simulate, speed=1.0)
    _add(
        simulate,
        "duration",
        None,
        type=_positive,
        help="simulated seconds to run (default: forever)",
    )
    _add(simulate, "start-ms", None, type=int, help="simulated start time, ms since epoch")
    _add(simulate, "qos", 1, type=int, choices=(0, 1), help="MQTT QoS of published messages")
    _add(simulate, "mqtt-tls", False, action="store_true", help="connect to the broker with TLS")
    _add(simulate, "mqtt-ca-file", None, help="CA bundle for --mqtt-tls (default: system CAs)")
    _add(
        simulate,
        "devices",
        0,
        type=int,
        help="simulate a generated portfolio of N devices instead of --site",
    )
    _add(simulate, "write-site", None, type=Path, help="with --devices: write its site file here")
    simulate.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live terminal view on stderr (default: when stderr is a terminal)",
    )
    simulate.set_defaults(func=cmd_simulate)

    gateway = commands.add_parser("gateway", help="consume telemetry, store it, raise work orders")
    _site_option(gateway)
    _mqtt_options(gateway, client_id="facility-gateway", protocol="5")
    _add(gateway, "shared-group", None, help="consume via $share/<group>/... with other gateways")
    _add(gateway, "mqtt-tls", False, action="store_true", help="connect to the broker with TLS")
    _add(gateway, "mqtt-ca-file", None, help="CA bundle for --mqtt-tls (default: system CAs)")
    _add(gateway, "session-expiry-s", 86400, type=int, help="MQTT 5 session expiry")
    _add(
        gateway,
        "store",
        "sqlite",
        choices=("sqlite", "influx-v1", "influx-v2"),
        help="time-series store",
    )
    _add(gateway, "sqlite-path", "var/telemetry.sqlite3", type=Path, help="embedded store file")
    _add(gateway, "influx-url", "http://127.0.0.1:8086", help="InfluxDB 1.x URL")
    _add(gateway, "influx-db", "facility", help="InfluxDB database")
    _add(gateway, "influx-username", None, help="InfluxDB user")
    _add(gateway, "influx-password", None, help="InfluxDB password")
    _add(gateway, "influx-org", "facility", help="InfluxDB 2.x/3.x organisation")
    _add(gateway, "influx-bucket", "facility", help="InfluxDB 2.x/3.x bucket")
    _add(gateway, "influx-token", None, help="InfluxDB 2.x/3.x API token")
    _add(gateway, "db-url", "sqlite:///var/facility.sqlite3", help="work-order database URL")
    _add_gateway_options(gateway)
    gateway.set_defaults(func=cmd_gateway)

    db = commands.add_parser("db", help="the work-order database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="run the schema migrations (Alembic)")
    _add(db_upgrade, "db-url", "sqlite:///var/facility.sqlite3", help="work-order database URL")
    db_upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    db_upgrade.set_defaults(func=cmd_db_upgrade)

    api = commands.add_parser("api", help="serve the API and dashboard")
    _site_option(api)
    _add(api, "db-url", "sqlite:///var/facility.sqlite3", help="work-order database URL")
    _add(api, "host", "127.0.0.1", help="listen address")
    _add(api, "port", 8000, type=_port, help="listen port")
    _add(api, "api-secret", None, help="signs tokens and report codes (same on every replica)")
    _add(api, "history-sqlite", "var/telemetry.sqlite3", type=Path, help="embedded time series")
    api.set_defaults(func=cmd_api)

    from api.users_cli import register as register_users_command

    register_users_command(commands)

    up = commands.add_parser("up", help="run everything in one process on embedded defaults")
    _site_option(up)
    _add(up, "var-dir", "var", type=Path, help="where the embedded stores keep their files")
    _add(up, "host", "127.0.0.1", help="dashboard/API listen address")
    _add(up, "port", 8000, type=_port, help="dashboard/API listen port")
    _add(up, "mqtt-port", 11883, type=_port, help="embedded MQTT broker port")
    _add_simulation_options(up, speed=1.0)
    _add_gateway_options(up)
    up.set_defaults(func=cmd_up, duration=None, start_ms=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The embedded broker logs every connection step, httpx every request.
    for chatty in ("amqtt", "transitions", "httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # `kill -USR1 <pid>` prints every thread's stack: how to see where a stuck process waits.
    with contextlib.suppress(OSError, ValueError):  # stderr is no file (captured, embedded)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except FacilityError as exc:
        print(f"facility: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
