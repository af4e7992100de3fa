"""Nobody can lock an account: back-off per (account, client), unlock without a password reset;
admins manage users (routes and `facility users`) and never leave the site without an admin;
unknown usernames cost a password check; report codes have their own key; tokens are masked
in logs."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.auth.tokens import ReportCodes
from api.auth.users import UserStore
from api.logmask import TokenMaskFilter, mask_tokens_in_logs
from db.engine import make_engine
from facility.site import Site
from runtime import cli
from tests.api_support import PASSWORD, SECRET, T0, Api, new_store, running_api
from tests.fakes import FakeClock


def from_address(api: Api, address: str) -> TestClient:
    """Another client of the same app, as seen from another network address."""
    return TestClient(api.app, client=(address, 40000))


def attempt(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_an_admin_hammered_from_one_client_still_logs_in_from_another(api: Api) -> None:
    attacker = from_address(api, "198.51.100.66")
    for _ in range(12):
        attempt(attacker, "admin", "guess-again")
    assert attempt(attacker, "admin", PASSWORD).status_code == 429  # the attacker waits
    office = from_address(api, "203.0.113.10")
    assert attempt(office, "admin", PASSWORD).status_code == 200  # the admin does not
    users = api.get("/api/v1/users", "admin").json()
    admin = next(u for u in users if u["username"] == "admin")
    assert admin["backoff_clients"] == 1
    assert admin["backoff_until_ms"] > T0


def test_unlock_clears_the_back_off_without_a_password_reset(
    api: Api, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = from_address(api, "192.0.2.1")
    for _ in range(6):
        attempt(client, "tech", "guess-again")
    assert attempt(client, "tech", PASSWORD).status_code == 429
    unlocked = api.post("/api/v1/users/tech/unlock", "admin")
    assert unlocked.status_code == 200
    assert unlocked.json() == {"username": "tech", "cleared": 1}
    assert attempt(client, "tech", PASSWORD).status_code == 200

    for _ in range(6):
        attempt(client, "tech", "guess-again")
    assert cli.main(["users", "unlock", "tech", "--db-url", db_url]) == 0
    assert "failed logins from 1 client(s) forgotten" in capsys.readouterr().out
    assert attempt(client, "tech", PASSWORD).status_code == 200
    assert api.post("/api/v1/users/nobody/unlock", "admin").status_code == 404


def test_an_unknown_username_costs_a_password_check(db_url: str) -> None:
    """Verifying against a dummy hash: the answer takes as long as for a real user."""
    verified: list[str] = []

    class Counting(Passwords):
        def verify(self, stored_hash: str, password: str) -> bool:
            verified.append(password)
            return super().verify(stored_hash, password)

    store = new_store(db_url, FakeClock(T0))
    users = UserStore(store.engine, Counting(FAST_FOR_TESTS))
    users.add("mei-ling", "long-enough", "dispatcher")
    for name in ("mei-ling", "no-such-user"):
        with pytest.raises(Exception, match="wrong username or password"):
            users.authenticate(name, "a-wrong-guess")
    assert verified == ["a-wrong-guess", "a-wrong-guess"]
    store.engine.dispose()


# -- admin routes ------------------------------------------------------------------------------


def test_admins_disable_enable_and_delete_users(api: Api) -> None:
    disabled = api.post("/api/v1/users/tech/disable", "admin")
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    assert api.post("/api/v1/users/tech/enable", "admin").json()["disabled"] is False
    deleted = api.client.delete("/api/v1/users/plumber", headers=api.headers("admin"))
    assert deleted.status_code == 204
    names = [u["username"] for u in api.get("/api/v1/users", "admin").json()]
    assert "plumber" not in names
    missing = api.client.delete("/api/v1/users/plumber", headers=api.headers("admin"))
    assert (missing.status_code, missing.json()) == (404, {"detail": "no user 'plumber'"})
    assert api.post("/api/v1/users/tech/disable", "dispatcher").status_code == 403


def test_the_last_enabled_admin_cannot_be_disabled_deleted_or_demoted(api: Api) -> None:
    for method, path, body in (
        ("POST", "/api/v1/users/admin/disable", None),
        ("DELETE", "/api/v1/users/admin", None),
        ("PUT", "/api/v1/users/admin/role", {"role": "dispatcher"}),
    ):
        refused = api.client.request(method, path, headers=api.headers("admin"), json=body)
        assert refused.status_code == 422, (method, path)
        assert "would leave no enabled admin" in refused.json()["detail"][0]["msg"]
    promoted = api.client.put(
        "/api/v1/users/dispatcher/role", headers=api.headers("admin"), json={"role": "admin"}
    )
    assert promoted.json()["role"] == "admin"
    assert api.post("/api/v1/users/admin/disable", "admin").status_code == 200  # one is left


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("tech/buildings", {"buildings": ["b03"]}, "only stewards are assigned buildings"),
        ("steward/buildings", {"buildings": ["b99"]}, "no building(s) 'b99'"),
        ("dispatcher/role", {"role": "technician"}, "a technician needs a team"),
        ("dispatcher/role", {"role": "steward"}, "a steward needs at least one building or site"),
    ],
)
def test_bad_changes_are_422_saying_why(
    api: Api, path: str, body: dict[str, Any], message: str
) -> None:
    response = api.client.put(f"/api/v1/users/{path}", headers=api.headers("admin"), json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


def test_role_changes_keep_or_take_team_and_buildings(api: Api) -> None:
    def put_role(username: str, body: dict[str, Any]) -> Any:
        response = api.client.put(
            f"/api/v1/users/{username}/role", headers=api.headers("admin"), json=body
        )
        assert response.status_code == 200, response.text
        return response.json()

    steward = put_role("dispatcher", {"role": "steward", "buildings": ["b01"]})
    assert (steward["role"], steward["buildings"]) == ("steward", ["b01"])
    tech = put_role("dispatcher", {"role": "technician", "team": "plumbing"})
    assert (tech["team"], tech["buildings"]) == ("plumbing", [])
    assert put_role("dispatcher", {"role": "technician"})["team"] == "plumbing"


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["disable", "nobody"], "no user 'nobody'"),
        (["delete", "admin"], "deleting 'admin' would leave no enabled admin"),
        (["set-role", "tech", "steward"], "a steward needs at least one building or site"),
        (["set-buildings", "steward", "--building", "b99"], "no building(s) 'b99' in the site"),
        (
            ["set-buildings", "tech", "--building", "b03"],
            "only stewards are assigned buildings (the other roles see them all)",
        ),
        (["unlock", "nobody"], "no user 'nobody'"),
    ],
)
def test_user_commands_with_bad_input_give_one_clear_line(
    tmp_path: Any, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/wo.sqlite3"
    store = new_store(url, FakeClock(T0))
    users = UserStore(store.engine, Passwords(FAST_FOR_TESTS))
    users.add("admin", "long-enough", "admin")
    users.add("tech", "long-enough", "technician", team="lift-contractor")
    users.add("steward", "long-enough", "steward", buildings=["b03"])
    store.engine.dispose()
    capsys.readouterr()
    assert cli.main(["users", *argv, "--db-url", url]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"facility: error: {says}\n"
    assert captured.out == ""


def test_user_commands_change_what_they_say(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/wo.sqlite3"
    monkeypatch.setattr("api.users_cli.Passwords", lambda: Passwords(FAST_FOR_TESTS))
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough\n"))
    assert cli.main(["users", "add", "mei", "--role", "steward", "--building", "b03",
                     "--password-stdin", "--db-url", url]) == 0  # fmt: skip
    for argv in (
        ["set-buildings", "mei", "--building", "b04", "--building", "b05"],
        ["set-role", "mei", "technician", "--team", "plumbing"],
        ["logout", "mei"],
        ["disable", "mei"],
    ):
        assert cli.main(["users", *argv, "--db-url", url]) == 0, argv
    out = capsys.readouterr().out
    assert "sees buildings b04, b05" in out
    assert "is now a technician" in out
    users = UserStore(make_engine(url), Passwords(FAST_FOR_TESTS))
    mei = users.by_username("mei")
    assert mei is not None
    assert (mei.role, mei.team, mei.buildings, mei.disabled) == (
        "technician", "plumbing", frozenset(), True,
    )  # fmt: skip
    assert mei.token_version == 4  # every change ended the sessions
    users.engine.dispose()


# -- report codes, logs ------------------------------------------------------------------------


def test_report_codes_have_their_own_key(demo_site: Site) -> None:
    units = ["b03-u1", "b03-u2"]
    printed = ReportCodes(SECRET, demo_site.id, units).code_for("b03-u1")
    # The API secret rotates; report_secret keeps the old one: printed codes still work.
    rotated = ReportCodes(SECRET, demo_site.id, units)
    assert rotated.unit_for(printed) == "b03-u1"
    other_key = ReportCodes("another-report-key-" + "y" * 30, demo_site.id, units)
    assert other_key.unit_for(printed) is None


def test_report_secret_is_used_and_reports_are_limited_per_code(
    demo_site: Site, db_url: str, clock: FakeClock
) -> None:
    report_secret = "report-secret-" + "z" * 40
    store = new_store(db_url, clock)
    with running_api(
        demo_site, store, clock, report_secret=report_secret, reports_per_code=2
    ) as api:
        code = ReportCodes(report_secret, demo_site.id, ["b03-u1"]).code_for("b03-u1")
        assert api.context.report_codes.unit_for(code) == "b03-u1"

        def report(address: str) -> Any:
            body = {"code": code, "description": "the hall light flickers"}
            return from_address(api, address).post("/api/v1/reports", json=body)

        assert report("192.0.2.1").status_code == 201
        assert report("192.0.2.2").status_code == 201
        limited = report("192.0.2.3")  # a new client, the same code
        assert limited.status_code == 429
        assert "too many reports with this unit's code" in limited.json()["detail"]


def test_tokens_are_masked_in_the_access_log(api: Api) -> None:
    mask_tokens_in_logs()  # idempotent: create_app did it already
    uvicorn.Config(api.app, log_level="warning")  # uvicorn's logging config keeps filters
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, TokenMaskFilter) for f in access.filters) == 1
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/events?access_token=eyJ.abc.def&x=1", "1.1", 200),
        None,
    )  # fmt: skip
    assert access.filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5000 - "GET /api/v1/events?access_token=***&x=1 HTTP/1.1" 200'
    )
