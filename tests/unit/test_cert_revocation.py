"""`facility devices revoke`: a device's client certificate put on the revocation list the
broker checks (crl.pem, signed by the directory's CA), moved out of the clients' directory with
its key deleted, and issued anew by the next `facility devices certs`; bad input is one line.
The broker's side (a revoked certificate's handshake refused after SIGHUP) is in
tests/integration/test_device_identity.py."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from runtime.cli import main
from tests.unit.test_device_credentials import small_site_file

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=True)
    return done.stdout


def _serial(cert: Path) -> str:
    return _openssl("x509", "-in", str(cert), "-noout", "-serial").strip().removeprefix("serial=")


def _listed(crl: Path, ca: Path) -> list[str]:
    """The serials the list names, after checking its signature against the CA."""
    text = _openssl("crl", "-in", str(crl), "-CAfile", str(ca), "-noout", "-text")
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.strip().startswith("Serial Number:")]  # fmt: skip


def _verifies(out: Path, cert: Path) -> bool:
    """What the broker decides with `crlfile`: the chain and the list, checked together."""
    done = subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(out / "ca.crt"),
         "-CRLfile", str(out / "crl.pem"), str(cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@pytest.fixture
def certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    small_site_file(tmp_path, "p1", "p2")  # site.toml
    monkeypatch.chdir(tmp_path)  # a relative --out, as an operator types it
    assert main(["devices", "certs", "--site", "site.toml", "--out", "certs"]) == 0
    return tmp_path / "certs"


def test_certs_start_with_an_empty_list_every_client_passes(certs: Path) -> None:
    assert _listed(certs / "crl.pem", certs / "ca.crt") == []
    assert _verifies(certs, certs / "clients" / "p1.crt")
    assert _verifies(certs, certs / "clients" / "p2.crt")


def test_a_revoked_certificate_is_listed_and_fails_the_check_its_neighbour_passes(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = certs / "clients" / "p1.crt"
    serial = _serial(old)
    kept = certs / "revoked" / f"p1-{serial}.crt"
    assert main(["devices", "revoke", "p1", "--out", "certs"]) == 0
    printed = capsys.readouterr().out
    assert f"p1: certificate {serial} revoked" in printed
    assert "lists 1 revoked certificate(s)" in printed
    assert "kill -HUP" in printed
    assert _listed(certs / "crl.pem", certs / "ca.crt") == [serial]
    assert not old.exists()
    assert not (certs / "clients" / "p1.key").exists()
    assert kept.exists()
    assert not _verifies(certs, kept)  # "certificate revoked"
    assert _verifies(certs, certs / "clients" / "p2.crt")

    # The device stays in the site: the next run issues it a new pair, which passes.
    assert main(["devices", "certs", "--site", "site.toml", "--out", "certs"]) == 0
    assert "1 certificates issued" in capsys.readouterr().out
    assert _serial(old) != serial
    assert _verifies(certs, old)
    second = _serial(certs / "clients" / "p2.crt")
    assert main(["devices", "revoke", "p2", "--out", "certs"]) == 0
    assert sorted(_listed(certs / "crl.pem", certs / "ca.crt")) == sorted([serial, second])
    assert _verifies(certs, old)  # the new p1 still passes


def test_the_list_is_valid_as_long_as_the_ca(certs: Path) -> None:
    """A list past its "next update" fails every client's check: it must not lapse first."""

    def when(text: str) -> datetime:
        return datetime.strptime(text.split("=", 1)[1].strip(), "%b %d %H:%M:%S %Y %Z")

    ca_end = when(_openssl("x509", "-in", str(certs / "ca.crt"), "-noout", "-enddate"))
    crl_end = when(_openssl("crl", "-in", str(certs / "crl.pem"), "-noout", "-nextupdate"))
    assert ca_end <= crl_end < ca_end + timedelta(days=1)


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_bad_input_is_one_line_and_exit_2(
    certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(capsys, ["devices", "revoke", "p9", "--out", "certs"], "no certificate of 'p9'")
    _fails(capsys, ["devices", "revoke", "../ca", "--out", "certs"], "cannot be a certificate")
    _fails(capsys, ["devices", "revoke", "p1", "--out", str(tmp_path / "none")], "ca.crt: missing")
    (certs / "ca.key").rename(tmp_path / "ca.key.elsewhere")  # the CA's key kept off this host
    _fails(capsys, ["devices", "revoke", "p1", "--out", "certs"], "ca.key: missing")
    assert (certs / "clients" / "p1.crt").exists()  # nothing was changed
    with pytest.raises(SystemExit) as usage:  # --out is required
        main(["devices", "revoke", "p1"])
    assert usage.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_a_revoke_that_stopped_half_way_is_finished_by_running_it_again(certs: Path) -> None:
    """openssl recorded the revocation, then the run died before the list and the move."""
    cert = certs / "clients" / "p1.crt"
    serial = _serial(cert)
    state = certs / "ca-state"
    _openssl("ca", "-config", str(state / "ca.cnf"), "-revoke", str(cert),
             "-keyfile", str(certs / "ca.key"), "-cert", str(certs / "ca.crt"))  # fmt: skip
    assert _listed(certs / "crl.pem", certs / "ca.crt") == []  # not on the list yet

    assert main(["devices", "revoke", "p1", "--out", "certs"]) == 0

    assert _listed(certs / "crl.pem", certs / "ca.crt") == [serial]
    assert not cert.exists()


def test_a_new_ca_starts_a_new_empty_list_it_signs(certs: Path) -> None:
    """The old CA's list names no certificate of the new one and is not signed by it: a broker
    given both would refuse every client."""
    assert main(["devices", "revoke", "p1", "--out", "certs"]) == 0
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        (certs / name).unlink()
    shutil.rmtree(certs / "clients")

    assert main(["devices", "certs", "--site", "site.toml", "--out", "certs"]) == 0

    assert _listed(certs / "crl.pem", certs / "ca.crt") == []  # signed by the new CA
    assert _verifies(certs, certs / "clients" / "p1.crt")
    assert _verifies(certs, certs / "clients" / "p2.crt")
