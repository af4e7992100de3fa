"""Hot-standby gateways: two processes for one shard on real Mosquitto, PostgreSQL and InfluxDB.

The leader holds the shard's PostgreSQL advisory lock; killing it (SIGKILL) or cutting its
lock connection (`pg_terminate_backend`) moves the shard to the standby, which resumes the
same MQTT session. Nothing published may be missing from InfluxDB, and each fault episode —
a `for 30s` leak whose timer runs across the failover — is filed exactly once, with the start
the uninterrupted stream would have given it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from facility.site import Site
from tests.integration.helpers import wait_for
from tests.integration.load import Publisher, stream
from tests.integration.shard_gateways import (
    SHARD,
    ShardGateway,
    episodes_by_device,
    leader_of,
    orders_by_device,
    shard_gateways,
    with_leaks,
)
from tests.integration.test_reliability import start_ms_for, wait_for_points
from tests.services import ServiceProcess

pytestmark = pytest.mark.integration

DATABASE = "reliability"  # the name test_reliability's counting helpers read
DEVICES = 100  # the load site: 25 per kind
PER_MESSAGE = 10


@pytest.fixture
def gateways(
    tmp_path: Path,
    site_file: Path,
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    postgres_url: str,
) -> Iterator[list[ShardGateway]]:
    started = shard_gateways(
        tmp_path, site_file, mosquitto.port, influxd.port, DATABASE, postgres_url
    )
    try:
        yield started
    finally:
        for gateway in started:
            if gateway.running:
                gateway.stop()


def messages_before(reading: int) -> int:
    """Messages published before the stream's reading number `reading` (1-based seq) of every
    device: the stream sends each device's messages in turn."""
    return (reading - 1) // PER_MESSAGE * DEVICES


def leak_episodes(site: Site, at_readings: list[int]) -> dict[str, tuple[int, int]]:
    """One leak per failover point, on its own pump: it starts 20 readings (20 s of reading
    time) before the failover, so its `for 30s` timer is running when the leader goes (and
    for 10 readings after)."""
    pumps = [d.id for d in site.by_kind["pump"]]
    return {pumps[n]: (at - 20, at + 100) for n, at in enumerate(at_readings)}


def check_episodes(postgres_url: str, leaks: dict[str, tuple[int, int]], start_ms: int) -> None:
    """Exactly one episode and one work order per leak, started at its first leak reading."""
    expected = {pump: [start_ms + (first - 1) * 1000] for pump, (first, _) in leaks.items()}
    found = wait_for(lambda: episodes_by_device(postgres_url), lambda e: len(e) == len(leaks),
                     timeout_s=30, what="every leak's episode")  # fmt: skip
    assert found == expected
    assert orders_by_device(postgres_url) == dict.fromkeys(leaks, 1)


def test_leader_sigkilled_five_times_loses_nothing_and_files_each_fault_once(
    gateways: list[ShardGateway],
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    postgres_url: str,
    load_site: Site,
) -> None:
    per_device = 650
    start = start_ms_for(per_device)
    kill_at = [100 * (n + 1) for n in range(5)]  # reading numbers: 100, 200, ... 500
    leaks = leak_episodes(load_site, kill_at)
    data = stream(load_site, per_device, PER_MESSAGE, start)
    messages = with_leaks(load_site, data.messages, leaks)
    publisher = Publisher(mosquitto.port)
    holds = [messages_before(reading) for reading in kill_at]
    killed_at: list[int] = []
    try:
        # 2,000 readings a second, ~33 s; publishing waits at each kill point until the leader
        # is killed, so each kill falls inside its leak's `for` timer however slow the machine
        publisher.start(messages, per_second=200, hold_at=holds)
        for reading in kill_at:
            wait_for(publisher.holding.is_set, bool,
                     timeout_s=60, what=f"publishing up to reading {reading}")  # fmt: skip
            leader = leader_of(gateways)
            leader.kill()
            killed_at.append(publisher.published)
            publisher.release()  # the stream flows on while leadership moves
            successor = leader_of(gateways)
            assert successor is not leader
            leader.start()  # back as the new standby
            assert leader.role() == "standby"
        publisher.join()
    finally:
        publisher.close()
    assert killed_at == holds
    wait_for_points(influxd, data.readings_by_kind)
    check_episodes(postgres_url, leaks, start)
    terms = sum(g.metrics().get(f'facility_shard_terms_total{{shard="{SHARD}"}}', 0)
                for g in gateways)  # fmt: skip
    assert terms >= 1  # the restarted processes count their own terms only
    assert sum(g.role() == "leader" for g in gateways) == 1


def _lock_backend(postgres_url: str) -> int:
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            (f"facility-gateway:{SHARD}",),
        ).fetchall()
    pids = [int(r[0]) for r in rows]
    assert len(pids) >= 1, "no lock connection in pg_stat_activity"
    return pids[0]


def _terminate(postgres_url: str, pid: int) -> None:
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def _holder(postgres_url: str) -> int:
    """The backend holding the shard's advisory lock (the leader's lock connection)."""
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
            (f"facility-gateway:{SHARD}",),
        ).fetchall()
    assert len(rows) == 1, f"one holder of the shard's lock expected, found {rows}"
    return int(rows[0][0])


def _fenced(gateway: ShardGateway, times: int) -> dict[str, float]:
    fenced = wait_for(
        gateway.metrics,
        lambda m: m.get(f'facility_shard_fenced_total{{shard="{SHARD}"}}') == times,
        timeout_s=10, what="the leader to fence itself",
    )  # fmt: skip
    assert fenced[f'facility_shard_leader{{shard="{SHARD}"}}'] == 0
    return fenced


def test_leader_whose_lock_connection_is_terminated_fences_itself_and_hands_over(
    gateways: list[ShardGateway],
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    postgres_url: str,
    load_site: Site,
) -> None:
    """The first leader's lock connection is cut; later the second's, so the shard comes back
    to the first process: a second term in one process, on the same MQTT client."""
    per_device = 300
    start = start_ms_for(per_device)
    cuts = [100, 200]
    leaks = leak_episodes(load_site, cuts)
    data = stream(load_site, per_device, PER_MESSAGE, start)
    messages = with_leaks(load_site, data.messages, leaks)
    first = leader_of(gateways)
    second = next(g for g in gateways if g is not first)
    assert _lock_backend(postgres_url) > 0
    publisher = Publisher(mosquitto.port)
    try:
        publisher.start(messages, per_second=200)
        for cut, (old, new) in zip(cuts, [(first, second), (second, first)], strict=True):
            wait_for(lambda: publisher.published, lambda n: n >= messages_before(cut),  # noqa: B023
                     timeout_s=60, what=f"publishing up to reading {cut}")  # fmt: skip
            _terminate(postgres_url, _holder(postgres_url))
            _fenced(old, 1)
            assert leader_of(gateways) is new
            health = old.health()
            assert health is not None
            assert health["mqtt_connected"] is False  # it disconnected and stays away
            assert old.running  # the process lives on, as a standby
        publisher.join()
    finally:
        publisher.close()
    wait_for_points(influxd, data.readings_by_kind)
    check_episodes(postgres_url, leaks, start)
    assert (first.role(), second.role()) == ("leader", "standby")
    terms = first.metrics()[f'facility_shard_terms_total{{shard="{SHARD}"}}']
    assert terms == 2
