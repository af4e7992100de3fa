"""HTTP hardening, in process: body limits, 422s that do not echo input, safe JSON, security
headers, the Secure cookie and the client behind trusted proxies (`api.http`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.http.clients import TrustedProxies
from api.http.headers import CSP
from api.http.limits import json_problem, nesting_exceeds
from api.settings import ApiSettings
from facility.errors import SettingsError
from facility.site import Site
from runtime.cli import build_parser, load_settings
from tests.api_support import PASSWORD, SECRET, T0, Api, new_store, open_order, running_api
from tests.fakes import FakeClock

LOGIN = "/api/v1/auth/login"
REPORTS = "/api/v1/reports"
JSON = {"content-type": "application/json"}
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"


@pytest.fixture
def api(demo_site: Site, tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(T0)
    with running_api(
        demo_site, new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock), clock
    ) as a:
        yield a


def _client(api: Api, host: str) -> TestClient:
    """The same app, as seen from another peer address (no lifespan: the app is running)."""
    return TestClient(api.app, client=(host, 40000))


def _code(api: Api) -> str:
    return api.context.report_codes.code_for("b03-u1")


# -- body limits -------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_reading(api: Api) -> None:
    response = api.client.post(LOGIN, content=b"{" + b" " * 70_000 + b"}", headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is larger than 65536 bytes"}
    assert response.headers["connection"] == "close"


def test_a_streamed_body_is_counted_as_it_comes(api: Api) -> None:
    chunks = (b"x" * 16_384 for _ in range(10))  # no Content-Length: sent chunked
    for content_type in ("application/json", "text/plain"):
        response = api.client.post(LOGIN, content=chunks, headers={"content-type": content_type})
        assert response.status_code == 413
        chunks = (b"x" * 16_384 for _ in range(10))


def test_the_user_admin_route_takes_larger_bodies(api: Api) -> None:
    buildings = [f"b{i:03d}-" + "x" * 59 for i in range(1000)]  # 1,000 ids of 64 characters
    body = {"username": "many", "password": "long-enough", "role": "steward"}
    response = api.post("/api/v1/users", "admin", {**body, "buildings": buildings})
    assert len(orjson.dumps(buildings)) > 65_536
    assert response.status_code == 422  # not 413: the body got as far as validation
    assert "no building(s)" in response.text


# -- 422 without the input, safe JSON ----------------------------------------------------------


def test_a_422_names_the_field_but_never_echoes_it(api: Api) -> None:
    big = "y" * 50_000
    response = api.client.post(LOGIN, json={"username": big, "password": 5})
    assert response.status_code == 422
    assert len(response.content) < 1_000
    assert "yyyy" not in response.text
    for error in response.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "username"),
        ("body", "password"),
    }


def test_an_unknown_field_name_is_not_echoed_in_full(api: Api) -> None:
    response = api.client.post(LOGIN, json={"u" * 10_000: 1, "username": "a", "password": "b"})
    assert response.status_code == 422
    assert len(response.content) < 1_000


def test_a_long_query_value_is_not_echoed_either(api: Api) -> None:
    params = {"field": "z" * 5_000, "start_ms": 0, "end_ms": 1_000}
    response = api.get("/api/v1/devices/pump-1/history", "admin", params=params)
    assert response.status_code == 422
    assert "zzzz" not in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (LOGIN, {"username": "admin\u001c", "password": PASSWORD}),
        (LOGIN, {"username": "admin", "password": "x\u0000y"}),
        (REPORTS, {"code": "CODE", "description": "water \u001f everywhere"}),
        (REPORTS, {"code": "CODE", "description": "the lift is stuck", "contact": "a\nb"}),
        (REPORTS, {"code": "CODE\u001e", "description": "the lift is stuck"}),
    ],
)
def test_control_characters_are_422(api: Api, path: str, body: dict[str, Any]) -> None:
    body = {k: v.replace("CODE", _code(api)) for k, v in body.items()}
    response = api.client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "string_pattern_mismatch"


def test_multi_line_text_keeps_its_line_breaks(api: Api) -> None:
    body = {"code": _code(api), "description": "line one\nline two\ttabbed\r\n"}
    assert api.client.post(REPORTS, json=body).status_code == 201
    order = open_order(api.store, api.site, "b03-u1-el2")
    text = "first\nsecond"
    response = api.post(f"/api/v1/work-orders/{order}/comments", "admin", {"text": text})
    assert (response.status_code, response.json()["note"]) == (201, text)
    bad = api.post(f"/api/v1/work-orders/{order}/comments", "admin", {"text": "a\u001db"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (LOGIN, b'{"username": "a\\ud800b", "password": "x"}'),
        (LOGIN, b'{"username": "\\udc00", "password": "x"}'),
        (REPORTS, b'{"code": "c", "description": "broken \\ud83d lift"}'),
        (LOGIN, b'{"username": "\xff\xfe", "password": "x"}'),
        (LOGIN, b'{"username": "a", "password": NaN}'),
    ],
)
def test_lone_surrogates_and_bad_utf8_are_422_not_500(api: Api, path: str, raw: bytes) -> None:
    response = api.client.post(path, content=raw, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_json_nested_deeper_than_the_limit_is_422(api: Api) -> None:
    def nested(depth: int) -> bytes:
        return b'{"username": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b', "password": "x"}'

    deep = api.client.post(LOGIN, content=nested(33), headers=JSON)
    assert deep.status_code == 422
    assert deep.json()["detail"] == [
        {"loc": ["body"], "msg": "JSON nested more than 32 levels deep", "type": "json_too_deep"}
    ]
    shallow = api.client.post(LOGIN, content=nested(32), headers=JSON)
    assert shallow.status_code == 422
    assert shallow.json()["detail"][0]["type"] == "string_type"  # pydantic saw it
    very_deep = api.client.post(LOGIN, content=b"[" * 10_000 + b"]" * 10_000, headers=JSON)
    assert very_deep.status_code == 422


def test_nesting_is_measured_without_recursion() -> None:
    assert not nesting_exceeds({"a": [1, {"b": 2}]}, 3)
    assert nesting_exceeds({"a": [1, {"b": []}]}, 3)
    assert not nesting_exceeds("scalar", 1)
    assert json_problem(b'{"a": 1}', 1) is None


# -- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/health", "/api/v1/buildings", "/nowhere", "/openapi.json"])
def test_every_answer_carries_the_security_headers(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert "default-src 'self'" in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


def test_refusals_from_the_guard_carry_them_too(api: Api) -> None:
    response = api.client.post(LOGIN, content=b"x" * 70_000, headers=JSON)
    assert response.status_code == 413
    assert response.headers["content-security-policy"] == CSP


def test_only_the_docs_page_may_show_data_images(api: Api) -> None:
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == CSP + "; img-src 'self' data:"
    _no_inline_code(docs.text)


def test_the_dashboard_page_has_no_inline_code(api: Api) -> None:
    _no_inline_code(api.client.get("/").text)
    _no_inline_code((TEMPLATES / "index.html").read_text(encoding="utf-8"))


def _no_inline_code(html: str) -> None:
    """What `default-src 'self'` would block: inline scripts, styles, handlers, data: URLs."""
    for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I):
        assert script.strip() == "", script[:80]
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, flags=re.I) is None
    assert "<style" not in html.lower()
    assert re.search(r"\sstyle=|\son[a-z]+=|=\s*\"data:|javascript:", html, flags=re.I) is None


# -- Secure cookie -----------------------------------------------------------------------------


def _login_cookie(client: TestClient, **headers: str) -> str:
    response = client.post(LOGIN, json={"username": "admin", "password": PASSWORD}, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["set-cookie"]


def test_the_cookie_is_secure_over_tls_or_when_configured(demo_site: Site, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock, trusted_proxies=("10.0.0.0/8",)) as api:
        assert "Secure" not in _login_cookie(api.client)
        https = TestClient(api.app, base_url="https://testserver")
        assert "Secure" in _login_cookie(https)
        proxy = _client(api, "10.1.2.3")
        assert "Secure" in _login_cookie(proxy, **{"X-Forwarded-Proto": "https"})
        stranger = _client(api, "192.0.2.7")
        assert "Secure" not in _login_cookie(stranger, **{"X-Forwarded-Proto": "https"})
    store = new_store(f"sqlite:///{tmp_path / 'wo2.sqlite3'}", clock)
    with running_api(demo_site, store, clock, cookie_secure=True) as api:
        assert "Secure" in _login_cookie(api.client)


# -- client addresses --------------------------------------------------------------------------


def _statuses(client: TestClient, path: str, body: dict[str, Any], n: int) -> list[int]:
    """`n` posts from one peer, each claiming another X-Forwarded-For (and, for logins,
    another unknown user: one account's own lockout is not what is tested here)."""
    return [
        client.post(
            path,
            json={k: v.replace("{i}", str(i)) for k, v in body.items()},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(n)
    ]


def test_rotating_x_forwarded_for_does_not_reset_the_limits(api: Api) -> None:
    client = _client(api, "203.0.113.5")
    logins = _statuses(client, LOGIN, {"username": "nobody{i}", "password": "x"}, 21)
    assert logins == [401] * 20 + [429]
    body = {"code": _code(api), "description": "the lift is stuck"}
    assert _statuses(client, REPORTS, body, 6) == [201] * 5 + [429]


def test_behind_a_trusted_proxy_each_forwarded_client_counts_alone(
    demo_site: Site, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock, trusted_proxies=("10.0.0.1",)) as api:
        proxy = _client(api, "10.0.0.1")
        assert _statuses(proxy, LOGIN, {"username": "nobody{i}", "password": "x"}, 25) == [401] * 25
        # One client through the proxy is still one client, whatever it puts in front.
        spoofed = [
            proxy.post(
                LOGIN,
                json={"username": f"someone{i}", "password": "x"},
                headers={"X-Forwarded-For": f"1.1.1.{i}, 198.51.100.99"},
            ).status_code
            for i in range(21)
        ]
        assert spoofed == [401] * 20 + [429]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", "198.51.100.1", "192.0.2.1"),  # an untrusted peer: its header is ignored
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own claim: no
        ("10.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1"),  # two proxies
        ("10.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
        ("10.0.0.1", "[2001:db8::1]:4711, 10.0.0.2", "2001:db8::1"),
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.1", "unknown, 198.51.100.1", "198.51.100.1"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_the_client_is_the_right_most_untrusted_address(
    peer: str | None, forwarded: str | None, client: str
) -> None:
    assert TrustedProxies(["10.0.0.0/8", "::1"]).client(peer, forwarded) == client


def test_nothing_is_trusted_by_default() -> None:
    assert not TrustedProxies()
    assert TrustedProxies().client("127.0.0.1", "198.51.100.1") == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACILITY_API_TRUSTED_PROXIES": "10.0.0.0/8;nonsense"}, "'nonsense' is not an IP"),
        ({"FACILITY_API_TRUSTED_PROXIES": "10.0.0.300"}, "setting api.trusted_proxies"),
        ({"FACILITY_API_MAX_BODY_BYTES": "10"}, "setting api.max_body_bytes: must be at least"),
        ({"FACILITY_API_MAX_JSON_DEPTH": "0"}, "setting api.max_json_depth: must be at least 1"),
    ],
)
def test_bad_http_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(build_parser().parse_args(["api"]), {**env, "FACILITY_API_SECRET": SECRET})
    assert message in str(caught.value)


def test_trusted_proxies_take_addresses_and_networks() -> None:
    settings = ApiSettings(secret=SECRET, trusted_proxies=("10.0.0.1", "fd00::/8"))
    assert settings.trusted_proxies == ("10.0.0.1", "fd00::/8")
