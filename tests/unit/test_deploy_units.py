"""The systemd units of deploy/systemd: every ExecStart is a command line our CLI accepts and,
with the production settings file, resolves to the settings the unit means; the hardening
options are there; and, where systemd-analyze runs (Debian's systemd package: CI installs it),
`systemd-analyze verify` accepts each unit and `systemd-analyze security` rates it OK."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import ApiSettings
from facility.errors import SettingsError
from gateway.leadership import ShardSettings
from runtime.cli import build_parser, load_settings
from runtime.settings.resolve import Resolved, read_config_file
from runtime.settings.tree import (
    COMMAND_SECTIONS,
    SECTIONS,
    GatewaySettings,
    HttpSettings,
    SimulateSettings,
)
from tests.services import find_binary
from tests.systemd_units import Unit, UnitFileError, expand, read_unit

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
PRODUCTION_TOML = ROOT / "deploy" / "facility.production.toml"
INSTALLED_FACILITY = "/opt/facility/.venv/bin/facility"
INSTALLED_CONFIG = "/etc/facility/facility.toml"
SECRETS = {"FACILITY_API_SECRET": "s" * 40, "FACILITY_MQTT_PASSWORD": "p" * 20}
"""What /etc/facility/facility.env holds (never in the settings file)."""
MAX_EXPOSURE = 2.0
"""`systemd-analyze security` rates 0-10, lower is safer; up to 2 it calls a service OK."""

INSTANCES = {
    "facility-gateway@.service": "main",
    "facility-api@.service": "8001",
    "facility-simulator.service": None,
}
HARDENING = {
    "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "PrivateUsers": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "User": "facility",
}  # fmt: skip


def unit(name: str) -> Unit:
    return read_unit(UNITS / name, INSTANCES[name])


def test_every_shipped_unit_is_checked_here() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(INSTANCES)


def started(u: Unit) -> tuple[Resolved, str]:
    """What the unit's ExecStart runs: the settings it resolves (from the production settings
    file, the unit's environment and the secrets file) and the command's name."""
    argv = shlex.split(u.value("Service", "ExecStart"))
    assert argv[0] == INSTALLED_FACILITY
    env = dict(SECRETS)
    for assignment in u.values("Service", "Environment"):
        key, _, value = assignment.partition("=")
        env[key] = value
    assert env.pop("FACILITY_CONFIG") == INSTALLED_CONFIG
    env["FACILITY_CONFIG"] = str(PRODUCTION_TOML)
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:  # argparse said why on stderr
        raise AssertionError(f"{u.name}: the CLI refuses {argv[1:]}") from exc
    return load_settings(args, env), args.func.__name__


def test_the_gateway_template_runs_a_standby_gateway_per_shard() -> None:
    u = unit("facility-gateway@.service")
    settings, command = started(u)
    assert command == "cmd_gateway"
    shard = settings.get(ShardSettings)
    assert (shard.name, shard.standby) == ("main", True)
    gateway = settings.get(GatewaySettings)
    assert gateway.client_id == "facility-gateway-main"
    state = Path("/var/lib") / u.value("Service", "StateDirectory")
    assert gateway.spool_dir.parent == gateway.dead_letters.parent == state
    assert u.values("Service", "EnvironmentFile") == [
        "/etc/facility/facility.env",
        "-/etc/facility/gateway-main.env",
    ]
    assert u.value("Service", "Restart") == "always"


def test_the_api_template_serves_one_replica_per_port_behind_the_proxy() -> None:
    u = unit("facility-api@.service")
    settings, command = started(u)
    assert command == "cmd_api"
    assert u.values("Service", "EnvironmentFile")[-1] == "-/etc/facility/api-8001.env"
    http = settings.get(HttpSettings)
    assert (http.host, http.port) == ("127.0.0.1", 8001)
    api = settings.get(ApiSettings)
    assert api.trusted_proxies == ("127.0.0.1",)
    assert api.cookie_secure


def test_the_simulator_unit_publishes_without_a_terminal_view() -> None:
    settings, command = started(unit("facility-simulator.service"))
    assert command == "cmd_simulate"
    assert settings.get(SimulateSettings).live is False
    assert settings.get(SimulateSettings).client_id == "facility-simulator"


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_each_unit_has_the_hardening_options(name: str) -> None:
    u = unit(name)
    missing = {k: v for k, v in HARDENING.items() if v not in u.values("Service", k)}
    assert missing == {}, f"{name} lacks {missing}"
    assert "@system-service" in u.values("Service", "SystemCallFilter")


def test_the_production_settings_file_has_no_unknown_key_and_serves_each_command() -> None:
    tables = read_config_file(PRODUCTION_TOML)  # an unknown section or key raises
    assert set(tables) <= set(SECTIONS)
    for argv in (["gateway"], ["api"], ["simulate"], ["db", "upgrade"], ["users", "list"]):
        args = build_parser().parse_args(argv)
        settings = load_settings(args, {**SECRETS, "FACILITY_CONFIG": str(PRODUCTION_TOML)})
        for section in COMMAND_SECTIONS[args.sections]:
            for key in tables.get(section, {}):
                assert settings.source(f"{section}.{key}") == f"file {PRODUCTION_TOML}"


def test_a_misspelt_key_in_a_settings_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "facility.toml"
    bad.write_text(PRODUCTION_TOML.read_text().replace("trusted_proxies", "trusted_proxy"))
    with pytest.raises(SettingsError, match="unknown setting 'trusted_proxy' in \\[api\\]"):
        read_config_file(bad)


def test_the_unit_reader_refuses_what_systemd_would(tmp_path: Path) -> None:
    broken = tmp_path / "x.service"
    broken.write_text("[Service]\nExecStart=/bin/true \\\n")
    with pytest.raises(UnitFileError, match="continued line"):
        read_unit(broken)
    broken.write_text("[Service]\nnot a setting\n")
    with pytest.raises(UnitFileError, match="not a setting"):
        read_unit(broken)
    with pytest.raises(UnitFileError, match="%n"):
        expand("facility-%n", "main")
    assert expand("100%% of %i", "main") == "100% of main"


def _analyzable_copy(tmp_path: Path, name: str) -> Path:
    """The unit with its ExecStart program made one that exists here (verify checks that it
    is executable), named as the instance systemd would load."""
    text = (UNITS / name).read_text().replace(INSTALLED_FACILITY, sys.executable)
    assert sys.executable in text
    (tmp_path / name).write_text(text)
    instance = INSTANCES[name]
    if instance is None:
        return tmp_path / name
    linked = tmp_path / name.replace("@.", f"@{instance}.")
    linked.symlink_to(tmp_path / name)
    return linked


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_systemd_analyze_verifies_each_unit_and_rates_it_ok(tmp_path: Path, name: str) -> None:
    analyze = find_binary("systemd-analyze")
    path = _analyzable_copy(tmp_path, name)
    verify = subprocess.run(
        [analyze, "verify", f"./{path.name}"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    # verify exits 0 on unknown keys and bad values too, only saying so: any word is a failure.
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", f"./{path.name}"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert found is not None, security.stdout + security.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, security.stdout


def test_a_unit_systemd_would_warn_about_fails_the_check(tmp_path: Path) -> None:
    """The verify check above can fail: a misspelt option makes systemd-analyze speak."""
    analyze = find_binary("systemd-analyze")
    path = _analyzable_copy(tmp_path, "facility-simulator.service")
    path.write_text(path.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    verify = subprocess.run(
        [analyze, "verify", f"./{path.name}"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert "Unknown key 'ProtectHomes'" in verify.stdout + verify.stderr
