"""Many sites in one deployment (issue #13), through the API: three estates whose ids collide
(each has a building `b03` with the same device ids), served as one portfolio on SQLite and
PostgreSQL. A steward of one estate's b03 sees nothing of the others' b03 (every route with an
id, every list, the live stream); a steward of a whole estate sees all of it and nothing else;
a dispatcher sees every estate and narrows with `site=`; a regional desk sees its estate only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.notify.outbox import OutboxRow
from alerts.notify.service import NoticeMaker
from alerts.rule_faults import site_fault
from alerts.status import STATUS_RANK, Status
from alerts.workorders import EventKind
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.auth.tokens import ReportCodes
from facility.site import Site
from runtime import cli
from tests.api_support import SECRET, T0, Api, new_store, open_order, running_api, seen
from tests.fakes import FakeClock
from tests.portfolio_support import add_portfolio_users, file_report, portfolio, write_estates
from tests.unit.test_api_events import Server, read_events
from tests.work_orders import order

ALL_BUILDINGS = {"alpha:b03", "bravo:b01", "bravo:b03", "charlie:b03"}
SCOPES: dict[str, set[str]] = {
    "alpha-steward": {"alpha:b03"},
    "bravo-steward": {"bravo:b01", "bravo:b03"},
    "charlie-desk": {"charlie:b03"},
    "charlie-tech": {"charlie:b03"},
}
"""Each scoped user -> the buildings they see."""
NOT_BUILDING_SCOPED = {"site_id", "username", "name", "code"}


@pytest.fixture
def papi(tmp_path: Path, db_url: str) -> Iterator[Api]:
    site = portfolio(tmp_path / "sites")
    clock = FakeClock(T0)
    with running_api(site, new_store(db_url, clock), clock, sse_keepalive_s=0.2) as api:
        add_portfolio_users(api.context.users, site)
        yield api


@pytest.fixture
def orders(papi: Api) -> dict[str, dict[str, int]]:
    """Per building: a fault order on its first elevator and a resident's report (with a
    photo); bravo also has an order of the whole estate (filed on the site's id)."""
    out: dict[str, dict[str, int]] = {}
    for building_id in sorted(ALL_BUILDINGS):
        out[building_id] = {
            "fault": open_order(papi.store, papi.site, f"{building_id}-u1-el1"),
            "report": file_report(papi.store, papi.site, building_id),
        }
    bravo = next(s for s in papi.site.sites if s.id == "bravo")
    papi.store.open_for_faults("bravo", [site_fault(bravo, T0, T0 + 1000)])
    (whole,) = papi.store.list_work_orders(device_id="bravo", limit=1)
    out["bravo"] = {"site": whole.id}
    return out


def _visible_orders(orders: dict[str, dict[str, int]], buildings: set[str]) -> set[int]:
    return {i for b, kinds in orders.items() if b in buildings for i in kinds.values()}


# -- every route with an id -----------------------------------------------------------------


def _id_routes(api: Api) -> list[tuple[str, str, list[str]]]:
    out = []
    for path, operations in api.app.openapi()["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        if params and not set(params) <= NOT_BUILDING_SCOPED:
            out += [(method.upper(), path, params) for method in sorted(operations)]
    return out


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/work-orders/{work_order_id}/transitions"): {"to": "acknowledged"},
    ("POST", "/api/v1/work-orders/{work_order_id}/assign"): {"assignee": "tech"},
    ("POST", "/api/v1/work-orders/{work_order_id}/comments"): {"text": "on my way"},
}


def _request(
    api: Api, user: str, method: str, path: str, params: list[str], building_id: str,
    orders: dict[str, dict[str, int]],
) -> Any:  # fmt: skip
    building = api.site.building_by_id[building_id]
    report = orders[building_id]["report"]
    photo = api.store.photos_of([report])[report][0].id
    values = {
        "building_id": building.id,
        "unit_id": building.units[0].id,
        "device_id": building.devices[0].id,
        "work_order_id": str(report),
        "photo_id": str(photo),
    }
    concrete = path
    for name in params:
        if name not in values:
            pytest.fail(f"{path}: path parameter {{{name}}} is unknown to this test: add it")
        concrete = concrete.replace("{" + name + "}", values[name])
    kwargs: dict[str, Any] = {"headers": api.headers(user)}
    if method == "POST":
        kwargs["json"] = BODIES[(method, path)]
    if path.endswith("/history"):
        kwargs["params"] = {"field": "floor", "start_ms": T0 - 60_000, "end_ms": T0}
    return api.client.request(method, concrete, **kwargs)


@pytest.mark.parametrize("user", sorted(SCOPES))
def test_every_route_with_an_id_is_404_for_another_estates_b03(
    papi: Api, orders: dict[str, dict[str, int]], user: str
) -> None:
    routes = _id_routes(papi)
    assert len(routes) >= 12
    own = SCOPES[user]
    for method, path, params in routes:
        for building_id in sorted(ALL_BUILDINGS - own):
            response = _request(papi, user, method, path, params, building_id, orders)
            assert response.status_code == 404, (user, method, path, building_id, response.text)
            assert response.json()["detail"].startswith("no "), response.text
        for building_id in sorted(own):  # the same request in their own estate: not a 404
            response = _request(papi, user, method, path, params, building_id, orders)
            assert response.status_code != 404, (user, method, path, building_id, response.text)


# -- lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", sorted(SCOPES))
def test_lists_hold_only_the_users_estate(
    papi: Api, orders: dict[str, dict[str, int]], user: str
) -> None:
    own = SCOPES[user]
    estate = next(iter(own)).split(":")[0]
    buildings = papi.get("/api/v1/buildings", user).json()
    assert {b["id"] for b in buildings} == own
    assert {(b["site_id"], b["site_name"]) for b in buildings} == {
        (estate, papi.site.site_of(next(iter(own))).name)  # type: ignore[union-attr]
    }
    devices = papi.get("/api/v1/devices", user, params={"limit": 1000}).json()
    assert {d["building_id"] for d in devices["items"]} == own
    page = papi.get("/api/v1/work-orders", user, params={"limit": 500}).json()
    expected = _visible_orders(orders, own | ({estate} if user != "alpha-steward" else set()))
    assert {o["id"] for o in page["items"]} == expected
    assert page["total"] == len(expected)
    assert {o["site_id"] for o in page["items"]} == {estate}
    sites = papi.get("/api/v1/sites", user).json()
    assert [(s["id"], s["buildings"]) for s in sites] == [(estate, len(own))]
    assert sites[0]["open_work_orders"] == len(expected)
    assert papi.get(f"/api/v1/sites/{estate}", user).status_code == 200
    for other in {"alpha", "bravo", "charlie"} - {estate}:
        for url in (
            f"/api/v1/sites/{other}",
            f"/api/v1/buildings?site={other}",
            f"/api/v1/work-orders?site={other}",
            f"/api/v1/reports/owners?site={other}",
        ):
            response = papi.get(url, user)
            if url.startswith("/api/v1/reports") and user == "charlie-tech":
                assert response.status_code == 403  # technicians get no report at all
                continue
            assert response.status_code == 404, (user, url)
            assert response.json()["detail"] == f"no site {other!r}"


def test_a_steward_of_one_b03_sees_only_it(papi: Api, orders: dict[str, dict[str, int]]) -> None:
    me = papi.get("/api/v1/auth/me", "alpha-steward").json()
    assert (me["buildings"], me["sites"]) == (["alpha:b03"], [])
    site = papi.get("/api/v1/sites/alpha", "alpha-steward").json()
    assert site == {
        "id": "alpha", "name": "Alpha Court", "timezone": "Asia/Shanghai",
        "buildings": [{"id": "alpha:b03", "name": "Building 3"}],
    }  # fmt: skip
    # the estate's own order (site silent) is not of their building
    hidden = papi.get(f"/api/v1/work-orders/{orders['bravo']['site']}", "alpha-steward")
    assert hidden.status_code == 404
    whole = papi.get(f"/api/v1/work-orders/{orders['bravo']['site']}", "bravo-steward")
    assert (whole.status_code, whole.json()["site_name"]) == (200, "Bravo Gardens")
    report = papi.get("/api/v1/reports/owners", "alpha-steward", params={"format": "csv"})
    assert report.status_code == 200
    assert "owners-report-alpha-" in report.headers["content-disposition"]
    assert "bravo" not in report.text
    assert "charlie" not in report.text


def test_a_steward_of_a_whole_estate_sees_all_its_buildings(
    papi: Api, orders: dict[str, dict[str, int]]
) -> None:
    me = papi.get("/api/v1/auth/me", "bravo-steward").json()
    assert (me["buildings"], me["sites"]) == ([], ["bravo"])
    assert [
        b["id"] for b in papi.get("/api/v1/sites/bravo", "bravo-steward").json()["buildings"]
    ] == [
        "bravo:b01",
        "bravo:b03",
    ]
    page = papi.get("/api/v1/work-orders", "bravo-steward", params={"site": "bravo"}).json()
    assert {o["id"] for o in page["items"]} == _visible_orders(
        orders, {"bravo:b01", "bravo:b03", "bravo"}
    )


# -- a dispatcher, site= filters, a regional desk --------------------------------------------


def test_a_dispatcher_sees_every_estate_and_narrows_with_site(
    papi: Api, orders: dict[str, dict[str, int]]
) -> None:
    buildings = papi.get("/api/v1/buildings", "dispatcher").json()
    assert {b["id"] for b in buildings} == ALL_BUILDINGS
    bravo = papi.get("/api/v1/buildings", "dispatcher", params={"site": "bravo"}).json()
    assert [(b["id"], b["site_id"], b["site_name"]) for b in bravo] == [
        ("bravo:b01", "bravo", "Bravo Gardens"),
        ("bravo:b03", "bravo", "Bravo Gardens"),
    ]
    everything = papi.get("/api/v1/work-orders", "dispatcher", params={"limit": 500}).json()
    assert everything["total"] == 4 * 2 + 1
    for estate, buildings_of in (
        ("alpha", {"alpha:b03"}),
        ("bravo", {"bravo:b01", "bravo:b03", "bravo"}),
        ("charlie", {"charlie:b03"}),
    ):
        page = papi.get("/api/v1/work-orders", "dispatcher", params={"site": estate}).json()
        assert {o["id"] for o in page["items"]} == _visible_orders(orders, buildings_of)
        assert {o["site_id"] for o in page["items"]} == {estate}
    # a building of another estate under site=: nothing, not someone else's b03
    crossed = papi.get(
        "/api/v1/work-orders", "dispatcher", params={"site": "alpha", "building": "bravo:b03"}
    ).json()
    assert crossed["total"] == 0
    sites = papi.get("/api/v1/sites", "dispatcher").json()
    assert {s["id"] for s in sites} == {"alpha", "bravo", "charlie"}
    ranks = [STATUS_RANK[Status(s["status"])] for s in sites]
    assert ranks == sorted(ranks, reverse=True)  # worst first
    zones = {s["id"]: s["timezone"] for s in sites}
    assert zones == {"alpha": "Asia/Shanghai", "bravo": "Europe/Berlin",
                     "charlie": "America/New_York"}  # fmt: skip
    assert {s["id"]: s["open_work_orders"] for s in sites} == {"alpha": 2, "bravo": 5, "charlie": 2}
    # the owners' report is of one estate: several seen, none named -> 422 naming `site`
    unnamed = papi.get("/api/v1/reports/owners", "dispatcher")
    assert unnamed.status_code == 422
    assert unnamed.json()["detail"][0]["loc"] == ["query", "site"]
    named = papi.get("/api/v1/reports/owners", "dispatcher", params={"site": "charlie"})
    assert named.status_code == 200
    assert "owners-report-charlie-" in named.headers["content-disposition"]


def test_a_regional_desk_sees_only_its_estate(papi: Api, orders: dict[str, dict[str, int]]) -> None:
    me = papi.get("/api/v1/auth/me", "charlie-desk").json()
    assert (me["role"], me["sites"]) == ("dispatcher", ["charlie"])
    page = papi.get("/api/v1/work-orders", "charlie-desk", params={"limit": 500}).json()
    assert {o["id"] for o in page["items"]} == _visible_orders(orders, {"charlie:b03"})
    alpha_order = orders["alpha:b03"]["fault"]
    moved = papi.post(f"/api/v1/work-orders/{alpha_order}/transitions", "charlie-desk",
                      {"to": "acknowledged"})  # fmt: skip
    assert moved.status_code == 404
    own_order = orders["charlie:b03"]["fault"]
    moved = papi.post(f"/api/v1/work-orders/{own_order}/transitions", "charlie-desk",
                      {"to": "acknowledged"})  # fmt: skip
    assert moved.status_code == 200


# -- the live stream ------------------------------------------------------------------------


def test_the_live_stream_carries_only_the_users_estate(papi: Api) -> None:
    monitor = papi.app.state.monitor
    for device in papi.site.devices:
        seen(papi.store, papi.site, device.id, T0)
    monitor.poll_once()
    with Server(papi.app) as server, httpx.Client(timeout=10) as http:
        base = f"http://127.0.0.1:{server.port}/api/v1/events"
        with (
            http.stream("GET", base, headers=papi.headers("alpha-steward")) as alpha,
            http.stream("GET", base, headers=papi.headers("bravo-steward")) as bravo,
            http.stream("GET", base, headers=papi.headers("charlie-desk")) as desk,
            http.stream(
                "GET", base, headers=papi.headers("dispatcher"), params={"site": "bravo"}
            ) as narrowed,  # fmt: skip
            http.stream("GET", base, headers=papi.headers("dispatcher")) as everyone,
        ):
            streams = {"alpha": alpha, "bravo": bravo, "charlie": desk, "narrowed": narrowed,
                       "everyone": everyone}  # fmt: skip
            lines = {name: s.iter_lines() for name, s in streams.items()}
            for stream_lines in lines.values():
                read_events(stream_lines, "ready")
            filed = {
                b: open_order(papi.store, papi.site, f"{b}-u1-door", rule_id="stream.test")
                for b in ("charlie:b03", "bravo:b03", "alpha:b03")
            }
            monitor.poll_once()
            for name, estate in (("alpha", "alpha"), ("bravo", "bravo"), ("charlie", "charlie"),
                                 ("narrowed", "bravo")):  # fmt: skip
                events = read_events(lines[name], "building_status")
                assert {e["building_id"].split(":")[0] for e in events} == {estate}, name
                orders = [e["work_order_id"] for e in events if e["type"] == "work_order"]
                assert orders == [filed[f"{estate}:b03"]], name
            events = read_events(lines["everyone"], "building_status")
            assert {e["work_order_id"] for e in events if e["type"] == "work_order"} == set(
                filed.values()
            )
        unknown = http.get(base, headers=papi.headers("dispatcher"), params={"site": "nowhere"})
        assert (unknown.status_code, unknown.json()["detail"]) == (404, "no site 'nowhere'")
        hidden = http.get(base, headers=papi.headers("alpha-steward"), params={"site": "bravo"})
        assert hidden.status_code == 404


# -- residents' codes -------------------------------------------------------------------------


def test_report_codes_are_per_estate_and_those_of_the_single_site(papi: Api) -> None:
    codes = {s: papi.context.report_codes.code_for(f"{s}:b03-u1") for s in ("alpha", "bravo")}
    assert codes["alpha"] != codes["bravo"]
    # the code a sticker printed while bravo was a single-site deployment keeps working
    assert codes["bravo"] == ReportCodes(SECRET, "bravo", ["b03-u1"]).code_for("b03-u1")
    filed = papi.client.post(
        "/api/v1/reports", json={"code": codes["bravo"], "description": "Door will not close"}
    )
    assert filed.status_code == 201
    assert (filed.json()["building_id"], filed.json()["unit_id"]) == ("bravo:b03", "bravo:b03-u1")
    order = papi.store.get(filed.json()["work_order_id"])
    assert order.site_id == "bravo"
    page = papi.client.get(f"/r/{codes['bravo']}")
    assert page.status_code == 200
    assert "Bravo Gardens" in page.text
    assert "Alpha Court" not in page.text
    status_code = papi.context.status_codes.code_for("charlie:b03")
    assert "Charlie Towers" in papi.client.get(f"/s/{status_code}").text


# -- users' sites: admin and bad input --------------------------------------------------------


def test_an_admin_sets_a_users_sites_and_their_sessions_end(papi: Api) -> None:
    old = papi.headers("charlie-desk")
    changed = papi.client.put(
        "/api/v1/users/charlie-desk/sites", headers=papi.headers("admin"),
        json={"sites": ["charlie", "alpha"]},
    )  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["sites"] == ["alpha", "charlie"]
    assert papi.client.get("/api/v1/buildings", headers=old).status_code == 401
    seen_now = {b["id"] for b in papi.get("/api/v1/buildings", "charlie-desk").json()}
    assert seen_now == {"alpha:b03", "charlie:b03"}
    lifted = papi.client.put(
        "/api/v1/users/charlie-desk/sites", headers=papi.headers("admin"), json={"sites": []}
    )
    assert lifted.json()["sites"] == []
    assert {b["id"] for b in papi.get("/api/v1/buildings", "charlie-desk").json()} == ALL_BUILDINGS
    listed = {u["username"]: u["sites"] for u in papi.get("/api/v1/users", "admin").json()}
    assert listed["bravo-steward"] == ["bravo"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("charlie-desk/sites", {"sites": ["nowhere"]}, 422, "no site(s) 'nowhere'"),
        ("admin/sites", {"sites": ["alpha"]}, 422, "admins see every site"),
        ("bravo-steward/sites", {"sites": []}, 422, "a steward needs at least one building"),
        ("charlie-desk/sites", {"sites": "charlie"}, 422, None),
        ("charlie-desk/sites", {"sites": [""]}, 422, None),
        ("charlie-desk/sites", {"sites": ["x" * 65]}, 422, None),
        ("charlie-desk/sites", {"sites": ["charlie"], "buildings": []}, 422, None),
        ("charlie-desk/sites", {}, 422, None),
        ("nobody/sites", {"sites": ["alpha"]}, 404, None),
        ("charlie-desk/role", {"role": "admin", "sites": ["alpha"]}, 422, "admins see every site"),
    ],
)
def test_bad_site_changes_are_refused_saying_why(
    papi: Api, path: str, body: Any, status: int, message: str | None
) -> None:
    response = papi.client.put(f"/api/v1/users/{path}", headers=papi.headers("admin"), json=body)
    assert response.status_code == status, response.text
    if message is not None:
        assert message in response.json()["detail"][0]["msg"]


def test_only_admins_set_sites_and_new_users_take_known_sites_only(papi: Api) -> None:
    refused = papi.client.put(
        "/api/v1/users/charlie-desk/sites", headers=papi.headers("dispatcher"),
        json={"sites": ["alpha"]},
    )  # fmt: skip
    assert refused.status_code == 403
    body = {"username": "delta-desk", "password": "long-enough", "role": "dispatcher",
            "sites": ["delta"]}  # fmt: skip
    made = papi.post("/api/v1/users", "admin", body)
    assert made.status_code == 422
    assert "no site(s) 'delta'" in made.json()["detail"][0]["msg"]
    made = papi.post("/api/v1/users", "admin", {**body, "sites": ["alpha"]})
    assert (made.status_code, made.json()["sites"]) == (201, ["alpha"])


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/buildings?site=nowhere",
        "/api/v1/work-orders?site=nowhere",
        "/api/v1/sites/nowhere",
        "/api/v1/reports/owners?site=nowhere",
        "/api/v1/buildings/b03",  # a plain id names nothing in a portfolio
        "/api/v1/buildings/delta:b03",
        "/api/v1/devices/b03-u1-el1",
    ],
)
def test_unknown_sites_and_ids_are_404(papi: Api, url: str) -> None:
    assert papi.get(url, "dispatcher").status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"site": ""}, {"site": "x" * 65}, {"site": "bad\u0007id"}],
)
def test_malformed_site_filters_are_422(papi: Api, params: dict[str, str]) -> None:
    for url in ("/api/v1/buildings", "/api/v1/work-orders"):
        assert papi.get(url, "dispatcher", params=params).status_code == 422, (url, params)


def test_a_single_site_deployment_lists_itself_as_its_one_site(
    demo_site: Site, db_url: str
) -> None:
    clock = FakeClock(T0)
    with running_api(demo_site, new_store(db_url, clock), clock) as api:
        (only,) = api.get("/api/v1/sites", "steward").json()
        assert (only["id"], only["buildings"]) == (demo_site.id, 2)
        b03 = api.get("/api/v1/buildings", "dispatcher", params={"site": demo_site.id}).json()
        assert len(b03) == len(demo_site.buildings)
        assert {b["site_name"] for b in b03} == {demo_site.name}
        assert api.get("/api/v1/buildings", "dispatcher", params={"site": "x"}).status_code == 404


def test_an_order_goes_only_to_a_technician_who_sees_its_estate(
    papi: Api, orders: dict[str, dict[str, int]]
) -> None:
    alpha_order = orders["alpha:b03"]["fault"]
    refused = papi.post(f"/api/v1/work-orders/{alpha_order}/assign", "dispatcher",
                        {"assignee": "charlie-tech"})  # fmt: skip
    assert refused.status_code == 422
    assert "limited to site(s) charlie" in refused.json()["detail"][0]["msg"]
    taken = papi.post(f"/api/v1/work-orders/{orders['charlie:b03']['fault']}/assign",
                      "dispatcher", {"assignee": "charlie-tech"})  # fmt: skip
    assert (taken.status_code, taken.json()["assignee"]) == (200, "charlie-tech")
    anyone = papi.post(f"/api/v1/work-orders/{alpha_order}/assign", "dispatcher",
                       {"assignee": "tech"})  # fmt: skip
    assert anyone.status_code == 200


def test_qr_codes_of_a_portfolio_go_in_one_folder_per_estate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = portfolio(tmp_path / "sites")
    out = tmp_path / "codes"
    args = ["qr", "--site", str(tmp_path / "sites"), "--building", "bravo:b03",
            "--building", "alpha:b03", "--out", str(out), "--api-secret", SECRET,
            "--api-public-url", "https://estates.example.com"]  # fmt: skip
    assert cli.main(args) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.svg"))
    assert written == ["alpha/b03-status.svg", "alpha/b03-u1.svg",
                       "bravo/b03-status.svg", "bravo/b03-u1.svg"]  # fmt: skip
    code = ReportCodes(SECRET, sites.id, ["bravo:b03-u1"]).code_for("bravo:b03-u1")
    assert code == ReportCodes(SECRET, "bravo", ["b03-u1"]).code_for("b03-u1")
    assert f"https://estates.example.com/r/{code}" in capsys.readouterr().out


def test_the_users_commands_take_sites_checked_against_the_portfolio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = str(write_estates(tmp_path / "sites"))
    url = f"sqlite:///{tmp_path / 'wo.sqlite3'}"
    monkeypatch.setattr("api.users_cli.Passwords", lambda: Passwords(FAST_FOR_TESTS))
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough\nlong-enough\n"))
    common = ["--site", sites, "--db-url", url]
    capsys.readouterr()
    assert cli.main(["users", "add", "desk", "--role", "dispatcher", "--sites", "alpha,delta",
                     "--password-stdin", *common]) == 2  # fmt: skip
    assert "no site(s) 'delta'" in capsys.readouterr().err
    assert cli.main(["users", "add", "desk", "--role", "dispatcher", "--sites", "charlie,alpha",
                     "--password-stdin", *common]) == 0  # fmt: skip
    assert "sites alpha, charlie" in capsys.readouterr().out
    assert cli.main(["users", "set-sites", "desk", "--sites", "bravo", *common]) == 0
    assert cli.main(["users", "list", *common]) == 0
    assert "(sites bravo)" in capsys.readouterr().out
    assert cli.main(["users", "set-sites", "desk", "--sites", "", *common]) == 0
    assert "no limit by site" in capsys.readouterr().out
    assert cli.main(["users", "set-role", "desk", "admin", "--sites", "bravo", *common]) == 2
    assert "admins see every site" in capsys.readouterr().err


def test_the_report_command_reports_on_one_estate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = str(write_estates(tmp_path / "sites"))
    url = f"sqlite:///{tmp_path / 'wo.sqlite3'}"
    out = tmp_path / "out"
    out.mkdir()
    base = ["report", "--site", sites, "--db-url", url, "--month", "2026-11", "--format", "csv",
            "--output", str(out)]  # fmt: skip
    capsys.readouterr()
    assert cli.main(base) == 2
    assert "give --site-id (one of alpha, bravo, charlie)" in capsys.readouterr().err
    assert cli.main([*base, "--site-id", "delta"]) == 2
    assert "--site-id delta: no such site" in capsys.readouterr().err
    assert cli.main([*base, "--site-id", "charlie"]) == 0
    (written,) = out.iterdir()
    # November in New York: from 2026-11-01 04:00 UTC (EDT) to 2026-12-01 05:00 UTC (EST)
    assert written.name == "owners-report-charlie-2026-11-01-2026-11-30-en.csv"
    text = written.read_text(encoding="utf-8-sig")
    assert "Charlie Towers" in text
    assert "America/New_York" in text
    assert "bravo" not in text


def test_notices_tell_times_in_the_orders_estates_zone(tmp_path: Path) -> None:
    sites = portfolio(tmp_path / "sites")
    maker = NoticeMaker(sites, None)
    zones = {}
    for building_id in ("alpha:b03", "bravo:b01", "charlie:b03", "bravo"):
        unit = f"{building_id}-u1" if ":" in building_id else None
        row = OutboxRow(1, EventKind.CREATED, T0, None, None)
        notice = maker(row, order(building_id=building_id, unit_id=unit, device_id=None))
        zones[building_id] = (notice.time_zone, notice.building_name)
    assert zones == {
        "alpha:b03": ("Asia/Shanghai", "Building 3"),
        "bravo:b01": ("Europe/Berlin", "Building 1"),
        "charlie:b03": ("America/New_York", "Building 3"),
        "bravo": ("Europe/Berlin", "Bravo Gardens"),  # the estate's own order, by its name
    }
