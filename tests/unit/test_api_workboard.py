"""The maintenance board's API on SQLite and PostgreSQL: every lifecycle action with its role
rules and bad input, teams as a managed list, the SLA clock stopping at resolve, search and
time filters over finished orders, and the maintenance history of a device and a building."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from alerts.faults import FaultCleared
from alerts.workorders import ResolutionCode
from api.schemas import ResolutionCode as ResolutionCodeName
from tests.api_support import T0, Api, open_order
from tests.fakes import FakeClock

MINUTE = 60_000
HOUR = 60 * MINUTE


def act(api: Api, order: int, username: str, route: str, body: Any) -> Any:
    return api.post(f"/api/v1/work-orders/{order}/{route}", username, body)


def move(api: Api, order: int, username: str, to: str, **extra: Any) -> Any:
    return act(api, order, username, "transitions", {"to": to, **extra})


def problem(response: Any) -> tuple[list[str], str]:
    """The first 422 problem's location and message."""
    assert response.status_code == 422, response.text
    first = response.json()["detail"][0]
    return first["loc"], first["msg"]


def clear(api: Api, device_id: str, at_ms: int) -> None:
    api.store.record_clears([FaultCleared("test.rule", device_id, at_ms)])


def test_resolution_codes_are_the_same_list_in_the_api_and_the_domain() -> None:
    assert set(get_args(ResolutionCodeName)) == {str(c) for c in ResolutionCode}


def test_a_day_of_one_order_every_action_in_its_history(api: Api, clock: FakeClock) -> None:
    order = open_order(api.store, api.site, "b03-u1-el2")  # critical, team lift-contractor

    assigned = act(api, order, "dispatcher", "assign", {"assignee": "tech", "note": "closest"})
    assert assigned.json()["assignee"] == "tech"
    clock.now = T0 + 5 * MINUTE
    assert move(api, order, "tech", "acknowledged").json()["responded_ms"] == T0 + 5 * MINUTE
    assert move(api, order, "tech", "in_progress").status_code == 200
    until = T0 + 26 * HOUR
    held = move(api, order, "tech", "on_hold", note="waiting for a door motor", hold_until_ms=until)
    assert held.status_code == 200, held.text
    assert (held.json()["hold_reason"], held.json()["hold_until_ms"]) == (
        "waiting for a door motor",
        until,
    )
    comment = act(api, order, "steward", "comments", {"text": "residents use the other car"})
    assert comment.status_code == 201
    back = move(api, order, "tech", "in_progress")
    assert (back.json()["hold_reason"], back.json()["hold_until_ms"]) == (None, None)

    # The fault is still on: resolving needs a confirmation.
    clock.now = T0 + 2 * HOUR
    refused = move(api, order, "tech", "resolved", resolution_code="part_replaced", note="motor")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"the fault behind work order {order} is still active (it has not cleared);"
        " resolve it anyway only with confirm_active: true"
    )
    assert api.store.get(order).status == "in_progress"
    done = move(
        api, order, "tech", "resolved", resolution_code="part_replaced", note="motor",
        confirm_active=True,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["resolution_code"]) == ("resolved", "part_replaced")
    assert (body["time_to_respond_s"], body["time_to_repair_s"]) == (300.0, 7200.0)

    # Closing and reopening are the dispatcher's.
    assert move(api, order, "tech", "closed").status_code == 403
    reopened = move(api, order, "dispatcher", "open", note="doors still slow")
    assert reopened.status_code == 200
    assert (reopened.json()["resolution_code"], reopened.json()["time_to_repair_s"]) == (None, None)
    clear(api, "b03-u1-el2", T0 + 3 * HOUR)
    clock.now = T0 + 4 * HOUR
    again = move(api, order, "dispatcher", "resolved", resolution_code="adjusted")
    assert again.status_code == 200, again.text  # the fault cleared: no confirmation
    assert move(api, order, "dispatcher", "closed", note="checked").json()["status"] == "closed"

    history = api.get(f"/api/v1/work-orders/{order}", "admin").json()["history"]
    assert [(e["event"], e["actor"], e["to_status"]) for e in history] == [
        ("created", "system", "open"),
        ("assigned", "dispatcher", None),
        ("transition", "tech", "acknowledged"),
        ("transition", "tech", "in_progress"),
        ("transition", "tech", "on_hold"),
        ("comment", "steward", None),
        ("transition", "tech", "in_progress"),
        ("transition", "tech", "resolved"),
        ("transition", "dispatcher", "open"),
        ("cleared", "system", None),
        ("transition", "dispatcher", "resolved"),
        ("transition", "dispatcher", "closed"),
    ]
    hold = history[4]
    assert (hold["note"], hold["due_ms"]) == ("waiting for a door motor", until)
    resolve = history[7]
    assert resolve["code"] == "part_replaced"
    assert resolve["note"] == "motor (resolved while the fault was still active, confirmed)"
    assert history[8]["note"] == "doors still slow"


def test_acknowledging_or_starting_takes_an_unassigned_order(api: Api) -> None:
    first = open_order(api.store, api.site, "b03-u1-el1", rule_id="r1")
    second = open_order(api.store, api.site, "b03-u1-el2", rule_id="r2")
    assert move(api, first, "tech", "acknowledged").json()["assignee"] == "tech"
    assert move(api, second, "dispatcher", "in_progress").json()["assignee"] == "dispatcher"
    act(api, second, "dispatcher", "assign", {"assignee": "admin"})
    # Already someone's: starting it does not take it over.
    assert (
        move(api, second, "tech", "on_hold", note="x", hold_until_ms=T0 + HOUR).status_code == 200
    )
    assert move(api, second, "tech", "in_progress").json()["assignee"] == "admin"
    assigned = [
        (e["actor"], e["note"])
        for e in api.get(f"/api/v1/work-orders/{first}", "admin").json()["history"]
        if e["event"] == "assigned"
    ]
    assert assigned == [("tech", "assignee: tech, team: lift-contractor; took it on")]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"to": "on_hold", "hold_until_ms": T0 + HOUR}, ["body", "note"], "needs a reason"),
        ({"to": "on_hold", "note": "  ", "hold_until_ms": T0 + HOUR}, ["body", "note"],
         "needs a reason"),
        ({"to": "on_hold", "note": "parts"}, ["body", "hold_until_ms"], "needs the date"),
        ({"to": "on_hold", "note": "parts", "hold_until_ms": T0 - 1}, ["body", "hold_until_ms"],
         "in the future"),
        ({"to": "on_hold", "note": "parts", "hold_until_ms": T0 + 367 * 24 * HOUR},
         ["body", "hold_until_ms"], "at most 366 days"),
        ({"to": "on_hold", "note": "parts", "hold_until_ms": -5}, ["body", "hold_until_ms"],
         "greater than or equal to 0"),
        ({"to": "on_hold", "note": "parts", "hold_until_ms": "tomorrow"},
         ["body", "hold_until_ms"], "valid integer"),
        ({"to": "in_progress", "hold_until_ms": T0 + HOUR}, ["body", "hold_until_ms"],
         "only for on_hold"),
        ({"to": "resolved", "confirm_active": True}, ["body", "resolution_code"],
         "needs a resolution_code"),
        ({"to": "resolved", "resolution_code": "fixed it"}, ["body", "resolution_code"],
         "Input should be"),
        ({"to": "acknowledged", "resolution_code": "repaired"}, ["body", "resolution_code"],
         "only for resolved"),
        ({"to": "cancelled"}, ["body", "note"], "needs a reason"),
        ({"to": "resolved", "resolution_code": "repaired", "confirm_active": "maybe"},
         ["body", "confirm_active"], "valid boolean"),
    ],
)  # fmt: skip
def test_bad_transitions_are_422_naming_the_field(
    api: Api, body: dict[str, Any], loc: list[str], message: str
) -> None:
    order = open_order(api.store, api.site, "pump-1")
    before = api.store.get(order)
    got_loc, got_message = problem(act(api, order, "dispatcher", "transitions", body))
    assert got_loc == loc
    assert message in got_message
    assert api.store.get(order) == before
    assert [e.event for e in api.store.history(order)] == ["created"]


def test_cancel_needs_a_reason_and_a_dispatcher(api: Api) -> None:
    order = open_order(api.store, api.site, "b03-u1-el1")
    refused = move(api, order, "tech", "cancelled", note="duplicate of the report")
    assert refused.status_code == 403
    assert "cancel, close and reopen are for a dispatcher or admin" in refused.json()["detail"]
    cancelled = move(api, order, "dispatcher", "cancelled", note="duplicate of the report")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    # Final: nothing moves it, no one is assigned to it any more.
    assert move(api, order, "admin", "open", note="again").status_code == 409
    assert act(api, order, "admin", "assign", {"assignee": "tech"}).status_code == 409


def test_role_refusals(api: Api) -> None:
    pump = open_order(api.store, api.site, "pump-1")  # plumbing's
    lift = open_order(api.store, api.site, "b03-u1-el1")  # in the steward's building
    assert move(api, pump, "tech", "acknowledged").status_code == 403  # another team's
    assert move(api, lift, "steward", "acknowledged").status_code == 403
    assert act(api, lift, "steward", "comments", {"text": "seen it"}).status_code == 201
    assert act(api, pump, "steward", "comments", {"text": "x"}).status_code == 404  # not theirs
    team = act(api, lift, "tech", "assign", {"assignee": "tech", "team": "plumbing"})
    assert team.status_code == 403
    assert act(api, lift, "tech", "assign", {"assignee": "tech"}).status_code == 200
    assert act(api, lift, "steward", "assign", {"assignee": "tech"}).status_code == 403


def test_unknown_orders_are_404_for_every_action(api: Api) -> None:
    for route, body in (
        ("transitions", {"to": "acknowledged"}),
        ("assign", {"assignee": "tech"}),
        ("comments", {"text": "hello"}),
    ):
        response = act(api, 4242, "admin", route, body)
        assert (response.status_code, response.json()) == (404, {"detail": "no work order 4242"})


def test_teams_are_a_managed_list(api: Api) -> None:
    order = open_order(api.store, api.site, "pump-1")
    known = ["access-control", "electrical", "lift-contractor", "maintenance", "plumbing"]
    assert api.get("/api/v1/teams", "tech").json() == known

    typo = act(api, order, "dispatcher", "assign", {"assignee": None, "team": "plumbnig"})
    loc, message = problem(typo)
    assert loc == ["body", "team"]
    assert message == f"no team 'plumbnig' (known: {', '.join(known)})"
    assert api.store.get(order).team == "plumbing"

    assert api.post("/api/v1/teams", "dispatcher", {"name": "roofing"}).status_code == 403
    added = api.post("/api/v1/teams", "admin", {"name": "roofing"})
    assert (added.status_code, "roofing" in added.json()) == (201, True)
    assert problem(api.post("/api/v1/teams", "admin", {"name": "roofing"}))[1] == (
        "team 'roofing' exists already"
    )
    for bad in ("Roofing", "", "a b", "x" * 65, "-x"):
        assert problem(api.post("/api/v1/teams", "admin", {"name": bad}))[0] == ["body", "name"]
    moved = act(api, order, "dispatcher", "assign", {"assignee": None, "team": "roofing"})
    assert moved.json()["team"] == "roofing"

    headers = api.headers("admin")
    assert api.client.delete("/api/v1/teams/roofing", headers=headers).status_code == 204
    assert api.client.delete("/api/v1/teams/roofing", headers=headers).status_code == 404
    tech = api.headers("tech")
    assert api.client.delete("/api/v1/teams/plumbing", headers=tech).status_code == 403
    assert api.store.get(order).team == "roofing"  # its history stays true
    assert problem(act(api, order, "dispatcher", "assign", {"assignee": None, "team": "roofing"}))


def test_assignees_are_the_staff_who_can_take_orders(api: Api) -> None:
    people = api.get("/api/v1/assignees", "dispatcher").json()
    assert sorted(p["username"] for p in people) == ["admin", "dispatcher", "plumber", "tech"]
    assert {p["username"]: p["team"] for p in people}["tech"] == "lift-contractor"
    assert api.get("/api/v1/assignees", "steward").status_code == 403


def test_the_sla_clock_stops_at_resolve(api: Api, clock: FakeClock) -> None:
    order = open_order(api.store, api.site, "pump-1")  # critical: resolve within 4 h
    clock.now = T0 + 30 * MINUTE
    move(api, order, "dispatcher", "resolved", resolution_code="reset", confirm_active=True)
    clock.now = T0 + 30 * 24 * HOUR
    body = api.get(f"/api/v1/work-orders/{order}", "admin").json()
    assert (body["overdue"], body["time_to_repair_s"]) == (False, 1800.0)
    assert body["time_to_respond_s"] == 1800.0  # resolving was the first response
    listed = api.get("/api/v1/work-orders", "admin", params={"overdue": "true"}).json()
    assert listed["total"] == 0


def ids(api: Api, username: str = "dispatcher", **params: Any) -> list[int]:
    response = api.get("/api/v1/work-orders", username, params=params)
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


def test_search_and_time_range_cover_finished_orders(api: Api, clock: FakeClock) -> None:
    store, site = api.store, api.site
    lift = open_order(store, site, "b03-u1-el1", rule_id="lift.trapped")
    clock.now = T0 + HOUR
    pump = open_order(store, site, "pump-1", rule_id="pump.dry", started_ms=T0 + HOUR)
    act(api, pump, "dispatcher", "comments", {"text": "Seal kit 50% worn_out"})
    move(api, pump, "dispatcher", "resolved", resolution_code="repaired", confirm_active=True)
    move(api, pump, "dispatcher", "closed", note="signed off")

    assert ids(api, q="SEAL KIT") == [pump]  # a comment, case-insensitive, a closed order
    assert ids(api, q="50%") == [pump]
    assert ids(api, q="0%") == [pump]
    assert ids(api, q="l_k") == []  # `_` is a character, not a wildcard ("seal kit")
    assert ids(api, q="worn_out") == [pump]
    assert ids(api, q="lift.trapped on") == [lift]  # the title
    assert ids(api, q="b03-u1-el1") == [lift]  # the device
    assert ids(api, q="lift-contractor") == [lift]  # the team
    assert ids(api, q="nothing like it") == []
    assert ids(api, q="seal", status="open") == []
    assert ids(api, start_ms=T0 + 1, end_ms=T0 + 2 * HOUR) == [pump]
    assert ids(api, start_ms=T0, end_ms=T0 + 1) == [lift]
    assert ids(api, end_ms=T0 + HOUR) == [lift]
    assert ids(api, "steward", q="seal") == []  # the pump is not in the steward's buildings

    for params, loc in (
        ({"start_ms": 10, "end_ms": 10}, ["query", "end_ms"]),
        ({"start_ms": -1}, ["query", "start_ms"]),
        ({"end_ms": "yesterday"}, ["query", "end_ms"]),
        ({"q": "x" * 201}, ["query", "q"]),
        ({"q": "  "}, ["query", "q"]),
        ({"q": "line\nbreak"}, ["query", "q"]),
    ):
        response = api.get("/api/v1/work-orders", "admin", params=params)
        assert problem(response)[0] == loc, params


def test_maintenance_history_of_a_device_and_its_building(api: Api, clock: FakeClock) -> None:
    store, site = api.store, api.site
    first = open_order(store, site, "b03-u1-el2", rule_id="r1")
    clock.now = T0 + 10 * MINUTE
    move(api, first, "tech", "acknowledged")
    clock.now = T0 + HOUR
    move(api, first, "tech", "resolved", resolution_code="adjusted", confirm_active=True)
    clock.now = T0 + 2 * HOUR
    second = open_order(store, site, "b03-u1-el2", rule_id="r2", started_ms=T0 + 2 * HOUR)
    clock.now = T0 + 2 * HOUR + 20 * MINUTE
    move(api, second, "dispatcher", "in_progress")
    elsewhere = open_order(store, site, "b03-u1-el1", rule_id="r1")
    open_order(store, site, "pump-1", rule_id="r1")

    got = api.get("/api/v1/devices/b03-u1-el2/maintenance", "steward")
    assert got.status_code == 200, got.text
    history = got.json()
    assert [o["id"] for o in history["items"]] == [second, first]
    assert (history["orders"], history["faults"]) == (2, 2)
    assert history["mean_time_to_respond_s"] == pytest.approx((600 + 1200) / 2)
    assert history["mean_time_to_repair_s"] == pytest.approx(3600)
    actions = [(a["event"], a["actor"]) for a in history["items"][1]["actions"]]
    assert actions == [
        ("created", "system"),
        ("transition", "tech"),
        ("assigned", "tech"),
        ("transition", "tech"),
    ]
    assert history["items"][1]["resolution_code"] == "adjusted"

    building = api.get("/api/v1/buildings/b03/maintenance", "steward", params={"limit": 2}).json()
    assert building["orders"] == 3
    assert building["faults"] == 3
    assert [o["id"] for o in building["items"]] == [elsewhere, second]
    page2 = api.get(
        "/api/v1/buildings/b03/maintenance", "steward", params={"limit": 2, "offset": 2}
    ).json()
    assert [o["id"] for o in page2["items"]] == [first]

    empty = api.get(
        "/api/v1/devices/b03-u1-el2/maintenance", "admin",
        params={"start_ms": T0 + 5 * HOUR, "end_ms": T0 + 6 * HOUR},
    ).json()  # fmt: skip
    assert (empty["orders"], empty["faults"], empty["items"]) == (0, 0, [])
    assert empty["mean_time_to_repair_s"] is None

    assert api.get("/api/v1/devices/pump-1/maintenance", "steward").status_code == 404
    assert api.get("/api/v1/devices/nope/maintenance", "admin").status_code == 404
    for params in ({"start_ms": 9, "end_ms": 9}, {"start_ms": 0, "end_ms": T0}, {"limit": 0}):
        response = api.get("/api/v1/buildings/b03/maintenance", "admin", params=params)
        assert response.status_code == 422, params


def test_a_users_team_must_be_on_the_list(api: Api) -> None:
    new = {"username": "li-wei", "password": "long-enough-1", "role": "technician"}
    loc, message = problem(api.post("/api/v1/users", "admin", {**new, "team": "lift-contracter"}))
    assert (loc, message.startswith("no team 'lift-contracter' (known: ")) == (
        ["body", "team"],
        True,
    )
    created = api.post("/api/v1/users", "admin", {**new, "team": "lift-contractor"})
    assert created.status_code == 201, created.text
    role = {"role": "technician", "team": "plumbin"}
    refused = api.client.put("/api/v1/users/li-wei/role", headers=api.headers("admin"), json=role)
    assert problem(refused)[0] == ["body", "team"]
    assert api.context.users.by_username("li-wei").team == "lift-contractor"  # type: ignore[union-attr]
