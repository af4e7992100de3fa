"""The InfluxDB 2.x/3.x writer (/api/v2/write) end to end, against VictoriaMetrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from facility.clock import now_ms
from tests.integration.helpers import start_facility, stop_process, wait_for
from tests.integration.load import Publisher, stream, synthetic_site, synthetic_site_text
from tests.services import ServiceProcess, free_port, vm_sample_count

pytestmark = pytest.mark.integration

ALWAYS = {"elevator": "running", "lighting": "commanded_on", "gate": "door_open", "pump": "running"}


def test_gateway_writes_every_reading_through_api_v2_write(
    tmp_path: Path, mosquitto: ServiceProcess, victoria_metrics: ServiceProcess
) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(synthetic_site_text(devices_per_kind=10))
    data = stream(synthetic_site(10), 50, 10, now_ms() - 120_000)
    gateway = start_facility(
        [
            "gateway",
            "--site", str(site_file),
            "--mqtt-port", str(mosquitto.port),
            "--store", "influx-v2",
            "--influx-url", f"http://127.0.0.1:{victoria_metrics.port}",
            "--influx-org", "facility",
            "--influx-bucket", "telemetry",
            "--influx-token", "not-checked-by-victoria-metrics",
            "--db-url", f"sqlite:///{tmp_path / 'facility.sqlite3'}",
            "--dead-letters", str(tmp_path / "dead-letters.jsonl"),
            "--spool-dir", str(tmp_path / "spool"),
            "--rules-state", str(tmp_path / "rules-state.npz"),
            "--metrics-port", str(free_port()),
        ],
        tmp_path / "gateway.log",
    )  # fmt: skip
    try:
        wait_for((tmp_path / "gateway.log").read_text, lambda text: "subscribed to" in text,
                 timeout_s=30, what="the gateway to subscribe")  # fmt: skip
        publisher = Publisher(mosquitto.port)
        try:
            publisher.publish_all(data.messages)
        finally:
            publisher.close()

        def stored() -> dict[str, int]:
            return {
                kind: vm_sample_count(victoria_metrics.port, f"{kind}_{field}")
                for kind, field in ALWAYS.items()
            }

        found = wait_for(stored, lambda counts: counts == dict(data.readings_by_kind),
                         timeout_s=60, what="every reading in VictoriaMetrics")  # fmt: skip
        assert sum(found.values()) == data.readings == 2000
    finally:
        code = stop_process(gateway)
    assert code == 0, (tmp_path / "gateway.log").read_text()[-3000:]
