"""Sessions end when they should: after a logout, a password change, disabling, a building
change (also made by `facility users` in another process), and at the session's absolute end;
an open live-update stream ends at its next event. On SQLite and PostgreSQL (the revocation
state lives in the work-order database)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.auth.tokens import ISSUER
from facility.site import Site
from runtime import cli
from tests.api_support import PASSWORD, T0, Api, new_store, open_order, running_api, seen
from tests.fakes import FakeClock
from tests.unit.test_api_events import Server, read_events


@pytest.fixture
def api(demo_site: Site, db_url: str, clock: FakeClock) -> Iterator[Api]:
    with running_api(demo_site, new_store(db_url, clock), clock, session_max_s=3600) as api:
        yield api


@pytest.fixture(autouse=True)
def fast_cli_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """`facility users` hashes with the production cost; the tests' cheap one is enough."""
    monkeypatch.setattr("api.users_cli.Passwords", lambda: Passwords(FAST_FOR_TESTS))


def login(api: Api, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = api.client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    api.client.cookies.clear()  # the header only, unless a test keeps the cookie
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def me(api: Api, headers: dict[str, str]) -> Any:
    return api.client.get("/api/v1/auth/me", headers=headers)


def facility(url: str, *argv: str) -> int:
    """`facility ARGV --db-url URL`: what an operator runs in another process."""
    return cli.main([*argv, "--db-url", url])


def test_logout_ends_the_session_of_the_token_it_was_called_with(api: Api) -> None:
    first = login(api, "tech")
    other = login(api, "tech")  # another device of the same user
    refreshed = api.client.post("/api/v1/auth/refresh", headers=first)
    renewed = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    out = api.client.post("/api/v1/auth/logout", headers=renewed)
    assert out.status_code == 204
    assert 'facility_token=""' in out.headers["set-cookie"]
    # The token logged out with, and the one it was refreshed from: refused.
    for headers in (renewed, first):
        refused = me(api, headers)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "this session was logged out: log in again"}
    assert me(api, other).status_code == 200  # the other device's session goes on
    assert api.client.post("/api/v1/auth/refresh", headers=first).status_code == 401
    # Logging out again, or with no token at all, is fine.
    assert api.client.post("/api/v1/auth/logout", headers=first).status_code == 204
    assert api.client.post("/api/v1/auth/logout").status_code == 204


def test_logout_with_the_cookie_ends_that_session(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/login", json={"username": "steward", "password": PASSWORD}
    )  # the client keeps the cookie
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert api.client.get("/api/v1/buildings").status_code == 200
    assert api.client.post("/api/v1/auth/logout").status_code == 204
    assert me(api, headers).status_code == 401


def test_logout_everywhere_ends_every_session_of_the_user(api: Api) -> None:
    phone, desk = login(api, "dispatcher"), login(api, "dispatcher")
    done = api.client.post("/api/v1/users/me/logout-all", headers=phone)
    assert done.status_code == 204
    for headers in (phone, desk):
        assert me(api, headers).status_code == 401
    assert me(api, login(api, "dispatcher")).status_code == 200  # a new login works


def change_own(api: Api, headers: dict[str, str], current: str, new: str) -> Any:
    return api.client.put(
        "/api/v1/users/me/password",
        headers=headers,
        json={"current_password": current, "new_password": new},
    )


@pytest.mark.parametrize("username", ["tech", "steward", "dispatcher", "admin"])
def test_a_user_changes_their_own_password_and_only_this_session_goes_on(
    api: Api, username: str
) -> None:
    phone, desk = login(api, username), login(api, username)
    changed = change_own(api, desk, PASSWORD, "correct horse battery")
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["user"]["username"] == username
    assert "facility_token=" in changed.headers["set-cookie"]
    assert changed.headers["cache-control"] == "no-store"
    for headers in (phone, desk):  # every session before the change ends, this one too ...
        assert me(api, headers).status_code == 401
    goes_on = {"Authorization": f"Bearer {body['access_token']}"}
    assert me(api, goes_on).status_code == 200  # ... and goes on as the new one
    refused = api.client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert me(api, login(api, username, "correct horse battery")).status_code == 200


@pytest.mark.parametrize(
    ("current", "new", "status", "says"),
    [
        ("not-the-password", "correct horse battery", 403, "current password is wrong"),
        (PASSWORD, "short", 422, "at least 8 characters"),
        (PASSWORD, "x" * 257, 422, "at most 256 characters"),
        (PASSWORD, "two\nlines-password", 422, "pattern"),
        (PASSWORD, PASSWORD, 422, "the new password is the current one"),
        ("", "correct horse battery", 422, "at least 1 character"),
    ],
)
def test_a_bad_own_password_change_changes_nothing(
    api: Api, current: str, new: str, status: int, says: str
) -> None:
    headers = login(api, "tech")
    refused = change_own(api, headers, current, new)
    assert refused.status_code == status, refused.text
    assert says in refused.text
    assert me(api, headers).status_code == 200  # the session goes on
    assert me(api, login(api, "tech")).status_code == 200  # the old password still works


def test_own_password_changes_need_a_login_and_the_current_password_is_not_guessable(
    api: Api,
) -> None:
    assert change_own(api, {}, PASSWORD, "correct horse battery").status_code == 401
    headers = login(api, "tech")  # a session left open on a shared screen
    answers = [
        change_own(api, headers, f"guess-{i}", "correct horse battery").status_code
        for i in range(12)
    ]
    assert answers[0] == 403
    assert answers[-1] == 429  # the login back-off holds guesses through this route too
    assert api.post("/api/v1/users/tech/unlock", "admin").status_code == 200
    assert me(api, login(api, "tech")).status_code == 200  # nothing changed


def test_an_admin_sets_a_forgotten_password_and_the_users_sessions_end(api: Api) -> None:
    old_session = login(api, "tech")
    admin = login(api, "admin")
    done = api.client.put(
        "/api/v1/users/tech/password", headers=admin, json={"password": "given-by-phone"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["username"] == "tech"
    assert me(api, old_session).status_code == 401
    assert me(api, login(api, "tech", "given-by-phone")).status_code == 200
    assert me(api, admin).status_code == 200  # the admin's own session is untouched
    for who, path, body, status in [
        ("admin", "/api/v1/users/nobody/password", {"password": "given-by-phone"}, 404),
        ("admin", "/api/v1/users/tech/password", {"password": "short"}, 422),
        ("admin", "/api/v1/users/tech/password", {"password": "ok-length", "x": 1}, 422),
        ("dispatcher", "/api/v1/users/tech/password", {"password": "given-by-phone"}, 403),
        # An admin's own password takes the current one: not this route.
        ("admin", "/api/v1/users/admin/password", {"password": "given-by-phone"}, 422),
        ("admin", "/api/v1/users/me/password", {"password": "given-by-phone"}, 422),
    ]:
        headers = admin if who == "admin" else login(api, who)
        assert api.client.put(path, headers=headers, json=body).status_code == status, path
    assert me(api, login(api, "tech", "given-by-phone")).status_code == 200
    assert me(api, admin).status_code == 200  # the refused changes ended nothing
    assert me(api, login(api, "admin")).status_code == 200


def test_a_password_change_from_the_cli_ends_sessions_at_the_next_request(
    api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI is another process with its own engine: nothing in the API's memory knows."""
    headers = login(api, "tech")
    assert me(api, headers).status_code == 200
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password\n"))
    assert facility(db_url, "users", "passwd", "tech", "--password-stdin") == 0
    refused = me(api, headers)
    assert refused.status_code == 401
    assert "log in again" in refused.json()["detail"]
    assert me(api, login(api, "tech", "a-brand-new-password")).status_code == 200


def test_disabling_from_the_cli_ends_sessions_at_the_next_request(api: Api, db_url: str) -> None:
    headers = login(api, "plumber")
    assert me(api, headers).status_code == 200
    assert facility(db_url, "users", "disable", "plumber") == 0
    assert me(api, headers).status_code == 401
    assert (
        api.client.post(
            "/api/v1/auth/login", json={"username": "plumber", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert facility(db_url, "users", "enable", "plumber") == 0
    assert me(api, headers).status_code == 401  # enabling does not bring old tokens back
    assert me(api, login(api, "plumber")).status_code == 200


def test_a_building_change_ends_the_stewards_sessions(api: Api) -> None:
    headers = login(api, "steward")
    assert api.client.get("/api/v1/buildings/b03", headers=headers).status_code == 200
    changed = api.client.request(
        "PUT", "/api/v1/users/steward/buildings", headers=api.headers("admin"),
        json={"buildings": ["b07"]},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["buildings"] == ["b07"]
    assert api.client.get("/api/v1/buildings/b03", headers=headers).status_code == 401
    fresh = login(api, "steward")
    assert api.client.get("/api/v1/buildings/b03", headers=fresh).status_code == 404
    assert api.client.get("/api/v1/buildings/b07", headers=fresh).status_code == 200


def test_a_role_change_and_a_delete_end_sessions(api: Api, db_url: str) -> None:
    tech, plumber = login(api, "tech"), login(api, "plumber")
    assert facility(db_url, "users", "set-role", "tech", "dispatcher") == 0
    assert me(api, tech).status_code == 401
    assert me(api, login(api, "tech")).json()["role"] == "dispatcher"
    assert facility(db_url, "users", "delete", "plumber") == 0
    assert me(api, plumber).status_code == 401


def test_refresh_keeps_the_session_but_not_past_its_absolute_end(
    api: Api, clock: FakeClock
) -> None:
    """session_max_s = 3600 here: refreshing every 10 minutes ends after an hour."""
    response = api.client.post(
        "/api/v1/auth/login", json={"username": "dispatcher", "password": PASSWORD}
    )
    token = response.json()
    assert token["session_ends_at_ms"] == T0 + 3_600_000
    for _ in range(5):
        clock.now += 600_000
        refreshed = api.client.post(
            "/api/v1/auth/refresh",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert refreshed.status_code == 200
        token = refreshed.json()
        assert token["session_ends_at_ms"] == T0 + 3_600_000  # the session start travels
    assert token["expires_at_ms"] == T0 + 3_600_000  # capped at the session's end
    assert token["expires_in_s"] == 600
    clock.now += 600_000
    refused = api.client.post(
        "/api/v1/auth/refresh",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert refused.status_code == 401
    assert "log in again" in refused.json()["detail"]


def test_a_token_without_session_claims_is_refused(api: Api) -> None:
    """Tokens from before revocable sessions (no `ver`, `sid`, `auth_time`): log in again."""
    key = hashlib.sha256(b"token:" + api.context.settings.secret.encode()).digest()
    old = jwt.encode(
        {"sub": "admin", "uid": 1, "role": "admin", "iat": T0 // 1000, "exp": T0 // 1000 + 900,
         "iss": ISSUER},
        key, algorithm="HS256",
    )  # fmt: skip
    refused = me(api, {"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401
    assert "ver" in refused.json()["detail"]


# -- the live-update stream, over a real server -------------------------------------------------


@pytest.fixture
def streaming(demo_site: Site, tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock, sse_keepalive_s=30) as api:
        for device_id in ("b03-u1-el2", "b05-u1-el1"):
            seen(api.store, api.site, device_id, T0)
        api.app.state.monitor.poll_once()
        yield api


@pytest.mark.parametrize("change", ["disable", "buildings"])
def test_an_open_stream_ends_at_the_next_event_after_the_user_changes(
    streaming: Api, change: str
) -> None:
    api = streaming
    monitor = api.app.state.monitor
    steward = login(api, "steward")
    with Server(api.app) as server, httpx.Client(timeout=10) as http:
        url = f"http://127.0.0.1:{server.port}/api/v1/events"
        with http.stream("GET", url, headers=steward) as stream:
            lines = stream.iter_lines()
            read_events(lines, "ready")
            first = open_order(api.store, api.site, "b03-u1-el2")
            monitor.poll_once()
            events = read_events(lines, "building_status")
            assert events[0]["work_order_id"] == first

            if change == "disable":
                api.context.users.set_disabled("steward", True)
            else:  # b05 is still theirs, so its event would still be "visible" to the old scope
                api.context.users.set_buildings("steward", ["b05", "b07"])
            open_order(api.store, api.site, "b05-u1-el1")
            monitor.poll_once()
            tail = read_events(lines, "session_ended")
            assert [e["type"] for e in tail] == ["session_ended"]  # nothing else got through
            assert [line for line in lines if line] == []  # and the stream ended
        again = http.get(url, headers=steward)
        assert again.status_code == 401
