"""What each `facility` command does, given its parsed arguments and resolved settings.

The long-running commands put services together and run them through one ServiceStack; the
one-shot commands call the package that owns the job. Nothing here holds business logic.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping

import orjson

from alerts.maintenance.settings import MaintenanceSettings
from api.settings import ApiSettings
from db.engine import make_engine
from facility.portfolio import load_sites
from facility.site import Site
from gateway.decoder import DecoderLimits
from gateway.pipeline import PipelineSettings
from ingest.delivery import DeliverySettings
from ingest.registry import open_history
from ingest.settings import StoreSettings
from runtime.lifecycle import ServiceStack, stop_on_signals
from runtime.ports import Listen, check_ports
from runtime.settings.resolve import Resolved
from runtime.settings.tree import (
    DatabaseSettings,
    DemoSettings,
    GatewaySettings,
    HttpSettings,
    MqttSettings,
    SimulateSettings,
    SiteSettings,
)

log = logging.getLogger("facility")


def _listen(settings: Resolved, name: str, host: str, port: int, what: str) -> Listen:
    return Listen(host, port, settings.option(name), what)


def _site(settings: Resolved) -> Site:
    return load_sites(settings.get(SiteSettings).file)


def _api_settings(settings: Resolved, *, warn: bool = True) -> ApiSettings:
    if warn and settings.source("api.secret") == "default":
        log.warning(
            "no api.secret (--api-secret, FACILITY_API_SECRET): using a random one; tokens "
            "and report codes will not survive a restart"
        )
    return settings.get(ApiSettings)


# -- long-running commands -------------------------------------------------------------------


def cmd_gateway(_args: argparse.Namespace, settings: Resolved) -> int:
    from alerts.notify.relay import RelaySettings
    from gateway.leadership import ShardSettings
    from runtime.services.gateway import GatewayConfig, GatewayService

    gateway = settings.get(GatewaySettings)
    check_ports(
        [
            _listen(
                settings, "gateway.metrics_port", gateway.metrics_host, gateway.metrics_port,
                "gateway's /metrics and /health",
            )
        ]
    )  # fmt: skip
    config = GatewayConfig(
        gateway=gateway,
        mqtt=settings.get(MqttSettings),
        store=settings.get(StoreSettings),
        db_url=settings.get(DatabaseSettings).url,
        decoder=settings.get(DecoderLimits),
        pipeline=settings.get(PipelineSettings),
        delivery=settings.get(DeliverySettings),
        notify=settings.get(RelaySettings),
        shard=settings.get(ShardSettings),
    )
    service = GatewayService(config, _site(settings))
    stop = stop_on_signals()
    with ServiceStack() as services:
        services.start(service)
        service.run(stop)
    return 0


def cmd_api(_args: argparse.Namespace, settings: Resolved) -> int:
    from runtime.services.api import ApiService

    http = settings.get(HttpSettings)
    check_ports([_listen(settings, "http.port", http.host, http.port, "API and dashboard")])
    api = _api_settings(settings)
    site = _site(settings)
    service = ApiService.for_database(
        site,
        settings.get(DatabaseSettings).url,
        api,
        http,
        history=open_history(site, settings.get(StoreSettings)),  # charts from the store
        maintenance=settings.get(MaintenanceSettings),
    )
    stop = stop_on_signals()
    with ServiceStack() as services:
        services.callback(service.store.engine.dispose)
        services.start(service)
        service.run(stop)
    return 0


def cmd_simulate(_args: argparse.Namespace, settings: Resolved) -> int:
    from runtime.services.simulator import SimulatorService, fleet, publisher_settings

    sim = settings.get(SimulateSettings)
    if sim.devices:
        from simulators.portfolio import generate_site, site_toml

        site = generate_site(sim.devices)
        if sim.write_site is not None:
            sim.write_site.write_text(site_toml(site), encoding="utf-8")
    else:
        site = _site(settings)
    publisher = publisher_settings(settings.get(MqttSettings), sim)
    service = SimulatorService(fleet(site, sim), publisher)
    stop = stop_on_signals()
    live = sys.stderr.isatty() if sim.live is None else sim.live
    with ServiceStack() as services:
        services.start(service)
        if live:
            from simulators.live import LiveView

            with LiveView(service.simulator):
                service.run(stop)
        else:
            service.run(stop)
    assert service.summary is not None
    print(orjson.dumps(service.summary.as_dict()).decode())
    return 0


def cmd_up(_args: argparse.Namespace, settings: Resolved) -> int:
    from runtime.services.up import UpService

    demo = settings.get(DemoSettings)
    http = settings.get(HttpSettings)
    gateway = settings.get(GatewaySettings)
    check_ports(
        [
            _listen(settings, "http.port", http.host, http.port, "dashboard"),
            _listen(settings, "demo.broker_port", "127.0.0.1", demo.broker_port,
                    "embedded MQTT broker"),
            _listen(settings, "gateway.metrics_port", gateway.metrics_host,
                    gateway.metrics_port, "gateway's /metrics and /health"),
        ]
    )  # fmt: skip
    up = UpService(_site(settings), settings)
    stop = stop_on_signals()
    with ServiceStack() as services:
        services.start(up)
        up.announce()
        up.run(stop)
    return 0


# -- one-shot commands -----------------------------------------------------------------------


def _site_summary(site: Site) -> str:
    counts = ", ".join(f"{len(v)} {k}" for k, v in site.by_kind.items())
    units = sum(len(b.units) for b in site.buildings)
    return f"{len(site.buildings)} buildings, {units} units, {counts}"


def cmd_site_check(args: argparse.Namespace, _settings: Resolved) -> int:
    """One line per site; a directory (a portfolio): one per site file, and the total."""
    site = load_sites(args.file)
    for part in site.sites:
        print(f"{args.file}: site {part.id!r}: {_site_summary(part)}")
    if site.scoped:
        print(f"{args.file}: {len(site.sites)} sites: {_site_summary(site)}")
    return 0


def cmd_rules_check(args: argparse.Namespace, _settings: Resolved) -> int:
    from alerts.engine import RuleEngine
    from alerts.rule_file import load_rule_file

    rule_set = load_rule_file(args.file)
    if args.site is not None:
        RuleEngine.from_rule_set(load_sites(args.site), rule_set)  # site parameters must be known
    kinds = sorted({r.kind for r in rule_set.rules})
    print(
        f"{args.file}: {len(rule_set.rules)} rules for {', '.join(kinds)}; "
        f"{len(rule_set.params)} parameters"
    )
    return 0


def cmd_rules_backtest(args: argparse.Namespace, settings: Resolved) -> int:
    from alerts.backtest import run_command

    lines = run_command(
        site_path=settings.get(SiteSettings).file,
        rules_path=args.rules,
        store=settings.get(StoreSettings),
        start=args.start,
        end=args.end,
    )
    print("\n".join(lines))
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Resolved) -> int:
    from db.migrate import current_revision, migrate

    engine = make_engine(settings.get(DatabaseSettings).url)
    try:
        before = current_revision(engine)
        migrate(engine, args.revision)
        print(f"{engine.url.render_as_string()}: {before or 'empty'} -> {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def _print_counts(counts: Mapping[str, int]) -> None:
    for name, rows in counts.items():
        print(f"{name}: {rows}")


def cmd_db_scope_ids(args: argparse.Namespace, settings: Resolved) -> int:
    from db.id_scope import scope_ids
    from db.migrate import migrate

    engine = make_engine(settings.get(DatabaseSettings).url)
    try:
        migrate(engine)
        result = scope_ids(engine, args.scope_site)
    finally:
        engine.dispose()
    _print_counts(result.rows)
    print(
        f"{engine.url.render_as_string()}: {result.total} stored ids of site "
        f"{result.site_id!r} scoped ({result.site_id}:id); already scoped ones left alone"
    )
    if args.scope_sqlite is not None:
        from ingest.sqlite_store import scope_device_ids

        changed = scope_device_ids(args.scope_sqlite, result.site_id)
        _print_counts(changed)
        print(f"{args.scope_sqlite}: {sum(changed.values())} readings' device ids scoped")
    return 0


def cmd_devices_credentials(args: argparse.Namespace, settings: Resolved) -> int:
    from mqtt.identity.accounts import ACL_FILE, PASSWORD_FILE, SECRETS_FILE, issue_credentials

    report = issue_credentials(_site(settings), args.out, simulator=args.simulator_account)
    out = report.out
    print(
        f"{out}: {report.accounts} MQTT accounts ({len(report.added)} new, "
        f"{len(report.removed)} removed); secrets in {out / SECRETS_FILE} (mode 0600), "
        f"broker files {out / PASSWORD_FILE} (password_file) and {out / ACL_FILE} (acl_file)"
    )
    if args.simulator_account:
        print("the facility.simulator account may publish for every device: development only")
    if report.added or report.removed:
        print("reload the broker to apply them (Mosquitto: kill -HUP <pid>)")
    return 0


def cmd_devices_rotate(args: argparse.Namespace, _settings: Resolved) -> int:
    from mqtt.identity.accounts import PASSWORD_FILE, SECRETS_FILE, rotate_credential

    credential = rotate_credential(args.out, args.username)
    print(
        f"{credential.account.username}: new secret in {args.out / SECRETS_FILE} and "
        f"{args.out / PASSWORD_FILE}; the old one works until the broker reloads "
        "(Mosquitto: kill -HUP <pid>)"
    )
    return 0


def cmd_devices_certs(args: argparse.Namespace, settings: Resolved) -> int:
    from mqtt.identity.certs import DEFAULT_SERVER_NAMES, issue_certs

    report = issue_certs(
        _site(settings),
        args.out,
        simulator=args.simulator_account,
        days=args.days,
        server_names=[*DEFAULT_SERVER_NAMES, *args.server_name],
    )
    issued = len(report.issued)
    print(
        f"{report.out}: {issued} certificates issued, {report.kept} kept; CA {report.out}/ca.crt, "
        f"broker {report.out}/server.crt, clients in {report.out}/clients/, acl_file "
        f"{report.out}/acl, crlfile {report.out}/crl.pem"
    )
    return 0


def cmd_devices_revoke(args: argparse.Namespace, _settings: Resolved) -> int:
    from mqtt.identity.revocation import revoke

    done = revoke(args.out, args.username)
    print(
        f"{done.name}: certificate {done.serial} revoked (kept as {done.kept_as}, its key "
        f"deleted); {done.crl} lists {done.listed} revoked certificate(s)\n"
        "reload the broker to refuse it (Mosquitto: kill -HUP <pid>, with crlfile "
        f"{done.crl}); a connection it has open stays until it closes: restart the broker to "
        "end it now\n"
        f"`facility devices certs` issues {done.name} a new certificate while it is in the site"
    )
    return 0


def cmd_mqtt_forget_session(args: argparse.Namespace, settings: Resolved) -> int:
    from gateway.mqtt import MqttSettings as ClientSettings
    from mqtt.session import forget_session

    gateway = settings.get(GatewaySettings)
    if settings.source("gateway.client_id") == "default":
        log.warning("no --mqtt-client-id: forgetting the default id %r", gateway.client_id)
    options = ClientSettings(**settings.get(MqttSettings).connection(), protocol=gateway.protocol)
    print(forget_session(options, gateway.client_id, gateway.protocol).describe())
    return 0


def cmd_config_show(args: argparse.Namespace, settings: Resolved) -> int:
    from runtime.settings.show import render_settings

    print(render_settings(settings, command=args.for_command))
    return 0
