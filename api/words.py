"""Problems in plain words, in English and Chinese: for a steward's building tile ("Elevator 2:
passenger trapped") and for residents' status page ("Elevator 2 out of service since 10:05,
technician on the way").

The words are made here, once, so the dashboard, the public page and a `curl` user read the
same sentence. Rules of the default pack each have their phrase (a test checks); a rule of
one's own falls back to its order's title (English) and a generic word in Chinese. Device
names come from the site file; common ones ("Elevator 2", "Unit door") are put into Chinese,
any other name is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from alerts.orderstore.models import WorkOrder
from alerts.workorders import Source, WorkOrderStatus

LANGUAGES: Final = ("en", "zh-CN")
Words = dict[str, str]

PROBLEM_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    "elevator.entrapment": ("passenger trapped", "困人"),
    "elevator.alarm_self_test": ("alarm self-test failed", "紧急报警自检失败"),
    "elevator.levelling_warning": ("stops out of level", "平层不准"),
    "elevator.levelling_major": (
        "stops far out of level (trip hazard)",
        "平层严重偏差（绊倒风险）",
    ),
    "elevator.door_reopening": ("doors keep re-opening", "门反复重开"),
    "elevator.door_slow": ("doors slow", "开关门变慢"),
    "elevator.motor_overheating": ("motor overheating", "电机过热"),
    "elevator.motor_temp_rising": ("motor heating up", "电机温度上升"),
    "elevator.vibration": ("car vibrating", "轿厢振动大"),
    "pump.dry_run": ("running dry", "干转"),
    "pump.cavitation": ("cavitating", "气蚀"),
    "pump.vibration_zone_c": ("vibration too high", "振动过大"),
    "pump.tank_falling": ("tank level falling", "水箱水位下降"),
    "pump.tank_low": ("tank low", "水箱水位低"),
    "pump.tank_critical": ("tank nearly empty", "水箱即将见底"),
    "pump.leak": ("water leak", "漏水"),
    "gate.forced_open": ("forced open", "被强行打开"),
    "gate.forced_open_repeated": ("forced open repeatedly", "多次被强行打开"),
    "gate.held_open": ("held open", "长时间未关"),
    "gate.card_reader_failure": ("card reader refuses cards", "读卡器无法识别门卡"),
    "lighting.circuit_dark": ("lights out", "照明熄灭"),
    "lighting.lamp_failures": ("lamps failed", "灯具损坏"),
    "lighting.day_burning": ("lights on in daylight", "白天亮灯"),
    "lighting.emergency_battery": ("emergency battery failed", "应急电池失效"),
    "device.offline": ("offline", "离线"),
}
"""rule id -> what is wrong, after the device's name (a steward's words)."""
SENSOR_WORDS: Final = ("sensor fault", "传感器故障")
REPORT_WORDS: Final = ("resident report", "住户报修")
FALLBACK_ZH: Final = "故障"

OUTAGE_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    "elevator.entrapment": ("out of service", "暂停使用"),
    "elevator.levelling_major": ("out of service", "暂停使用"),
    "elevator.motor_overheating": ("out of service", "暂停使用"),
    "pump.dry_run": ("not working, water supply may be affected", "故障，可能影响供水"),
    "pump.cavitation": ("not working properly", "运行异常"),
    "pump.vibration_zone_c": ("not working properly", "运行异常"),
    "pump.tank_critical": ("water tank nearly empty, supply may be affected",
                           "水箱即将见底，可能影响供水"),
    "pump.leak": ("water leak", "漏水"),
    "gate.card_reader_failure": ("card reader not working", "刷卡故障"),
    "lighting.circuit_dark": ("lights out", "照明熄灭"),
}  # fmt: skip
"""rule id -> what residents are told. Of the default pack's rules only these are shown to
them (a forced-open door or a failed self-test is not something to announce on a public
page); a rule of one's own (not in `PROBLEM_WORDS`) is told by its device's kind."""
KIND_OUTAGE_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    "elevator": ("out of service", "暂停使用"),
    "pump": ("not working properly", "运行异常"),
    "gate": ("not working properly", "运行异常"),
    "lighting": ("lights out", "照明熄灭"),
}

PROGRESS_WORDS: Final[Mapping[WorkOrderStatus, tuple[str, str]]] = {
    WorkOrderStatus.OPEN: ("repair requested", "已报修"),
    WorkOrderStatus.ACKNOWLEDGED: ("technician on the way", "维修人员正在赶来"),
    WorkOrderStatus.IN_PROGRESS: ("being repaired", "正在维修"),
    WorkOrderStatus.ON_HOLD: ("waiting for parts or access", "等待配件或进场"),
}
"""What is being done, by the order's state (never who, never the staff's notes)."""

NAME_WORDS: Final[Mapping[str, str]] = {
    "elevator": "电梯",
    "lift": "电梯",
    "stairwell lighting": "楼梯间照明",
    "emergency lighting": "应急照明",
    "landscape lighting": "景观照明",
    "unit door": "单元门",
    "gate": "大门",
    "main gate": "大门",
    "booster pump": "加压泵",
    "pump": "水泵",
    "building": "楼",
}
"""Common device names (without their number) in Chinese."""
_NUMBERED = re.compile(
    r"^(?P<word>[A-Za-z][A-Za-z ]*?)\s*(?P<number>[0-9A-Za-z-]*[0-9][0-9A-Za-z-]*)?$"
)


def device_name(name: str) -> Words:
    """The device's name in each language: "Elevator 2" -> "2号电梯"; unknown names as they are."""
    match = _NUMBERED.match(name.strip())
    zh = name
    if match is not None:
        word = NAME_WORDS.get(match["word"].strip().lower())
        if word is not None:
            zh = f"{match['number']}号{word}" if match["number"] else word
    return {"en": name, "zh-CN": zh}


def _what(order: WorkOrder, name: str) -> tuple[str, str]:
    if order.source is Source.REPORT:
        return REPORT_WORDS
    if order.rule_id in PROBLEM_WORDS:
        return PROBLEM_WORDS[order.rule_id or ""]
    if order.category == "sensor":
        return SENSOR_WORDS
    title = order.title.replace(f": {name}", "").replace(name, "").strip(" :")
    return (title or order.title, FALLBACK_ZH)


def problem_words(order: WorkOrder, name: str | None) -> Words:
    """ "Elevator 2: passenger trapped" in each language; without a device the words alone."""
    en, zh = _what(order, name or "\0")
    if name is None:
        return {"en": en[:1].upper() + en[1:], "zh-CN": zh}
    names = device_name(name)
    return {"en": f"{names['en']}: {en}", "zh-CN": f"{names['zh-CN']}：{zh}"}


def since(ms: int, tz: ZoneInfo, now_ms: int) -> Words:
    """ "10:05" today (in the site's time zone), else "3 Dec 10:05" / "12月3日 10:05"."""
    at = datetime.fromtimestamp(ms / 1000, tz)
    clock = at.strftime("%H:%M")
    if at.date() == datetime.fromtimestamp(now_ms / 1000, tz).date():
        return {"en": clock, "zh-CN": clock}
    return {
        "en": f"{at.day} {at.strftime('%b')} {clock}",
        "zh-CN": f"{at.month}月{at.day}日 {clock}",
    }


def outage_sentence(order: WorkOrder, name: str, tz: ZoneInfo, now_ms: int) -> Words | None:
    """ "Elevator 2 out of service since 10:05, technician on the way", or None when the order
    is not one residents are told about."""
    rule = order.rule_id or ""
    what = OUTAGE_WORDS.get(rule)
    if what is None and rule not in PROBLEM_WORDS:
        what = KIND_OUTAGE_WORDS.get(order.kind or "")
    progress = PROGRESS_WORDS.get(order.status)
    if what is None or progress is None:
        return None
    start = order.fault_started_ms if order.fault_started_ms is not None else order.created_ms
    names, at = device_name(name), since(start, tz, now_ms)
    return {
        "en": f"{names['en']} {what[0]} since {at['en']}, {progress[0]}",
        "zh-CN": f"{names['zh-CN']}自{at['zh-CN']}起{what[1]}，{progress[1]}",
    }
