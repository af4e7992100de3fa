"""Only real devices can speak: per-device accounts and ACLs on a real Mosquitto.

The files come from the `facility devices` commands; the broker is started on a free loopback
port with them (`allow_anonymous false`, `password_file`, `acl_file`; or a TLS listener with
`require_certificate` and `use_identity_as_username`). Device A may publish on its own
telemetry topic and nowhere else; the gateway's account may read and never publish; nobody
connects without a secret or a certificate; a rotated secret stops working when the broker
reloads. End to end, a real gateway with its read-only account stores A's own reading and
neither stores nor raises a work order for A's forgery on B's topic.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from facility.wire import encode_readings, telemetry_topic
from gateway.mqtt import MqttConsumer, MqttSettings
from mqtt.identity import GATEWAY_USER, SIMULATOR_USER
from runtime.cli import main
from tests.integration.gateway_process import GatewayProcess
from tests.integration.helpers import wait_for
from tests.integration.mqtt_probe import WAIT_S, Client
from tests.services import ServiceProcess, find_binary, start_mosquitto

pytestmark = pytest.mark.integration

SITE_ID = "idtest"
SITE = f"""\
[site]
id = "{SITE_ID}"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "b1-u1"
devices = [
  {{ id = "el-a", kind = "elevator" }},
  {{ id = "el-b", kind = "elevator" }},
]
"""
TOPIC_A = telemetry_topic(SITE_ID, "b1", "elevator", "el-a")
TOPIC_B = telemetry_topic(SITE_ID, "b1", "elevator", "el-b")
NOT_AUTHORIZED = 0x87


def _elevator(ts_ms: int, seq: int, *, trapped: bool) -> dict[str, bool | int | float]:
    """A whole elevator reading: at rest at a landing, or stuck between floors with the
    alarm button pressed and the doors shut (what `elevator.entrapment` looks for)."""
    return {
        "ts": ts_ms, "seq": seq, "running": False, "direction": 0, "floor": 3,
        "level_error_mm": 900.0 if trapped else 2.0, "speed_mps": 0.0, "door_state": 0,
        "door_open_time_s": 4.0, "door_reopen_count": 0, "load_kg": 80.0,
        "motor_current_a": 0.0, "motor_temp_c": 31.0, "vibration_mm_s": 0.1,
        "alarm_button": trapped, "alarm_test_ok": True, "fault_code": 0,
    }  # fmt: skip


def _forgery(start_ms: int) -> bytes:
    """Twenty seconds of a trapped passenger: enough for the rule's `for = 5s` many times."""
    return encode_readings([_elevator(start_ms + i * 1000, i, trapped=True) for i in range(20)])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Clients a test opened, closed at its end."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def _open(opened: list[Client], client: Client) -> Client:
    opened.append(client)
    return client


# -- the generated files, and brokers that use them ------------------------------------------


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    return path


def _secrets(directory: Path) -> dict[str, str]:
    with (directory / "credentials.csv").open(encoding="utf-8", newline="") as file:
        return {row["username"]: row["password"] for row in csv.DictReader(file)}


@pytest.fixture
def credentials(tmp_path: Path, site_file: Path) -> Path:
    """`facility devices credentials`, with the development account for the control case."""
    out = tmp_path / "credentials"
    args = ["devices", "credentials", "--site", str(site_file), "--out", str(out)]
    assert main([*args, "--simulator-account"]) == 0
    return out


@pytest.fixture
def broker(tmp_path: Path, credentials: Path) -> Iterator[ServiceProcess]:
    find_binary("mosquitto", "/usr/sbin/mosquitto")
    service = start_mosquitto(
        tmp_path / "mosquitto",
        allow_anonymous=False,
        extra=f"password_file {credentials / 'passwd'}\nacl_file {credentials / 'acl'}\n",
    )
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def certificates(tmp_path: Path, site_file: Path) -> Path:
    find_binary("openssl", "/usr/bin/openssl")
    out = tmp_path / "certs"
    assert main(["devices", "certs", "--site", str(site_file), "--out", str(out)]) == 0
    return out


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: Path) -> Iterator[ServiceProcess]:
    find_binary("mosquitto", "/usr/sbin/mosquitto")
    service = start_mosquitto(
        tmp_path / "mosquitto-tls",
        listener=(
            f"cafile {certificates / 'ca.crt'}\ncertfile {certificates / 'server.crt'}\n"
            f"keyfile {certificates / 'server.key'}\nrequire_certificate true\n"
            f"use_identity_as_username true\ncrlfile {certificates / 'crl.pem'}\n"
        ),
        allow_anonymous=False,
        extra=f"acl_file {certificates / 'acl'}\n",
    )
    try:
        yield service
    finally:
        service.stop()


# -- passwords and the ACL -------------------------------------------------------------------


def test_a_device_may_publish_on_its_own_topic_and_not_on_another_devices(
    broker: ServiceProcess, credentials: Path, clients: list[Client]
) -> None:
    secrets = _secrets(credentials)
    gateway = _open(clients, Client(broker.port, GATEWAY_USER, secrets[GATEWAY_USER]))
    assert gateway.connect() == "accepted"
    assert not gateway.subscribe(f"facility/v1/{SITE_ID}/+/+/+/telemetry").is_failure
    device_a = _open(clients, Client(broker.port, "el-a", secrets["el-a"]))
    assert device_a.connect() == "accepted"

    forged = device_a.publish(TOPIC_B, _forgery(_now_ms() - 30_000))
    own = device_a.publish(TOPIC_A, encode_readings([_elevator(_now_ms(), 0, trapped=False)]))

    assert forged.value == NOT_AUTHORIZED, forged
    assert not own.is_failure, own
    # The broker forwards one connection's messages in order: had the forgery been taken,
    # the gateway's account would have received it before A's own reading.
    received = gateway.wait_received(1)
    assert [topic for topic, _ in received] == [TOPIC_A]


def test_nobody_connects_without_a_valid_secret(
    broker: ServiceProcess, credentials: Path, clients: list[Client]
) -> None:
    assert _open(clients, Client(broker.port)).connect().startswith("CONNACK Not authorized")
    wrong = _open(clients, Client(broker.port, "el-a", "not-the-secret"))
    assert wrong.connect().startswith("CONNACK")
    # B's secret does not make anyone A.
    swapped = _open(clients, Client(broker.port, "el-a", _secrets(credentials)["el-b"]))
    assert swapped.connect().startswith("CONNACK")
    unknown = _open(clients, Client(broker.port, "el-z", _secrets(credentials)["el-b"]))
    assert unknown.connect().startswith("CONNACK")


def test_the_gateway_account_reads_but_cannot_publish(
    broker: ServiceProcess, credentials: Path, clients: list[Client]
) -> None:
    gateway = _open(clients, Client(broker.port, GATEWAY_USER, _secrets(credentials)[GATEWAY_USER]))
    assert gateway.connect() == "accepted"
    refused = gateway.publish(TOPIC_B, _forgery(_now_ms() - 30_000))
    assert refused.value == NOT_AUTHORIZED, refused


def test_a_rotated_secret_stops_working_when_the_broker_reloads(
    broker: ServiceProcess, credentials: Path, clients: list[Client]
) -> None:
    old = _secrets(credentials)["el-a"]
    assert main(["devices", "rotate", "el-a", "--out", str(credentials)]) == 0
    new = _secrets(credentials)["el-a"]
    assert new != old
    # Until the reload the broker holds the old password file.
    held = _open(clients, Client(broker.port, "el-a", old))
    assert held.connect() == "accepted"

    broker.reload()  # SIGHUP to the broker this test started

    # Mosquitto checks the clients already connected against the files it reloaded: the
    # connection opened with the old secret is closed too.
    wait_for(lambda: held.closed, bool, timeout_s=WAIT_S, what="the old connection to close")

    wait_for(
        lambda: _open(clients, Client(broker.port, "el-a", old)).connect(),
        lambda result: result.startswith("CONNACK"),
        timeout_s=WAIT_S,
        what="the broker to refuse the old secret after SIGHUP",
    )
    device = _open(clients, Client(broker.port, "el-a", new))
    assert device.connect() == "accepted"
    reading = encode_readings([_elevator(_now_ms(), 0, trapped=False)])
    assert not device.publish(TOPIC_A, reading).is_failure
    # Nothing else changed: B still logs in with its secret.
    assert _open(clients, Client(broker.port, "el-b", _secrets(credentials)["el-b"])).connect() == (
        "accepted"
    )


# -- end to end: a real gateway with its read-only account -----------------------------------


class Gateway(GatewayProcess):
    """`facility gateway` on SQLite stores, logged in as the gateway account."""

    def __init__(self, tmp_path: Path, site_file: Path, port: int, password: str) -> None:
        self.telemetry = tmp_path / "telemetry.sqlite3"
        self.orders = tmp_path / "facility.sqlite3"
        super().__init__(
            tmp_path, site_file, port, 0, "",
            "--mqtt-username", GATEWAY_USER, "--mqtt-password", password,
            "--mqtt-client-id", "identity-gateway",
            store_args=("--store", "sqlite", "--sqlite-path", str(self.telemetry)),
        )  # fmt: skip

    def readings(self, device: str) -> int:
        try:
            with sqlite3.connect(self.telemetry) as db:
                (count,) = db.execute(
                    "SELECT count(*) FROM ts_elevator WHERE device = ?", (device,)
                ).fetchone()
        except sqlite3.OperationalError:  # no table yet: nothing stored
            return 0
        return int(count)

    def work_orders(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.orders) as db:
            rows = db.execute("SELECT device_id, rule_id FROM work_orders").fetchall()
        return [(str(device), str(rule)) for device, rule in rows]


def test_a_forgery_on_another_devices_topic_stores_nothing_and_opens_no_order(
    tmp_path: Path,
    site_file: Path,
    broker: ServiceProcess,
    credentials: Path,
    clients: list[Client],
) -> None:
    secrets = _secrets(credentials)
    gateway = Gateway(tmp_path, site_file, broker.port, secrets[GATEWAY_USER])
    try:
        device_a = _open(clients, Client(broker.port, "el-a", secrets["el-a"]))
        assert device_a.connect() == "accepted"
        start = _now_ms() - 40_000
        forged = device_a.publish(TOPIC_B, _forgery(start))
        own = device_a.publish(TOPIC_A, encode_readings([_elevator(_now_ms(), 0, trapped=False)]))
        assert forged.value == NOT_AUTHORIZED, forged
        assert not own.is_failure, own

        # A's own reading went through the gateway (stored, rules run, acked) ...
        wait_for(lambda: gateway.readings("el-a"), lambda n: n == 1, timeout_s=30,
                 what="device A's own reading in the store")  # fmt: skip
        # ... and the forgery it sent first never reached it.
        assert gateway.readings("el-b") == 0
        assert gateway.work_orders() == []

        # The control: the same forgery from an account allowed to write B's topic (the
        # development simulator account) does open the order. So the check above could fail.
        simulator = _open(clients, Client(broker.port, SIMULATOR_USER, secrets[SIMULATOR_USER]))
        assert simulator.connect() == "accepted"
        assert not simulator.publish(TOPIC_B, _forgery(start)).is_failure
        orders = wait_for(gateway.work_orders, bool, timeout_s=30,
                          what="the control forgery's work order")  # fmt: skip
        assert orders == [("el-b", "elevator.entrapment")]
    finally:
        code = gateway.stop()
    assert code == 0, gateway.log.read_text(errors="replace")[-3000:]


# -- mutual TLS ------------------------------------------------------------------------------


def _tls(certs: Path, account: str | None) -> tuple[Path, Path | None, Path | None]:
    if account is None:
        return certs / "ca.crt", None, None
    return (
        certs / "ca.crt",
        certs / "clients" / f"{account}.crt",
        certs / "clients" / f"{account}.key",
    )


def test_mtls_a_device_certificate_writes_only_its_own_topic(
    tls_broker: ServiceProcess, certificates: Path, clients: list[Client]
) -> None:
    device_a = _open(clients, Client(tls_broker.port, tls=_tls(certificates, "el-a")))
    assert device_a.connect() == "accepted"
    forged = device_a.publish(TOPIC_B, _forgery(_now_ms() - 30_000))
    assert forged.value == NOT_AUTHORIZED, forged
    reading = encode_readings([_elevator(_now_ms(), 0, trapped=False)])
    assert not device_a.publish(TOPIC_A, reading).is_failure

    gateway = _open(clients, Client(tls_broker.port, tls=_tls(certificates, GATEWAY_USER)))
    assert gateway.connect() == "accepted"
    assert gateway.publish(TOPIC_A, b"{}").value == NOT_AUTHORIZED


def test_mtls_without_a_client_certificate_nobody_connects(
    tls_broker: ServiceProcess, certificates: Path, clients: list[Client]
) -> None:
    result = _open(clients, Client(tls_broker.port, tls=_tls(certificates, None))).connect()
    # TLS 1.2 fails the handshake; with TLS 1.3 the broker drops the connection right after.
    assert result == "closed" or result.startswith("refused:"), result
    # A password does not replace the certificate either.
    with_password = _open(
        clients, Client(tls_broker.port, "el-a", "anything", tls=_tls(certificates, None))
    )
    assert with_password.connect() != "accepted"


def test_mtls_a_revoked_certificate_is_refused_once_the_broker_reloads(
    tls_broker: ServiceProcess, certificates: Path, site_file: Path, clients: list[Client]
) -> None:
    """A stolen car controller: its certificate is revoked (`facility devices revoke`); after
    the reload its handshake fails, B's goes on, and A's new certificate connects."""
    stolen = tuple(p.read_bytes() for p in _tls(certificates, "el-a")[1:] if p is not None)
    assert main(["devices", "revoke", "el-a", "--out", str(certificates)]) == 0
    thief_dir = certificates.parent / "stolen"
    thief_dir.mkdir()
    (thief_dir / "el-a.crt").write_bytes(stolen[0])
    (thief_dir / "el-a.key").write_bytes(stolen[1])
    thief = (certificates / "ca.crt", thief_dir / "el-a.crt", thief_dir / "el-a.key")
    # Until the reload the broker holds the list it started with.
    assert _open(clients, Client(tls_broker.port, tls=thief)).connect() == "accepted"

    tls_broker.reload()  # SIGHUP to the broker this test started

    wait_for(
        lambda: _open(clients, Client(tls_broker.port, tls=thief)).connect(),
        lambda result: result != "accepted",
        timeout_s=WAIT_S,
        what="the broker to refuse the revoked certificate after SIGHUP",
    )
    device_b = _open(clients, Client(tls_broker.port, tls=_tls(certificates, "el-b")))
    assert device_b.connect() == "accepted"
    # The real car gets a new certificate (the next `devices certs` run) and is back.
    assert main(["devices", "certs", "--site", str(site_file), "--out", str(certificates)]) == 0
    tls_broker.reload()  # (not needed for a new certificate; as an operator would)

    def fresh_a() -> tuple[Client, str]:
        client = _open(clients, Client(tls_broker.port, tls=_tls(certificates, "el-a")))
        return client, client.connect()

    device_a, _ = wait_for(fresh_a, lambda tried: tried[1] == "accepted", timeout_s=WAIT_S,
                           what="A's new certificate to connect")  # fmt: skip
    reading = encode_readings([_elevator(_now_ms(), 0, trapped=False)])
    assert not device_a.publish(TOPIC_A, reading).is_failure


def test_mtls_the_gateways_consumer_logs_in_with_its_certificate(
    tls_broker: ServiceProcess, certificates: Path, clients: list[Client]
) -> None:
    """The gateway's own client (mqtt.make_client with cert_file / key_file) on the mTLS
    broker: it receives A's reading and not A's forgery on B's topic."""
    ca, cert, key = _tls(certificates, GATEWAY_USER)
    consumer = MqttConsumer(
        MqttSettings(
            port=tls_broker.port, client_id="identity-consumer", tls=True, ca_file=str(ca),
            cert_file=str(cert), key_file=str(key), reconnect_max_s=2,
        ),
        f"facility/v1/{SITE_ID}/+/+/+/telemetry",
    )  # fmt: skip
    consumer.start()
    try:
        consumer.wait_connected(WAIT_S)
        device_a = _open(clients, Client(tls_broker.port, tls=_tls(certificates, "el-a")))
        assert device_a.connect() == "accepted"
        assert device_a.publish(TOPIC_B, _forgery(_now_ms() - 30_000)).value == NOT_AUTHORIZED
        own = encode_readings([_elevator(_now_ms(), 7, trapped=False)])
        assert not device_a.publish(TOPIC_A, own).is_failure
        taken = consumer.take(10, timeout_s=WAIT_S)
        # In order: a forgery taken by the broker would have come first.
        assert [(m.topic, m.payload) for m in taken] == [(TOPIC_A, own)]
        assert orjson.loads(taken[0].payload)["readings"][0]["seq"] == 7
        consumer.ack(taken)
    finally:
        consumer.stop()
