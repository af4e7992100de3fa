"""InfluxDB writers against a fake HTTP server (httpx.MockTransport): every answer mapped."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.site import Site
from ingest.errors import PayloadTooLargeError, StoreRejectedError, StoreUnavailableError
from ingest.http_writer import retry_after_s
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from ingest.influx_v2 import InfluxV2Settings, InfluxV2Writer


def one_pump(site: Site) -> Batch:
    values = np.full((2, len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = [1.5, 0.1]
    values[:, PUMP.col("running")] = [1, 0]
    device = site.by_id["pump-2"].kind_index
    kb = KindBatch(
        PUMP,
        np.array([device, device], np.int32),
        np.array([1000, 2000], np.int64),
        np.array([1, 2], np.int64),
        values,
    )
    return Batch(site.id, {"pump": kb})


def v1(site: Site, handler: httpx.MockTransport) -> InfluxV1Writer:
    return InfluxV1Writer(
        site, InfluxV1Settings(url="http://influx", database="db"), transport=handler
    )


def test_v1_sends_gzipped_line_protocol_with_ms_precision(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result = v1(demo_site, httpx.MockTransport(handler)).write(one_pump(demo_site))
    assert result.written == 2
    request = seen[0]
    assert request.url.path == "/write"
    assert dict(request.url.params) == {"db": "db", "precision": "ms"}
    assert request.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(request.content).decode()
    key = "pump,site=shangri-la,building=estate,unit=pump-room,device=pump-2"
    assert body == (
        f"{key} running=true,suction_bar=1.5 1000\n{key} running=false,suction_bar=0.1 2000"
    )


def test_v2_uses_token_org_bucket(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    settings = InfluxV2Settings(url="http://influx", org="o", bucket="b", token="secret")
    InfluxV2Writer(demo_site, settings, transport=httpx.MockTransport(handler)).write(
        one_pump(demo_site)
    )
    assert seen[0].url.path == "/api/v2/write"
    assert dict(seen[0].url.params) == {"org": "o", "bucket": "b", "precision": "ms"}
    assert seen[0].headers["Authorization"] == "Token secret"


@pytest.mark.parametrize(
    ("response", "error", "retry_after"),
    [
        (httpx.Response(503, json={"error": "busy"}), StoreUnavailableError, None),
        (httpx.Response(429, headers={"Retry-After": "7"}), StoreUnavailableError, 7.0),
        (httpx.Response(500, text="boom"), StoreUnavailableError, None),
        (httpx.Response(413), PayloadTooLargeError, None),
        (httpx.Response(401, json={"error": "authorization failed"}), StoreRejectedError, None),
        (
            httpx.Response(400, json={"error": "unable to parse everything"}),
            StoreRejectedError,
            None,
        ),
    ],
)
def test_answers_map_to_ingest_errors(
    demo_site: Site, response: httpx.Response, error: type[Exception], retry_after: float | None
) -> None:
    writer = v1(demo_site, httpx.MockTransport(lambda request: response))
    with pytest.raises(error) as raised:
        writer.write(one_pump(demo_site))
    if isinstance(raised.value, StoreUnavailableError):
        assert raised.value.retry_after_s == retry_after


def test_no_answer_is_store_unavailable_with_the_cause(demo_site: Site) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(StoreUnavailableError) as raised:
        v1(demo_site, httpx.MockTransport(handler)).write(one_pump(demo_site))
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_level_0_sends_the_body_as_it_is(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    settings = InfluxV1Settings(url="http://influx", database="db", gzip_level=0)
    writer = InfluxV1Writer(demo_site, settings, transport=httpx.MockTransport(handler))
    assert writer.write(one_pump(demo_site)).written == 2
    assert "Content-Encoding" not in seen[0].headers
    assert seen[0].content.startswith(b"pump,site=shangri-la,")


def test_v1_credentials_go_as_basic_auth(demo_site: Site) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    settings = InfluxV1Settings(url="http://influx", database="db", username="gw", password="pw")
    InfluxV1Writer(demo_site, settings, transport=httpx.MockTransport(handler)).write(
        one_pump(demo_site)
    )
    assert seen[0].headers["Authorization"] == "Basic Z3c6cHc="  # base64 of "gw:pw"


def test_partial_write_counts_and_samples_the_refused_points(demo_site: Site) -> None:
    error = (
        'partial write: field type conflict: input field "suction_bar" on measurement "pump" '
        "is type float, already exists as type integer dropped=2"
    )
    writer = v1(
        demo_site, httpx.MockTransport(lambda r: httpx.Response(400, json={"error": error}))
    )
    result = writer.write(one_pump(demo_site))
    assert result.written == 0
    (rejected,) = result.rejected
    assert (rejected.reason, rejected.count) == ("field_type_conflict", 2)
    assert rejected.sample.count("\n") == 1
    assert rejected.sample.startswith("pump,site=shangri-la")


def test_unparsable_points_are_named(demo_site: Site) -> None:
    error = (
        "partial write: unable to parse 'pump,device=x suction_bar=': missing field value dropped=1"
    )
    writer = v1(
        demo_site, httpx.MockTransport(lambda r: httpx.Response(400, json={"error": error}))
    )
    result = writer.write(one_pump(demo_site))
    assert result.written == 1
    assert result.rejected[0].reason == "unparsable_point"
    assert result.rejected[0].sample == "pump,device=x suction_bar="


def test_a_missing_v1_database_is_created_and_the_write_retried(demo_site: Site) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/write" and "/query" not in calls:
            return httpx.Response(404, json={"error": 'database not found: "db"'})
        return httpx.Response(204 if request.url.path == "/write" else 200, json={"results": []})

    assert v1(demo_site, httpx.MockTransport(handler)).write(one_pump(demo_site)).written == 2
    assert calls == ["/write", "/query", "/write"]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120.0
    assert retry_after_s("Sat, 28 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_s("Sat, 28 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None
