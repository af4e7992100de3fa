"""Logging in: tokens, cookies, back-off after failed logins, per-client limits, users, the CLI.

The back-off lives in the work-order database, so these run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.auth.tokens import TokenSigner
from api.auth.users import UserStore
from api.users_cli import ensure_demo_users
from db.engine import make_engine
from facility.site import Site
from runtime import cli
from tests.api_support import PASSWORD, T0, Api, new_store
from tests.fakes import FakeClock


def login(api: Api, username: str, password: str = PASSWORD) -> Any:
    return api.client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_gives_a_bearer_token_and_a_cookie(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/login", json={"username": "steward", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in_s"] == 900
    assert body["expires_at_ms"] == T0 + 900_000
    assert body["user"] == {
        "username": "steward",
        "display_name": "steward",
        "role": "steward",
        "team": None,
        "buildings": ["b03", "b05"],
        "sites": [],
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("facility_token=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/api/v1", "Max-Age=900"):
        assert attribute.lower() in cookie.lower()
    assert response.headers["cache-control"] == "no-store"

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.client.get("/api/v1/auth/me", headers=bearer).json()["username"] == "steward"


def test_wrong_password_and_unknown_user_get_the_same_answer(api: Api) -> None:
    wrong = api.client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope"})
    unknown = api.client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong username or password"}


def test_failed_logins_back_off_per_account_and_client(api: Api, clock: FakeClock) -> None:
    def attempt(password: str) -> Any:
        return api.client.post(
            "/api/v1/auth/login", json={"username": "tech", "password": password}
        )

    for _ in range(5):
        assert attempt("guess-again").status_code == 401
    waiting = attempt(PASSWORD)  # even the right password, while this client waits
    assert waiting.status_code == 429
    assert waiting.headers["retry-after"] == "1"
    assert "too many failed logins for this account from this client" in waiting.json()["detail"]
    assert login(api, "plumber").status_code == 200  # other accounts are not affected

    clock.now += 1_000
    assert attempt("guess-again").status_code == 401  # the sixth failure: 2 s to wait
    assert attempt(PASSWORD).headers["retry-after"] == "2"
    clock.now += 2_000
    assert attempt(PASSWORD).status_code == 200
    # A success resets the count: five more failures do not make this client wait.
    for _ in range(4):
        assert attempt("guess-again").status_code == 401
    assert attempt(PASSWORD).status_code == 200
    assert "facility_api_login_backoffs_total 2" in api.client.get("/metrics").text


def test_the_back_off_doubles_up_to_its_cap(api: Api, clock: FakeClock) -> None:
    waits = []
    for _ in range(30):
        response = login(api, "tech", "guess-again")
        if response.status_code == 429:
            waits.append(int(response.headers["retry-after"]))
            clock.now += waits[-1] * 1000
        api.context.login_limiter.forget("testclient")  # the per-client limit is tested elsewhere
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert waits[-1] == 300  # login_backoff_max_s
    clock.now += 3_600_000  # login_backoff_reset_s after the last failure: forgotten
    assert login(api, "tech").status_code == 200


def test_an_unknown_username_backs_off_like_a_known_one(api: Api, clock: FakeClock) -> None:
    """Otherwise the back-off would tell an attacker which usernames exist."""

    def attempts(username: str) -> list[Any]:
        return [
            api.client.post(
                "/api/v1/auth/login", json={"username": username, "password": "guess-again"}
            )
            for _ in range(6)
        ]

    known, unknown = attempts("tech"), attempts("no-such-user")

    def answers(responses: list[Any]) -> list[tuple[int, Any, str | None]]:
        return [(r.status_code, r.json(), r.headers.get("retry-after")) for r in responses]

    assert answers(known) == answers(unknown)
    assert [r.status_code for r in unknown] == [401] * 5 + [429]


def test_login_attempts_are_limited_per_client(api: Api, clock: FakeClock) -> None:
    for i in range(20):
        assert login(api, f"user{i}", "x").status_code == 401
    limited = login(api, "admin")
    assert limited.status_code == 429
    assert "from this client" in limited.json()["detail"]
    assert int(limited.headers["retry-after"]) == 60
    clock.now += 60_000
    assert login(api, "admin").status_code == 200


def test_tokens_expire_and_refresh(api: Api, clock: FakeClock) -> None:
    headers = api.headers("dispatcher")
    clock.now += 600_000
    refreshed = api.client.post("/api/v1/auth/refresh", headers=headers)
    assert refreshed.status_code == 200
    new = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    clock.now += 300_000  # the first token's 15 minutes are over
    expired = api.client.get("/api/v1/buildings", headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {"detail": "the token has expired: log in again"}
    assert expired.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/api/v1/buildings", headers=new).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer not-a-jwt", "Basic YWRtaW46eA==", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
def test_bad_tokens_are_401(api: Api, authorization: str) -> None:
    response = api.client.get("/api/v1/buildings", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_signed_with_another_secret_is_refused(api: Api) -> None:
    forged, _ = TokenSigner("another-secret" * 4, ttl_s=900, clock_ms=api.clock).issue(
        username="admin", user_id=1, role="admin"
    )
    response = api.client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "Signature verification failed" in response.json()["detail"]


def test_cookie_works_for_reads_not_for_changes(api: Api) -> None:
    assert login(api, "dispatcher").status_code == 200
    assert api.client.get("/api/v1/buildings").status_code == 200  # the cookie
    order = api.store.create_report(
        site_id="shangri-la", building_id="b01", unit_id="b01-u1", device_id=None, kind=None,
        description="broken light",
    )  # fmt: skip
    change = api.client.post(
        f"/api/v1/work-orders/{order.id}/transitions", json={"to": "acknowledged"}
    )
    assert change.status_code == 401
    assert "Authorization header" in change.json()["detail"]
    assert api.client.post("/api/v1/auth/logout").status_code == 204
    assert api.client.get("/api/v1/buildings").status_code == 401


def test_the_query_token_is_only_for_the_event_stream(api: Api) -> None:
    token = api.headers("admin")["Authorization"].removeprefix("Bearer ")
    response = api.client.get("/api/v1/buildings", params={"access_token": token})
    assert response.status_code == 401


def test_disabled_and_deleted_users_lose_access_at_once(api: Api) -> None:
    headers = api.headers("tech")
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 200
    api.context.users.set_disabled("tech", True)
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert login(api, "tech").status_code == 401
    headers = api.headers("plumber")
    api.context.users.delete("plumber")
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_admins_add_and_list_users(api: Api) -> None:
    created = api.post(
        "/api/v1/users",
        "admin",
        {"username": "s2", "password": "long-enough", "role": "steward", "buildings": ["b07"]},
    )
    assert created.status_code == 422  # "s2" is too short a name
    created = api.post(
        "/api/v1/users",
        "admin",
        {"username": "steward2", "password": "long-enough", "role": "steward",
         "buildings": ["b07"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["buildings"] == ["b07"]
    assert login(api, "steward2", "long-enough").status_code == 200
    names = [u["username"] for u in api.get("/api/v1/users", "admin").json()]
    assert names == ["admin", "dispatcher", "plumber", "steward", "steward2", "tech"]
    assert "password_hash" not in api.get("/api/v1/users", "admin").text

    assert api.get("/api/v1/users", "dispatcher").status_code == 403
    assert api.post("/api/v1/users", "tech", {}).status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"role": "technician"}, "a technician needs a team"),
        ({"role": "steward"}, "a steward needs at least one building"),
        ({"role": "steward", "buildings": ["b99"]}, "no building(s) 'b99'"),
        ({"role": "admin", "buildings": ["b01"]}, "only stewards are assigned buildings"),
        ({"role": "admin", "username": "admin"}, "exists already"),
    ],
)
def test_bad_users_are_422_saying_why(api: Api, body: dict[str, object], message: str) -> None:
    payload = {"username": "newbie", "password": "long-enough", **body}
    response = api.post("/api/v1/users", "admin", payload)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "admin"},
        {"username": "admin", "password": PASSWORD, "role": "admin"},  # no mass assignment
        {"username": ["admin"], "password": PASSWORD},
        {"username": "", "password": PASSWORD},
    ],
)
def test_bad_login_bodies_are_422(api: Api, body: dict[str, object]) -> None:
    response = api.client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_facility_users_add_and_list(
    tmp_path: object,
    demo_site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path}/wo.sqlite3"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-good-password\n"))
    code = cli.main(
        ["users", "add", "mei", "--role", "steward", "--building", "b03", "--building", "b04",
         "--password-stdin", "--db-url", url],
    )  # fmt: skip
    assert code == 0
    assert "user 'mei' added: steward, buildings b03, b04" in capsys.readouterr().out
    users = UserStore(make_engine(url), Passwords(FAST_FOR_TESTS))
    assert users.authenticate("mei", "a-good-password").buildings == {"b03", "b04"}

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code = cli.main(
        ["users", "add", "li-na", "--role", "admin", "--password-stdin", "--db-url", url]
    )
    assert code == 2
    assert "a password needs 8 to 256 characters" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough\n"))
    code = cli.main(
        ["users", "add", "li-na", "--role", "steward", "--building", "b99", "--password-stdin",
         "--db-url", url],
    )  # fmt: skip
    assert code == 2
    assert "no building(s) 'b99' in the site" in capsys.readouterr().err

    assert cli.main(["users", "list", "--db-url", url]) == 0
    assert "mei" in capsys.readouterr().out


def test_demo_users_are_made_once_and_never_reset(db_url: str, demo_site: Site) -> None:
    """`facility up` on an existing database keeps the accounts' passwords (and prints no
    login for them): a demo admin that became a real one stays theirs."""
    engine = make_engine(db_url)
    store = new_store(db_url, FakeClock(T0))
    first = ensure_demo_users(store.engine, demo_site, "demo-password-1")
    assert [(u.username, u.role) for u in first.created] == [
        ("admin", "admin"), ("dispatcher", "dispatcher"), ("tech", "technician"),
        ("steward", "steward"),
    ]  # fmt: skip
    users = UserStore(engine, Passwords())
    users.set_password("admin", "the-real-admins-password")
    users.set_buildings("steward", ["b07"])
    again = ensure_demo_users(store.engine, demo_site, "demo-password-2")
    assert again.created == []
    assert again.kept == ["admin", "dispatcher", "tech", "steward"]
    assert users.authenticate("admin", "the-real-admins-password").username == "admin"
    assert users.authenticate("dispatcher", "demo-password-1").username == "dispatcher"
    steward = users.authenticate("steward", "demo-password-1")
    assert steward.buildings == {"b07"}
    assert users.by_username("tech").team == "lift-contractor"  # type: ignore[union-attr]
    engine.dispose()
    store.engine.dispose()
