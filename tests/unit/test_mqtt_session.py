"""`facility mqtt forget-session` without a broker: the client id check, the report, the
command's flags; and the broker's `$SYS` figures as metrics. On Mosquitto:
tests/integration/test_forget_session.py."""

from __future__ import annotations

import pytest
from paho.mqtt.client import MQTTMessage

from facility.errors import SettingsError
from gateway.mqtt import MqttSettings
from mqtt.broker_stats import BrokerStats
from mqtt.session import ForgottenSession, check_client_id
from runtime.cli import build_parser, main


@pytest.mark.parametrize(
    ("client_id", "why"),
    [("", "empty"), ("a\x00b", "control"), ("tab\there", "control"), ("x" * 65_536, "65535")],
)
def test_a_bad_client_id_is_refused_naming_the_setting(client_id: str, why: str) -> None:
    with pytest.raises(SettingsError, match=f"mqtt-client-id.*{why}"):
        check_client_id(client_id)


def test_any_printable_client_id_is_allowed() -> None:
    for client_id in ("facility-gateway", "gw/old#1", "网关-旧", "x" * 65_535):
        check_client_id(client_id)


def test_the_report_says_what_was_there() -> None:
    removed = ForgottenSession("old-gw", "MQTT broker h:1883", True, 20).describe()
    assert removed == (
        "removed the session of client id 'old-gw' on MQTT broker h:1883 "
        "(at least 20 queued message(s) were waiting in it)"
    )
    assert "no session" in ForgottenSession("old-gw", "b", False, 0).describe()


def test_the_command_takes_the_connection_and_the_client_id_only() -> None:
    parser = build_parser()
    args = parser.parse_args(["mqtt", "forget-session", "--mqtt-client-id", "old-gw"])
    assert getattr(args, "setting:gateway.client_id") == "old-gw"
    with pytest.raises(SystemExit):
        parser.parse_args(["mqtt", "forget-session", "--spool-dir", "x"])


def test_an_unreachable_broker_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mqtt", "forget-session", "--mqtt-host", "no-such-broker.invalid",
                 "--mqtt-client-id", "old-gw"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("facility: error: cannot reach MQTT broker no-such-broker.invalid")


def test_sys_figures_become_metrics_once_the_broker_sent_them() -> None:
    stats = BrokerStats(MqttSettings(), "gw-sys")
    assert stats.prometheus() == []  # no $SYS (another broker, an ACL): no metric
    for topic, payload in (
        ("$SYS/broker/store/messages/count", b"1234"),
        ("$SYS/broker/clients/disconnected", b"2"),
        ("$SYS/broker/store/messages/bytes", b"not a number"),
    ):
        message = MQTTMessage(topic=topic.encode())
        message.payload = payload
        stats._on_message(stats._client, None, message)
    metrics = {m.name: m.samples[()] for m in stats.prometheus()}
    assert metrics == {
        "facility_broker_store_messages": 1234,
        "facility_broker_sessions_disconnected": 2,
    }
