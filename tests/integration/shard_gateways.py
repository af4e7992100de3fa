"""Two (or more) `facility gateway --standby` processes for one shard, for the failover tests
and `bench/failover.py`: start, find the leader, SIGKILL it, restart it as the new standby."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

from facility.site import Site
from facility.wire import encode_readings
from tests.integration.gateway_process import GatewayProcess, start_together
from tests.integration.helpers import wait_for
from tests.integration.load import Message

SHARD = "test-shard"
CLIENT_ID = "shard-gateway"
LEAK_RULE = "test.leak"
RULES = f"""
[[rules]]
id = "{LEAK_RULE}"
kind = "pump"
when = "leak"
for = "30s"
severity = "critical"
title = "Leak: {{device}}"
"""


class ShardGateway(GatewayProcess):
    """A gateway of the shard: started as a standby, it may or may not become the leader."""

    def wait_started(self) -> None:
        wait_for(self.role, lambda r: r is not None, timeout_s=30,
                 what=f"gateway {self.tmp_path.name} to serve /health")  # fmt: skip

    def role(self) -> str | None:
        health = self.health() if self.running else None
        if health is None:
            return None
        shard = health.get("shard")
        return str(shard["role"]) if isinstance(shard, dict) else None


def shard_gateways(
    tmp_path: Path,
    site_file: Path,
    mqtt_port: int,
    influx_port: int,
    database: str,
    db_url: str,
    count: int = 2,
    extra: Sequence[str] = (),
    poll_s: float = 0.2,
    checkpoint_s: float = 1.0,
) -> list[ShardGateway]:
    """`count` gateways for one shard, started together (whichever takes the shard's lock
    first leads; `leader_of` finds it); returned once one of them leads."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    gateways: list[ShardGateway] = []
    for number in range(1, count + 1):
        work = tmp_path / f"gateway-{number}"
        work.mkdir()
        gateways.append(
            ShardGateway(
                work, site_file, mqtt_port, influx_port, database,
                "--standby", "--shard", SHARD, "--mqtt-client-id", CLIENT_ID,
                "--db-url", db_url, "--rules", str(rules),
                "--rules-checkpoint-s", str(checkpoint_s), "--shard-lock-poll-s", str(poll_s),
                *extra, start=False,
            )
        )  # fmt: skip
    start_together(gateways)
    try:
        leader_of(gateways)
    except BaseException:
        for gateway in gateways:
            gateway.stop()
        raise
    return gateways


def leader_of(gateways: Sequence[ShardGateway], timeout_s: float = 30) -> ShardGateway:
    """The one gateway that reports itself leader (and connected), waiting for one."""
    deadline = time.monotonic() + timeout_s
    while True:
        leaders = [g for g in gateways if g.role() == "leader"]
        if len(leaders) == 1:
            health = leaders[0].health()
            if health is not None and health.get("mqtt_connected") is True:
                return leaders[0]
        assert len(leaders) <= 1, "two gateways of one shard report themselves leader"
        if time.monotonic() > deadline:
            raise AssertionError(f"no leader within {timeout_s:g} s")
        time.sleep(0.05)


def with_leaks(
    site: Site, messages: list[Message], episodes: dict[str, tuple[int, int]]
) -> list[Message]:
    """The stream with `leak` true on pump `device` for readings of seq [first, last)."""
    topics = {
        f"facility/v1/{site.id}/{d.building_id}/pump/{d.id}/telemetry": d.id
        for d in site.by_kind["pump"]
        if d.id in episodes
    }
    out: list[Message] = []
    for topic, payload in messages:
        device = topics.get(topic)
        if device is None:
            out.append((topic, payload))
            continue
        first, last = episodes[device]
        readings = orjson.loads(payload)["readings"]
        for reading in readings:
            reading["leak"] = first <= reading["seq"] < last
        out.append((topic, encode_readings(readings)))
    return out


def episodes_by_device(db_url: str) -> dict[str, list[int]]:
    """Fault episodes of the leak rule filed in the database: their start times per device."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT device_id, started_ms FROM fault_episodes WHERE rule_id = :r"),
                {"r": LEAK_RULE},
            ).all()
    finally:
        engine.dispose()
    found: dict[str, list[int]] = {}
    for device, started in rows:
        found.setdefault(str(device), []).append(int(started))
    return {d: sorted(s) for d, s in found.items()}


def orders_by_device(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT device_id, count(*) FROM work_orders WHERE rule_id = :r"
                    " GROUP BY device_id"
                ),
                {"r": LEAK_RULE},
            ).all()
    finally:
        engine.dispose()
    return {str(d): int(n) for d, n in rows}
