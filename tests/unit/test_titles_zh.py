"""Work-order titles in 中文: every rule of the pack has one beside its English title, the
parser checks it like the title, faults and orders carry it, and the API returns it."""

from __future__ import annotations

import string

import pytest

from alerts.faults import FaultOpened
from alerts.interface import Category, Severity
from alerts.rule_faults import rule_fault, site_fault
from alerts.rule_file import RuleFileError, parse_rule_file
from alerts.rules import default_rule_set
from facility.catalog import KINDS
from facility.site import Site
from tests.api_support import T0, Api

RULE = """\
[[rules]]
id = "pump.low_suction"
kind = "pump"
when = "running and suction_bar < 0.2"
severity = "major"
title = "Low suction: {device} at {suction_bar:.1f} bar"
"""


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_rule_of_the_pack_has_a_chinese_title_with_the_same_placeholders() -> None:
    rules = default_rule_set().rules
    assert len({r.id for r in rules}) >= 30
    for rule in rules:
        assert rule.title, rule.id
        assert rule.title_zh, rule.id
        assert _has_cjk(rule.title_zh), rule.id
        assert not _has_cjk(rule.title), rule.id
        assert _placeholders(rule.title_zh) == _placeholders(rule.title), rule.id


def test_a_chinese_title_is_read_and_checked_like_the_title() -> None:
    zh = 'title_zh = "吸入压力低：{device}，{suction_bar:.1f} bar"\n'
    (rule,) = parse_rule_file(RULE + zh).rules
    assert rule.title_zh == "吸入压力低：{device}，{suction_bar:.1f} bar"
    (plain,) = parse_rule_file(RULE).rules
    assert plain.title_zh == ""  # optional in a rule file of one's own


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('title_zh = "吸入压力低：{colour}"', "title_zh uses colour"),
        ('title_zh = ""', "title_zh must be a non-empty string"),
        ("title_zh = 3", "title_zh must be a non-empty string"),
        ('title_zh = "吸入压力低：{device"', "title_zh is not a valid template"),
    ],
)
def test_a_bad_chinese_title_is_named_with_its_line(line: str, message: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file(RULE + line + "\n", "rules.toml")
    assert message in str(caught.value)
    assert "rules.toml:7" in str(caught.value)


def test_a_fault_fills_both_titles_from_the_reading(demo_site: Site) -> None:
    rule = next(r for r in default_rule_set().rules if r.id == "pump.tank_low")
    device = demo_site.by_id["pump-1"]
    spec = KINDS["pump"]
    reading = [0.0] * len(spec.fields)
    reading[spec.index["tank_level_pct"]] = 21.4
    fault = rule_fault(rule, device, None, spec, reading, T0, T0, ())
    assert fault.title == f"Break tank low: {device.name} sees 21 %"
    assert fault.title_zh == f"水箱水位低：{device.name} 测得 21 %"
    assert _has_cjk(site_fault(demo_site, T0, T0).title_zh or "")


def _fault(site: Site, device_id: str, **kwargs: object) -> FaultOpened:
    device = site.by_id[device_id]
    values: dict[str, object] = {
        "rule_id": "test.rule", "kind": device.kind, "device_id": device.id,
        "building_id": device.building_id, "unit_id": device.unit_id,
        "severity": Severity.CRITICAL, "category": Category.EQUIPMENT,
        "title": "Passenger trapped: Elevator 1", "title_zh": "乘客被困：Elevator 1",
        "started_ms": T0, "detected_ms": T0 + 1000,
    }  # fmt: skip
    values.update(kwargs)
    return FaultOpened(**values)  # type: ignore[arg-type]


def test_orders_keep_both_titles_and_the_api_returns_them(api: Api) -> None:
    site, store = api.site, api.store
    store.open_for_faults(site.id, [_fault(site, "b03-u1-el1")])
    report = store.create_report(
        site_id=site.id, building_id="b03", unit_id="b03-u1", device_id=None, kind=None,
        description="电梯有异响 the lift makes noise",
    )  # fmt: skip
    assert report.title_zh == "住户报修：电梯有异响 the lift makes noise"
    orders = api.get("/api/v1/work-orders", "dispatcher").json()["items"]
    titles = {(o["title"], o["title_zh"]) for o in orders}
    assert ("Passenger trapped: Elevator 1", "乘客被困：Elevator 1") in titles
    assert (report.title, report.title_zh) in titles
    (lift,) = [o for o in orders if o["device_id"] == "b03-u1-el1"]
    detail = api.get(f"/api/v1/work-orders/{lift['id']}", "steward").json()
    assert detail["title_zh"] == "乘客被困：Elevator 1"


def test_a_fault_of_a_rule_without_a_chinese_title_has_none(api: Api) -> None:
    api.store.open_for_faults(api.site.id, [_fault(api.site, "pump-1", title_zh=None)])
    (order,) = api.get("/api/v1/work-orders", "admin").json()["items"]
    assert order["title_zh"] is None


def test_an_escalation_in_a_family_takes_the_new_rules_chinese_title(api: Api) -> None:
    site, store = api.site, api.store
    family = ("lev.warn", "lev.major")
    store.open_for_faults(site.id, [_fault(
        site, "b03-u1-el1", rule_id="lev.warn", severity=Severity.WARNING, family_rules=family,
        title="Levelling off by more than 10 mm", title_zh="平层误差超过 10 mm",
    )])  # fmt: skip
    store.open_for_faults(site.id, [_fault(
        site, "b03-u1-el1", rule_id="lev.major", severity=Severity.MAJOR, family_rules=family,
        title="Levelling off by more than 20 mm", title_zh="平层误差超过 20 mm",
        started_ms=T0 + 60_000,
    )])  # fmt: skip
    (order,) = store.list_work_orders(device_id="b03-u1-el1")
    assert (order.severity, order.title_zh) == ("major", "平层误差超过 20 mm")
