"""Problems in words: which open orders a tile names and residents are told about, and the
sentences in English and Chinese (`alerts.problems`, `api.words`)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from alerts.interface import Severity
from alerts.problems import public_outages, worst_problems
from alerts.rules import default_rule_set
from alerts.workorders import Source, WorkOrderStatus
from api.words import (
    LANGUAGES,
    OUTAGE_WORDS,
    PROBLEM_WORDS,
    device_name,
    outage_sentence,
    problem_words,
)
from tests.work_orders import MINUTE, T0, order

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_every_rule_of_the_default_pack_has_words_in_both_languages() -> None:
    rules = {r.id for r in default_rule_set().rules}
    equipment = {r for r in rules if not r.startswith("sensor.")}
    assert equipment <= set(PROBLEM_WORDS), sorted(equipment - set(PROBLEM_WORDS))
    assert set(OUTAGE_WORDS) <= rules
    for en, zh in [*PROBLEM_WORDS.values(), *OUTAGE_WORDS.values()]:
        assert en.isascii(), en
        assert not zh.isascii(), zh  # so not empty either


def test_the_worst_problems_come_first_and_only_a_few() -> None:
    lamp = order(1, severity=Severity.WARNING, rule_id="lighting.lamp_failures")
    gate = order(2, severity=Severity.MAJOR, rule_id="gate.forced_open", created_ms=T0 - 5)
    cleared = order(3, cleared_ms=T0 + 1)  # critical, but its fault is over
    trapped = order(4, fault_started_ms=T0 + MINUTE)  # critical and still on
    report = order(5, severity=Severity.MINOR, source=Source.REPORT, device_id=None)
    assert [o.id for o in worst_problems([lamp, gate, cleared, trapped, report], limit=3)] == [
        4, 3, 2,
    ]  # fmt: skip
    assert worst_problems([], limit=3) == []


def test_a_plans_routine_visit_is_not_a_problem_nor_an_outage() -> None:
    visit = order(1, severity=Severity.MAJOR, source=Source.SCHEDULED, rule_id="elevator.visit")
    lamp = order(2, severity=Severity.WARNING, rule_id="lighting.lamp_failures")
    assert worst_problems([visit, lamp], limit=3) == [lamp]
    assert public_outages([visit]) == []


def test_residents_are_told_only_of_equipment_out_of_order() -> None:
    shown = order(1)
    orders = [
        shown,
        order(2, source=Source.REPORT),  # a resident's words: never public
        order(3, severity=Severity.MINOR),
        order(4, category="sensor"),
        order(5, device_id=None),
    ]
    assert public_outages(orders) == [shown]


@pytest.mark.parametrize(
    ("name", "zh"),
    [
        ("Elevator 2", "2号电梯"),
        ("Unit door", "单元门"),
        ("Stairwell lighting", "楼梯间照明"),
        ("Booster pump 1", "1号加压泵"),
        ("Gate B5-2", "B5-2号大门"),
        ("Roof fan", "Roof fan"),  # unknown: kept as it is
        ("", ""),
    ],
)
def test_device_names_in_chinese(name: str, zh: str) -> None:
    assert device_name(name) == {"en": name, "zh-CN": zh}


def test_a_problem_in_words() -> None:
    assert problem_words(order(), "Elevator 2") == {
        "en": "Elevator 2: passenger trapped",
        "zh-CN": "2号电梯：困人",
    }
    report = order(source=Source.REPORT, device_id=None, rule_id=None)
    assert problem_words(report, None) == {"en": "Resident report", "zh-CN": "住户报修"}
    own = order(rule_id="my.rule", title="Rope slack on Elevator 2")
    assert problem_words(own, "Elevator 2") == {
        "en": "Elevator 2: Rope slack on",
        "zh-CN": "2号电梯：故障",
    }
    assert set(problem_words(order(), "x")) == set(LANGUAGES)


def test_an_outage_in_plain_words() -> None:
    now = T0 + 10 * MINUTE
    acknowledged = order(status=WorkOrderStatus.ACKNOWLEDGED)
    assert outage_sentence(acknowledged, "Elevator 2", SHANGHAI, now) == {
        "en": "Elevator 2 out of service since 22:13, technician on the way",
        "zh-CN": "2号电梯自22:13起暂停使用，维修人员正在赶来",
    }
    yesterday = order(fault_started_ms=T0 - 86_400_000)
    assert outage_sentence(yesterday, "Elevator 2", SHANGHAI, now) == {
        "en": "Elevator 2 out of service since 20 Sep 22:13, repair requested",
        "zh-CN": "2号电梯自9月20日 22:13起暂停使用，已报修",
    }
    # Not told: a forced-open door; a resolved order; a rule of one's own by its kind.
    assert outage_sentence(order(rule_id="gate.forced_open"), "Gate", SHANGHAI, now) is None
    assert outage_sentence(order(status=WorkOrderStatus.RESOLVED), "E", SHANGHAI, now) is None
    own = outage_sentence(order(rule_id="my.rule"), "Elevator 2", SHANGHAI, now)
    assert own is not None
    assert own["en"].startswith("Elevator 2 out of service since")
