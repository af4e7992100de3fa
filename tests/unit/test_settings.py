"""The settings tree: each source, their precedence, and bad values naming where they came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.settings import ApiSettings
from facility.errors import SettingsError
from gateway.pipeline import PipelineSettings
from ingest.settings import StoreSettings
from runtime.cli import build_parser, load_settings, main
from runtime.settings.options import attribute_docs
from runtime.settings.resolve import Resolved, read_config_file
from runtime.settings.show import REFERENCE_BEGIN, REFERENCE_END, render_reference
from runtime.settings.tree import (
    COMMAND_SECTIONS,
    SECTIONS,
    UP_SKIPS,
    MqttSettings,
    SimulateSettings,
)

ROOT = Path(__file__).resolve().parents[2]


def settings_for(argv: list[str], env: dict[str, str] | None = None) -> Resolved:
    return load_settings(build_parser().parse_args(argv), env or {})


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "facility.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_come_from_the_dataclasses() -> None:
    s = settings_for(["gateway"])
    assert s.get(MqttSettings) == MqttSettings()
    assert s.get(PipelineSettings) == PipelineSettings()
    assert s.source("mqtt.port") == "default"


def test_a_config_file_sets_any_section(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        '[mqtt]\nhost = "broker.internal"\nport = 8883\ntls = true\n'
        "[pipeline]\nflush_interval_s = 0.5\n"
        '[store]\nkind = "influx-v1"\ninflux_url = "http://tsdb:8086"\n',
    )
    s = settings_for(["--config", str(path), "gateway"])
    assert s.get(MqttSettings).host == "broker.internal"
    assert s.get(MqttSettings).port == 8883
    assert s.get(MqttSettings).tls is True
    assert s.get(PipelineSettings).flush_interval_s == 0.5
    assert s.get(StoreSettings).kind == "influx-v1"
    assert s.source("mqtt.port") == f"file {path}"


def test_the_environment_sets_any_setting() -> None:
    s = settings_for(
        ["api"],
        {"FACILITY_API_TOKEN_TTL_S": "120", "FACILITY_API_COOKIE_SECURE": "yes",
         "FACILITY_API_SECRET": "s" * 40, "FACILITY_DB_URL": "sqlite:///x.sqlite3"},
    )  # fmt: skip
    api = s.get(ApiSettings)
    assert api.token_ttl_s == 120
    assert api.cookie_secure is True
    assert api.secret == "s" * 40
    assert s.source("api.token_ttl_s") == "env FACILITY_API_TOKEN_TTL_S"


def test_flags_set_settings_and_repeat_for_lists() -> None:
    s = settings_for(
        ["simulate", "--rate", "2", "--inject", "pump-dry-run", "--inject", "device-silent",
         "--no-live", "--mqtt-tls"]
    )  # fmt: skip
    sim = s.get(SimulateSettings)
    assert sim.rate_hz == 2.0
    assert sim.inject == ("pump-dry-run", "device-silent")
    assert sim.live is False
    assert s.get(MqttSettings).tls is True
    assert s.source("simulate.rate_hz") == "flag --rate"


def test_precedence_is_default_file_env_flag(tmp_path: Path) -> None:
    path = config(tmp_path, "[mqtt]\nport = 1001\nkeepalive_s = 11\nreconnect_max_s = 60\n")
    env = {"FACILITY_MQTT_PORT": "1002", "FACILITY_MQTT_KEEPALIVE_S": "12"}
    s = settings_for(["--config", str(path), "gateway", "--mqtt-port", "1003"], env)
    mqtt = s.get(MqttSettings)
    assert (mqtt.port, mqtt.keepalive_s, mqtt.reconnect_max_s, mqtt.reconnect_min_s) == (
        1003, 12, 60.0, 1.0,
    )  # fmt: skip
    assert s.source("mqtt.port") == "flag --mqtt-port"
    assert s.source("mqtt.keepalive_s") == "env FACILITY_MQTT_KEEPALIVE_S"
    assert s.source("mqtt.reconnect_max_s") == f"file {path}"
    assert s.source("mqtt.reconnect_min_s") == "default"


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = config(tmp_path, "[http]\nport = 8123\n")
    s = settings_for(["api"], {"FACILITY_CONFIG": str(path)})
    assert s.source("http.port") == f"file {path}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mqtt]\nport = 70000\n", "setting mqtt.port: 70000 is not a port number"),
        ('[mqtt]\nport = "1883"\n', "setting mqtt.port: must be int, not '1883'"),
        ("[mqtt]\ntls = 1\n", "setting mqtt.tls: must be true|false, not 1"),
        ('[store]\nkind = "influx"\n', "setting store.kind: 'influx' is not one of sqlite"),
        ("[mqtt]\nhots = 1\n", "unknown setting 'hots' in [mqtt] (did you mean host?)"),
        ("[mqt]\nhost = 1\n", "unknown section [mqt] (did you mean mqtt?)"),
        ("[mqtt\n", "Expected ']'"),
    ],
)
def test_bad_file_values_name_the_setting_and_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        settings_for(["--config", str(path), "gateway"])
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACILITY_MQTT_PORT": "0"}, "setting mqtt.port: 0 is not a port number (1-65535) "
         "(from env FACILITY_MQTT_PORT)"),
        ({"FACILITY_MQTT_PORT": "x"}, "setting mqtt.port: 'x' is not a whole number "
         "(from env FACILITY_MQTT_PORT)"),
        ({"FACILITY_PIPELINE_FLUSH_INTERVAL_S": "soon"}, "setting pipeline.flush_interval_s: "
         "'soon' is not a number (from env FACILITY_PIPELINE_FLUSH_INTERVAL_S)"),
        ({"FACILITY_MQTT_TLS": "maybe"}, "'maybe' is not true or false"),
        ({"FACILITY_API_SECRET": "short"}, "setting api.secret: must be at least 32 characters"),
    ],
)  # fmt: skip
def test_bad_env_values_name_the_variable(env: dict[str, str], message: str) -> None:
    command = "api" if "API" in next(iter(env)) else "gateway"
    with pytest.raises(SettingsError) as caught:
        settings_for([command], env)
    assert message in str(caught.value)


def test_a_bad_value_stops_the_command_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, "[gateway]\nmetrics_port = -1\n")
    assert main(["--config", str(path), "gateway"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"facility: error: setting gateway.metrics_port: -1 is not a port number "
        f"(1-65535, 0 = off) (from file {path})"
    )


def test_unknown_facility_variables_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    settings_for(["gateway"], {"FACILITY_MQTT_HOTS": "x"})
    assert "FACILITY_MQTT_HOTS is not a setting; ignored (did you mean FACILITY_MQTT_HOST?)" in (
        caplog.text
    )


def test_config_show_masks_secrets_and_names_sources(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACILITY_API_SECRET", "t" * 40)
    monkeypatch.setenv("FACILITY_STORE_INFLUX_USERNAME", "facility")
    monkeypatch.setenv("FACILITY_STORE_INFLUX_PASSWORD", "hunter2")
    assert main(["config", "show", "api"]) == 0
    out = capsys.readouterr().out
    assert "secret = ********  (env FACILITY_API_SECRET)" in out
    assert "influx_password = ********  (env FACILITY_STORE_INFLUX_PASSWORD)" in out
    assert "t" * 40 not in out
    assert "hunter2" not in out
    assert "port = 8000  (default)" in out


def test_every_setting_is_documented_and_named_once() -> None:
    for section in SECTIONS.values():
        docs = attribute_docs(section.settings_type)
        for option in section.options:
            assert docs.get(option.key), f"{option.name} has no attribute docstring"
    for command, names in COMMAND_SECTIONS.items():
        skip = UP_SKIPS if command == "up" else frozenset()
        flags = [o.flag for n in names for o in SECTIONS[n].options if o.name not in skip]
        assert len(flags) == len(set(flags)), f"{command}: a flag names two settings"
    envs = [o.env for s in SECTIONS.values() for o in s.options]
    assert len(envs) == len(set(envs))


def test_operations_doc_holds_the_generated_reference() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    found = re.search(
        re.escape(REFERENCE_BEGIN) + ".*?" + re.escape(REFERENCE_END), text, flags=re.S
    )
    assert found is not None, "docs/operations.md has no settings reference"
    assert found.group(0) == render_reference(), (
        "docs/operations.md's settings reference is out of date: "
        "run `facility config reference` and paste it in"
    )


def test_read_config_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        read_config_file(tmp_path / "absent.toml")


def test_the_example_settings_file_serves_every_command() -> None:
    example = ROOT / "docs" / "facility.example.toml"
    for command in ("gateway", "api", "simulate"):
        s = settings_for(["--config", str(example), command], {"FACILITY_API_SECRET": "x" * 40})
        assert s.source("log.level") == f"file {example}"
    s = settings_for(["--config", str(example), "gateway"])
    assert s.get(MqttSettings).host == "broker.internal"
    assert s.get(StoreSettings).kind == "influx-v1"
