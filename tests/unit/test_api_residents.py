"""The residents' side through the API, on SQLite and PostgreSQL: problems in words on the
buildings, reports counting in a building's status and listed for its steward with notes and
photos, the phone form's post and its photo limits, the public status page, and the links
and QR codes printed for the stairwells."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from alerts.interface import Severity
from api.settings import ApiSettings
from facility.errors import SettingsError
from facility.site import Site
from tests import images
from tests.api_support import SECRET, Api, new_store, open_order, running_api
from tests.fakes import FakeClock
from tests.polling import wait_until

PNG = images.png()
JPEG = images.jpeg()
WEBP = images.webp()
GIF = b"GIF89a" + b"\x00" * 64


def code_of(api: Api, unit_id: str) -> str:
    code: str = api.get(f"/api/v1/units/{unit_id}/report-code", "admin").json()["code"]
    return code


def links(api: Api, building_id: str = "b03", username: str = "steward") -> dict[str, Any]:
    response = api.get(f"/api/v1/buildings/{building_id}/public-links", username)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def post_form(api: Api, fields: dict[str, str], photo: tuple[str, bytes, str] | None = None) -> Any:
    files = {"photo": photo} if photo is not None else None
    return api.client.post("/api/v1/reports/form", data=fields, files=files)


def summary(api: Api, building_id: str, username: str = "steward") -> dict[str, Any]:
    found: dict[str, Any] = next(
        b for b in api.get("/api/v1/buildings", username).json() if b["id"] == building_id
    )
    return found


# -- stewards see why ----------------------------------------------------------------------------


def test_a_tile_names_its_worst_problems_in_both_languages(api: Api) -> None:
    site, store = api.site, api.store
    open_order(store, site, "b03-u1-el1", rule_id="elevator.door_slow", severity=Severity.WARNING)
    trapped = open_order(store, site, "b03-u1-el2", rule_id="elevator.entrapment")
    open_order(store, site, "b03-u2-door", rule_id="gate.forced_open", severity=Severity.MAJOR)
    open_order(store, site, "b03-u2-stair", rule_id="lighting.lamp_failures",
               severity=Severity.WARNING)  # fmt: skip
    building = summary(api, "b03")
    assert building["status"] == "alarm"
    assert building["open_work_orders"] == 4
    problems = building["problems"]
    assert [p["text"]["en"] for p in problems] == [
        "Elevator 2: passenger trapped",
        "Unit door: forced open",
        "Elevator 1: doors slow",
    ]
    assert problems[0]["text"]["zh-CN"] == "2号电梯：困人"
    assert problems[0]["work_order_id"] == trapped
    assert problems[0]["severity"] == "critical"
    status = api.get("/api/v1/buildings/b03/status", "steward").json()
    assert status["problems"] == problems
    assert summary(api, "b05")["problems"] == []


def test_a_residents_report_keeps_the_building_from_green_and_is_counted(api: Api) -> None:
    assert summary(api, "b05")["status"] in ("ok", "unknown")
    created = api.client.post(
        "/api/v1/reports",
        json={"code": code_of(api, "b05-u1"), "description": "The hallway smells of smoke"},
    )
    assert created.status_code == 201, created.text
    building = summary(api, "b05")
    assert building["status"] == "warning"
    assert (building["open_work_orders"], building["open_reports"]) == (1, 1)
    assert building["problems"][0]["text"] == {"en": "Resident report", "zh-CN": "住户报修"}
    api.store.transition(
        created.json()["work_order_id"], "resolved", actor="dispatcher",
        resolution_code="repaired",
    )  # fmt: skip
    assert summary(api, "b05")["open_reports"] == 0
    assert summary(api, "b05")["status"] != "warning"


def test_a_steward_reads_their_buildings_reports_and_adds_a_note(api: Api) -> None:
    code = code_of(api, "b03-u1")
    first = post_form(
        api, {"code": code, "description": "Lift 2 is stuck", "device_id": "b03-u1-el2",
              "contact": "room 1203"},
        ("lift.png", PNG, "image/png"),
    ).json()["work_order_id"]  # fmt: skip
    second = api.client.post(
        "/api/v1/reports", json={"code": code, "description": "Light out on floor 7"}
    ).json()["work_order_id"]
    note = api.post(
        f"/api/v1/work-orders/{first}/comments", "steward", {"text": "Saw it: stuck at floor 4"}
    )
    assert note.status_code == 201, note.text
    api.store.transition(second, "cancelled", actor="dispatcher", note="duplicate")

    page = api.get("/api/v1/buildings/b03/reports", "steward").json()
    assert (page["total"], [i["work_order_id"] for i in page["items"]]) == (1, [first])
    item = page["items"][0]
    assert item["status"] == "open"
    assert (item["unit_name"], item["device_name"]) == ("Building 3 Unit 1", "Elevator 2")
    assert item["text"] == "Lift 2 is stuck\n\ncontact: room 1203"
    assert [(n["actor"], n["note"]) for n in item["notes"]] == [
        ("steward", "Saw it: stuck at floor 4")
    ]
    (photo,) = item["photos"]
    stored = api.get(photo["url"], "steward").content
    assert (photo["media_type"], photo["size_bytes"]) == ("image/png", len(stored))
    assert images.pixels(stored) == images.pixels(PNG)  # the picture, losslessly
    every = api.get("/api/v1/buildings/b03/reports", "steward", params={"state": "all"}).json()
    assert [(i["work_order_id"], i["status"]) for i in every["items"]] == [
        (second, "cancelled"), (first, "open"),
    ]  # fmt: skip

    # Only their buildings; bad parameters are 422s.
    assert api.get("/api/v1/buildings/b01/reports", "steward").status_code == 404
    assert api.get("/api/v1/buildings/b01/reports", "dispatcher").status_code == 200
    for params in ({"state": "closed"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        answer = api.get("/api/v1/buildings/b03/reports", "steward", params=params)
        assert answer.status_code == 422, params


def test_staff_see_a_reports_photo_by_its_id(api: Api) -> None:
    order_id = post_form(
        api, {"code": code_of(api, "b03-u2"), "description": "Broken step at the door"},
        ("IMG 0001.jpeg", JPEG, "application/octet-stream"),  # the bytes decide, not the name
    ).json()["work_order_id"]  # fmt: skip
    (listed,) = api.get(f"/api/v1/work-orders/{order_id}/photos", "dispatcher").json()
    assert listed["url"] == f"/api/v1/work-orders/{order_id}/photos/{listed['id']}"
    answer = api.get(listed["url"], "steward")
    assert answer.status_code == 200
    assert images.pixels(answer.content)[:2] == ((4, 2), "JPEG")
    assert images.SECRET_PLACE.encode() in JPEG
    assert images.SECRET_PLACE.encode() not in answer.content  # nor the phone's GPS, camera
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "IMG" not in answer.headers["content-disposition"]
    assert f"report-{order_id}-photo-{listed['id']}.jpg" in answer.headers["content-disposition"]
    assert api.get(f"{listed['url']}0", "steward").status_code == 404  # no such photo
    other = open_order(api.store, api.site, "b01-u1-el1")
    assert api.get(f"/api/v1/work-orders/{other}/photos/{listed['id']}", "admin").status_code == 404
    assert api.client.get(listed["url"]).status_code == 401  # no login, no photo
    assert api.get(f"/api/v1/work-orders/{order_id}/photos/abc", "admin").status_code == 422


# -- the residents' form -------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "media_type"), [(PNG, "image/png"), (WEBP, "image/webp")])
def test_the_form_takes_a_photo_checked_by_its_bytes(
    api: Api, data: bytes, media_type: str
) -> None:
    response = post_form(
        api, {"code": code_of(api, "b03-u1"), "description": "Water on the stairs"},
        ("photo.bin", data, "text/plain"),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    order_id = response.json()["work_order_id"]
    (photo,) = api.get(f"/api/v1/work-orders/{order_id}/photos", "admin").json()
    assert photo["media_type"] == media_type


def test_photos_wait_for_threads_of_their_own_while_reads_go_on(
    demo_site: Site, db_url: str, clock: FakeClock
) -> None:
    """Every photo thread busy (a burst's decodes; here held by the test): the next photo waits
    for one holding none of the database's threads, so a read on the only worker thread
    answers meanwhile; once a photo thread is free the waiting photo is decoded and filed."""
    with running_api(
        demo_site, new_store(db_url, clock), clock,
        worker_threads=1, photo_threads=1, inline_reads=False,
    ) as api:  # fmt: skip
        portal = api.client.portal
        assert portal is not None
        limiter = portal.call(api.context.photo_decodes.limiter)
        decoding = object()
        portal.call(limiter.acquire_on_behalf_of_nowait, decoding)
        fields = {"code": code_of(api, "b03-u1"), "description": "Water on the stairs"}
        answers: list[Any] = []
        upload = threading.Thread(
            target=lambda: answers.append(post_form(api, fields, ("a.jpg", JPEG, "image/jpeg")))
        )
        upload.start()
        try:
            assert wait_until(lambda: portal.call(limiter.statistics).tasks_waiting == 1)
            assert api.get("/api/v1/buildings", "steward").status_code == 200
            assert answers == []
        finally:
            portal.call(limiter.release_on_behalf_of, decoding)
            upload.join(timeout=30)
        assert answers[0].status_code == 201, answers[0].text
        order_id = answers[0].json()["work_order_id"]
        (photo,) = api.get(f"/api/v1/work-orders/{order_id}/photos", "admin").json()
        assert photo["media_type"] == "image/jpeg"


def test_the_form_without_a_photo_and_with_an_empty_file_field(api: Api) -> None:
    code = code_of(api, "b03-u1")
    assert post_form(api, {"code": code, "description": "No photo here"}).status_code == 201
    empty = post_form(api, {"code": code, "description": "Empty file input"}, ("", b"", ""))
    assert empty.status_code == 201, empty.text
    order_id = empty.json()["work_order_id"]
    assert api.get(f"/api/v1/work-orders/{order_id}/photos", "admin").json() == []


@pytest.mark.parametrize(
    ("photo", "status", "says"),
    [
        (("cat.gif", GIF, "image/jpeg"), 415, "JPEG, PNG or WebP"),  # lies about its type
        (("a.jpg", b"<script>alert(1)</script>", "image/jpeg"), 415, "JPEG, PNG or WebP"),
        (("tiny.jpg", b"\xff\xd8", "image/jpeg"), 415, "JPEG, PNG or WebP"),
        (("cut.jpg", JPEG[:300], "image/jpeg"), 415, "JPEG, PNG or WebP"),  # starts like one
        (("bomb.png", images.png_claiming(20_000, 20_000), "image/png"), 413, "megapixels"),
        (("big.png", PNG + b"\x00" * 2048, "image/png"), 413, "larger than"),
    ],
)
def test_bad_photos_are_refused_and_file_nothing(
    demo_site: Any,
    db_url: str,
    clock: FakeClock,
    photo: tuple[str, bytes, str],
    status: int,
    says: str,
) -> None:
    from tests.api_support import new_store, running_api  # noqa: PLC0415

    store = new_store(db_url, clock)
    with running_api(demo_site, store, clock, report_photo_max_bytes=1024) as api:
        code = code_of(api, "b03-u1")
        response = post_form(api, {"code": code, "description": "Look at this"}, photo)
        assert response.status_code == status, response.text
        assert says in response.json()["detail"]
        assert store.list_work_orders() == []


def test_a_photo_is_decoded_only_for_a_known_code_within_the_limits(api: Api) -> None:
    """Decoding costs CPU and memory: an unknown code or a client over its limit is answered
    before the photo is looked at (its bytes would say 415)."""
    garbage = ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")
    unknown = post_form(api, {"code": "not-a-code-at-all", "description": "Look here"}, garbage)
    assert unknown.status_code == 404, unknown.text
    code = code_of(api, "b03-u1")
    answers = [
        post_form(api, {"code": code, "description": f"Look here {i}"}, garbage).status_code
        for i in range(6)
    ]
    # Five tries per client (the unknown code's was one): then 429, whatever the photo.
    assert answers == [415] * 4 + [429] * 2


def test_a_body_far_over_the_photo_limit_is_refused_before_it_is_read(
    demo_site: Any, db_url: str, clock: FakeClock
) -> None:
    from tests.api_support import new_store, running_api  # noqa: PLC0415

    store = new_store(db_url, clock)
    with running_api(demo_site, store, clock, report_photo_max_bytes=1024) as api:
        code = code_of(api, "b03-u1")
        big = ("big.png", PNG + b"\x00" * 200_000, "image/png")
        response = post_form(api, {"code": code, "description": "Look at this"}, big)
        assert response.status_code == 413
        assert "larger than" in response.json()["detail"]
        assert store.list_work_orders() == []


@pytest.mark.parametrize(
    ("fields", "status", "where"),
    [
        ({"code": "nope", "description": "broken light"}, 404, None),
        ({"code": "{code}", "description": "x"}, 422, ["body", "description"]),
        ({"code": "{code}", "description": "   \t   "}, 422, ["body", "description"]),
        ({"code": "{code}", "description": "bell\x07ringing"}, 422, ["body", "description"]),
        ({"code": "{code}", "description": "broken", "device_id": "pump-1"}, 422,
         ["body", "device_id"]),
        ({"code": "{code}", "description": "broken", "contact": "a\nb"}, 422,
         ["body", "contact"]),
        ({"code": "{code}", "description": "y" * 2001}, 422, ["body", "description"]),
        ({"description": "broken light"}, 422, ["body", "code"]),
        ({"code": "{code}"}, 422, ["body", "description"]),
    ],
)  # fmt: skip
def test_bad_forms(api: Api, fields: dict[str, str], status: int, where: list[str] | None) -> None:
    code = code_of(api, "b03-u1")
    fields = {k: v.replace("{code}", code) for k, v in fields.items()}
    response = post_form(api, fields)
    assert response.status_code == status, response.text
    if where is not None:
        assert response.json()["detail"][0]["loc"] == where
    assert api.store.list_work_orders() == []


def test_the_form_counts_against_the_same_limits(api: Api) -> None:
    fields = {"code": code_of(api, "b01-u1"), "description": "the hallway light flickers"}
    for _ in range(5):
        assert post_form(api, fields).status_code == 201
    assert post_form(api, fields).status_code == 429


def test_the_report_form_page(api: Api) -> None:
    page = api.client.get(f"/r/{code_of(api, 'b03-u1').upper()}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "Building 3 Unit 1" in page.text
    assert 'value="b03-u1-el2"' in page.text
    assert 'data-zh="2号电梯"' in page.text
    assert "/static/report.js" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'
    unknown = api.client.get("/r/not-a-code")
    assert unknown.status_code == 404
    assert "not known" in unknown.text
    assert "无法识别" in unknown.text
    assert api.client.get(f"/r/{'x' * 65}").status_code == 422


# -- the public status page ----------------------------------------------------------------------


def test_the_public_status_says_what_is_out_in_words_and_nothing_private(
    api: Api, clock: FakeClock
) -> None:
    site, store = api.site, api.store
    status_code = links(api)["status_code"]
    assert status_code != code_of(api, "b03-u1")
    page = api.client.get(f"/api/v1/public/status/{status_code}")
    assert page.status_code == 200, page.text
    assert page.json()["outages"] == []
    assert page.json()["building"] == {"en": "Building 3", "zh-CN": "3号楼"}

    trapped = open_order(store, site, "b03-u1-el2", rule_id="elevator.entrapment")
    store.assign(trapped, actor="dispatcher", assignee="tech", note="Wang Wei from Otis")
    store.transition(trapped, "acknowledged", actor="tech", note="on my way, 10 min")
    open_order(store, site, "b03-u2-door", rule_id="gate.forced_open", severity=Severity.MAJOR)
    open_order(store, site, "b03-u1-el1", rule_id="elevator.door_slow", severity=Severity.WARNING)
    api.client.post(
        "/api/v1/reports",
        json={"code": code_of(api, "b03-u2"), "description": "Mrs Li in 1502 hears the pump",
              "contact": "13800000000"},
    )  # fmt: skip
    body = api.client.get(f"/api/v1/public/status/{status_code}")
    answer = body.json()
    assert [o["text"]["en"] for o in answer["outages"]] == [
        "Elevator 2 out of service since 22:13, technician on the way"
    ]
    assert answer["outages"][0]["text"]["zh-CN"] == "2号电梯自22:13起暂停使用，维修人员正在赶来"
    text = body.text
    for private in ("b03", "Unit 1", '"tech"', "Wang", "Otis", "Mrs Li", "1380", "forced",
                    "work_order", "_id", "dispatcher", "10 min", "assignee"):  # fmt: skip
        assert private not in text, private
    assert set(answer) == {"building", "updated_ms", "outages"}
    assert set(answer["outages"][0]) == {"kind", "text"}

    store.transition(trapped, "resolved", actor="tech", resolution_code="reset",
                     confirm_active=True)  # fmt: skip
    assert api.client.get(f"/api/v1/public/status/{status_code}").json()["outages"] == []
    assert api.client.get("/api/v1/public/status/b03").status_code == 404  # not by its id
    assert api.client.get(f"/api/v1/public/status/{'x' * 65}").status_code == 422


def test_the_public_status_page(api: Api) -> None:
    status_code = links(api)["status_code"]
    page = api.client.get(f"/s/{status_code}")
    assert page.status_code == 200
    assert f'data-code="{status_code}"' in page.text
    assert 'data-zh="3号楼"' in page.text
    assert api.client.get("/s/b03").status_code == 404


# -- links and QR codes --------------------------------------------------------------------------


def test_links_and_qr_codes_for_the_stairwells(api: Api) -> None:
    found = links(api)
    assert found["building_name"] == "Building 3"
    assert [u["unit_id"] for u in found["units"]] == ["b03-u1", "b03-u2"]
    unit = found["units"][0]
    assert unit["code"] == code_of(api, "b03-u1")
    assert unit["report_url"] == f"http://testserver/r/{unit['code']}"
    assert found["status_url"] == f"http://testserver/s/{found['status_code']}"
    assert links(api, "b01", "dispatcher")["units"][0]["unit_id"] == "b01-u1"

    svg = api.get(unit["qr_svg_path"], "steward")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<?xml")
    assert "<svg" in svg.text
    assert "<script" not in svg.text
    status_svg = api.get(found["status_qr_svg_path"], "admin")
    assert status_svg.status_code == 200

    # Roles and scope: a technician may not print (403); a steward not another's building.
    assert api.get("/api/v1/buildings/b03/public-links", "tech").status_code == 403
    assert api.get(unit["qr_svg_path"], "tech").status_code == 403
    assert api.get("/api/v1/buildings/b01/public-links", "steward").status_code == 404
    assert api.get("/api/v1/units/b01-u1/qr.svg", "steward").status_code == 404
    assert api.get("/api/v1/buildings/b01/status-qr.svg", "steward").status_code == 404
    assert api.client.get(unit["qr_svg_path"]).status_code == 401


def test_the_public_url_setting_makes_the_links(
    demo_site: Any, db_url: str, clock: FakeClock
) -> None:
    from tests.api_support import new_store, running_api  # noqa: PLC0415

    store = new_store(db_url, clock)
    with running_api(demo_site, store, clock, public_url="https://estate.example.com/") as api:
        unit = links(api)["units"][0]
        assert unit["report_url"] == f"https://estate.example.com/r/{unit['code']}"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("public_url", "estate.example.com"),
        ("public_url", "ftp://estate.example.com"),
        ("public_url", "https://estate.example.com/?x=1"),
        ("report_photo_max_bytes", 100),
        ("report_photo_max_bytes", 10**9),
        ("photo_threads", 0),
    ],
)
def test_bad_settings_name_themselves(setting: str, value: object) -> None:
    with pytest.raises(SettingsError, match=setting):
        ApiSettings(secret=SECRET, **{setting: value})  # type: ignore[arg-type]
