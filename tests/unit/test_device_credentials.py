"""`facility devices`: the password file, the ACL, the secrets file, rotation and bad input,
without a broker (tests/integration/test_device_identity.py runs them on Mosquitto)."""

from __future__ import annotations

import base64
import csv
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from facility.site import Site, load_site
from facility.wire import telemetry_topic
from gateway.embedded_broker import EmbeddedBroker
from gateway.errors import GatewayError
from gateway.mqtt import MqttSettings
from mqtt import MqttConnectError, make_client
from mqtt.identity import GATEWAY_USER, SIMULATOR_USER, IdentityError
from mqtt.identity.accounts import issue_credentials, read_secrets, rotate_credential
from mqtt.identity.acl import render_acl, site_accounts
from mqtt.identity.passwords import (
    hash_password,
    parse_password_file,
    render_password_file,
    verify_password,
)
from runtime.cli import main
from runtime.settings.tree import MqttSettings as MqttSection
from simulators.publisher import PublisherSettings
from tests.conftest import DEMO_SITE

MOSQUITTO_LINE = (
    "dev1:$7$101$9PFFommP4SHMXy5y$yF1N77o3SyUKJZAUIH+Mo6GDn6lEbANhQAGoRBNBnBWNksGPdyP4qXGIs1iq"
    "Xb4ipj8aEasKOuTZM7NS+Figkw=="
)
"""What `mosquitto_passwd -b FILE dev1 secret` (Mosquitto 2.0.11) wrote."""
HASH = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")
SMALL_SITE = """\
[site]
id = "s1"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "b1-u1"
devices = [
{devices}
]
"""


def small_site_file(tmp_path: Path, *device_ids: str) -> Path:
    """Site s1: building b1, unit b1-u1, these pumps (also the revocation tests' site)."""
    path = tmp_path / "site.toml"
    rows = ",\n".join(f'  {{ id = "{d}", kind = "pump" }}' for d in device_ids)
    path.write_text(SMALL_SITE.format(devices=rows), encoding="utf-8")
    return path


def _secrets(out: Path) -> dict[str, str]:
    return {name: c.password for name, c in read_secrets(out / "credentials.csv").items()}


def _passwd(out: Path) -> dict[str, str]:
    return parse_password_file((out / "passwd").read_text(encoding="utf-8"))


# -- the password file -----------------------------------------------------------------------


def test_a_hash_mosquitto_wrote_verifies_and_ours_has_its_shape() -> None:
    username, hashed = MOSQUITTO_LINE.split(":", 1)
    assert parse_password_file(MOSQUITTO_LINE + "\n") == {username: hashed}
    assert verify_password("secret", hashed)
    assert not verify_password("Secret", hashed)
    ours = hash_password("secret")
    assert HASH.match(ours)
    assert verify_password("secret", ours)
    assert ours != hash_password("secret")  # a new salt every time
    salt = base64.b64decode(hashed.split("$")[3])  # the salt of Mosquitto's line
    assert hash_password("secret", salt=salt) == hashed


@pytest.mark.parametrize("damaged", ["", "$6$abc$def", "$7$x$aa$bb", "$7$101$!!$??", "plain"])
def test_a_damaged_hash_verifies_nothing(damaged: str) -> None:
    assert not verify_password("secret", damaged)


def test_the_password_file_refuses_names_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot be an MQTT account name"):
        render_password_file({"a:b": hash_password("x")})


# -- the ACL ---------------------------------------------------------------------------------


def _acl_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for line in text.splitlines():
        if line.startswith("user "):
            user = line.removeprefix("user ")
            assert user not in blocks, f"{user} twice"
            blocks[user] = []
        elif line.startswith(("topic ", "pattern ")):
            assert user is not None, f"{line!r} applies to anonymous clients"
            blocks[user].append(line)
    return blocks


def test_each_device_may_write_only_its_own_topic_and_the_gateway_only_read(
    demo_site: Site,
) -> None:
    blocks = _acl_blocks(render_acl(demo_site.id, site_accounts(demo_site)))
    assert len(blocks) == len(demo_site.devices) + 1
    assert blocks.pop(GATEWAY_USER) == [
        "topic read facility/v1/shangri-la/#",
        "topic read $SYS/broker/#",  # the broker's own figures, for the gateway's /metrics
    ]
    for device in demo_site.devices:
        topic = telemetry_topic(demo_site.id, device.building_id, device.kind, device.id)
        assert blocks[device.id] == [f"topic write {topic}"]
    assert blocks.keys() == {d.id for d in demo_site.devices}  # no simulator unless asked


def test_the_simulator_account_is_there_only_when_asked_for(demo_site: Site) -> None:
    blocks = _acl_blocks(render_acl(demo_site.id, site_accounts(demo_site, simulator=True)))
    assert blocks[SIMULATOR_USER] == ["topic write facility/v1/shangri-la/+/+/+/telemetry"]


# -- the credentials directory ---------------------------------------------------------------


def test_credentials_cover_every_account_with_private_secrets(tmp_path: Path) -> None:
    site = load_site(small_site_file(tmp_path, "p1", "p2"))
    out = tmp_path / "out"
    report = issue_credentials(site, out)
    assert report.added == (GATEWAY_USER, "p1", "p2")
    assert stat.S_IMODE((out / "credentials.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "passwd").stat().st_mode) == 0o640
    with (out / "credentials.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["username"], r["role"], r["topic"]) for r in rows] == [
        (GATEWAY_USER, "gateway", "facility/v1/s1/#"),
        ("p1", "device", "facility/v1/s1/b1/pump/p1/telemetry"),
        ("p2", "device", "facility/v1/s1/b1/pump/p2/telemetry"),
    ]
    secrets, hashes = _secrets(out), _passwd(out)
    assert len(set(secrets.values())) == 3
    assert all(len(secret) >= 32 for secret in secrets.values())
    assert hashes.keys() == secrets.keys()
    assert all(verify_password(secrets[n], hashes[n]) for n in secrets)
    assert all(HASH.match(h) for h in hashes.values())


def test_running_again_keeps_secrets_adds_new_devices_and_drops_removed_ones(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    issue_credentials(load_site(small_site_file(tmp_path, "p1", "p2")), out)
    before = {name: (out / name).read_bytes() for name in ("credentials.csv", "passwd", "acl")}
    secrets = _secrets(out)

    again = issue_credentials(load_site(small_site_file(tmp_path, "p1", "p2")), out)
    assert (again.added, again.removed) == ((), ())
    assert {n: (out / n).read_bytes() for n in before} == before  # byte for byte

    grown = issue_credentials(load_site(small_site_file(tmp_path, "p1", "p3")), out)
    assert (grown.added, grown.removed) == (("p3",), ("p2",))
    now = _secrets(out)
    assert now.keys() == {GATEWAY_USER, "p1", "p3"}
    assert {n: now[n] for n in (GATEWAY_USER, "p1")} == {
        n: secrets[n] for n in (GATEWAY_USER, "p1")
    }
    assert "p2" not in _passwd(out)
    assert "user p2" not in (out / "acl").read_text(encoding="utf-8")


def test_rotation_replaces_one_secret_and_its_password_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    issue_credentials(load_site(small_site_file(tmp_path, "p1", "p2")), out)
    secrets, hashes = _secrets(out), _passwd(out)

    rotated = rotate_credential(out, "p1")

    new_secrets, new_hashes = _secrets(out), _passwd(out)
    assert rotated.password == new_secrets["p1"] != secrets["p1"]
    assert verify_password(new_secrets["p1"], new_hashes["p1"])
    assert not verify_password(secrets["p1"], new_hashes["p1"])
    unchanged = {GATEWAY_USER, "p2"}
    assert {n: new_secrets[n] for n in unchanged} == {n: secrets[n] for n in unchanged}
    assert {n: new_hashes[n] for n in unchanged} == {n: hashes[n] for n in unchanged}
    assert stat.S_IMODE((out / "credentials.csv").stat().st_mode) == 0o600


def test_rotating_an_unknown_account_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(IdentityError, match="no such file"):
        rotate_credential(out, "p1")
    issue_credentials(load_site(small_site_file(tmp_path, "p1")), out)
    with pytest.raises(IdentityError, match="no account 'p9'"):
        rotate_credential(out, "p9")


# -- the command: one clear line and exit 2 on bad input -------------------------------------


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("facility: error: ")
    assert message in err
    assert "Traceback" not in err


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = str(small_site_file(tmp_path, "p1"))
    out = tmp_path / "out"
    _fails(capsys, ["devices", "credentials", "--site", str(tmp_path / "none.toml"),
                    "--out", str(out)], "none.toml: no such file")  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _fails(capsys, ["devices", "credentials", "--site", site, "--out", str(blocker / "x")],
           "cannot create the directory")  # fmt: skip
    _fails(capsys, ["devices", "credentials", "--site", site, "--out", str(blocker)],
           "not a directory")  # fmt: skip
    _fails(capsys, ["devices", "rotate", "p1", "--out", str(out)], "no such file")
    assert main(["devices", "credentials", "--site", site, "--out", str(out)]) == 0
    assert "2 MQTT accounts (2 new, 0 removed)" in capsys.readouterr().out  # gateway, p1
    _fails(capsys, ["devices", "rotate", "p9", "--out", str(out)], "no account 'p9'")
    (out / "credentials.csv").write_text("user,secret\np1,x\n")
    _fails(capsys, ["devices", "credentials", "--site", site, "--out", str(out)],
           "credentials.csv:1: not a credentials file")  # fmt: skip


def test_the_command_reports_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["devices", "credentials", "--site", str(DEMO_SITE), "--out", str(out)]
    assert main(argv) == 0
    assert "129 MQTT accounts (129 new, 0 removed)" in capsys.readouterr().out
    assert main([*argv, "--simulator-account"]) == 0
    printed = capsys.readouterr().out
    assert "130 MQTT accounts (1 new, 0 removed)" in printed
    assert "development only" in printed
    assert main(["devices", "rotate", "b03-u1-el2", "--out", str(out)]) == 0
    assert "kill -HUP" in capsys.readouterr().out


# -- certificates ----------------------------------------------------------------------------


def _subject(cert: Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "RFC2253"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().removeprefix("subject=")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_certificates_name_each_account_and_are_kept_on_a_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    argv = ["devices", "certs", "--site", str(small_site_file(tmp_path, "p1")), "--out", str(out)]
    assert main(argv) == 0
    assert "4 certificates issued, 0 kept" in capsys.readouterr().out  # CA, server, gw, p1
    assert _subject(out / "clients" / "p1.crt") == "CN=p1,O=Facility Monitor"
    assert (
        _subject(out / "clients" / f"{GATEWAY_USER}.crt") == f"CN={GATEWAY_USER},O=Facility Monitor"
    )
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(out / "ca.crt"), str(out / "clients" / "p1.crt"),
         str(out / "server.crt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    san = subprocess.run(
        ["openssl", "x509", "-in", str(out / "server.crt"), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.0.1" in san
    assert "DNS:localhost" in san
    for key in (out / "ca.key", out / "clients" / "p1.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "user p1\ntopic write facility/v1/s1/b1/pump/p1/telemetry" in (out / "acl").read_text()
    ca = (out / "ca.crt").read_bytes()

    assert main([*argv, "--simulator-account"]) == 0
    assert "1 certificates issued, 4 kept" in capsys.readouterr().out
    assert (out / "ca.crt").read_bytes() == ca
    assert _subject(out / "clients" / f"{SIMULATOR_USER}.crt").startswith(f"CN={SIMULATOR_USER},")
    _fails(capsys, [*argv, "--server-name", "bad name!"], "is not a host name or IP address")


# -- client certificates in the MQTT settings ------------------------------------------------


def test_the_client_certificate_settings_reach_the_client(tmp_path: Path) -> None:
    section = MqttSection(tls=True, cert_file=Path("/etc/gw.crt"), key_file=Path("/etc/gw.key"))
    connection = section.connection()
    assert (connection["cert_file"], connection["key_file"]) == ("/etc/gw.crt", "/etc/gw.key")
    assert PublisherSettings(**connection).cert_file == "/etc/gw.crt"
    missing = str(tmp_path / "missing.crt")
    # paho loads the certificate when the client is built: a missing one fails there, named.
    with pytest.raises(MqttConnectError, match="No such file"):
        make_client(MqttSettings(tls=True, cert_file=missing, packet_path="plain"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "broker.internal"])
def test_the_anonymous_demo_broker_stays_on_loopback(host: str) -> None:
    with pytest.raises(GatewayError, match="loopback only"):
        EmbeddedBroker(host, 11883)
    EmbeddedBroker("127.0.0.1", 11883)  # built, not started
