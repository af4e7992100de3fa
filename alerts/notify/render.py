"""The words of a notice, in the language the receiving group reads (zh-CN or en)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.notify.interface import Notice

LANGUAGES: Final = ("en", "zh-CN")

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "created": "New work order",
        "reopened": "Work order reopened",
        "escalated": "Work order overdue",
        "root_cause": "Root-cause work order",
        "critical": "critical",
        "major": "major",
        "minor": "minor",
        "warning": "warning",
        "where": "Where",
        "since": "Fault since",
        "respond_by": "Respond by",
        "resolve_by": "Resolve by",
        "team": "Team",
        "open": "Open",
        "order": "Work order",
    },
    "zh-CN": {
        "created": "新工单",
        "reopened": "工单重新打开",
        "escalated": "工单超时升级",
        "root_cause": "根因工单",
        "critical": "紧急",
        "major": "重要",
        "minor": "次要",
        "warning": "提示",
        "where": "位置",
        "since": "故障开始",
        "respond_by": "响应时限",
        "resolve_by": "修复时限",
        "team": "班组",
        "open": "打开",
        "order": "工单",
    },
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(ms: int | None, zone: str) -> str:
    if ms is None:
        return "-"
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .astimezone(_zone(zone))
        .strftime("%Y-%m-%d %H:%M:%S %Z")
    )


def headline(notice: Notice, language: str) -> str:
    words = _WORDS[language]
    order = notice.order
    severity = words.get(order.severity, order.severity)
    return f"[{severity}] {words.get(notice.event, notice.event)}: {order.title}"


def detail_lines(notice: Notice, language: str) -> list[str]:
    """Label / value lines shared by every chat format."""
    words = _WORDS[language]
    order = notice.order
    where = " / ".join(
        part for part in (notice.building_name, notice.unit_name, notice.device_name) if part
    )
    since = order.fault_started_ms or order.created_ms
    lines = [
        f"{words['order']}: #{order.id} (P{order.priority})",
        f"{words['where']}: {where}",
        f"{words['since']}: {local_time(since, notice.time_zone)}",
        f"{words['respond_by']}: {local_time(order.respond_by_ms, notice.time_zone)}",
        f"{words['resolve_by']}: {local_time(order.resolve_by_ms, notice.time_zone)}",
    ]
    if order.team:
        lines.append(f"{words['team']}: {order.team}")
    if notice.note:
        lines.append(notice.note)
    return lines


def link_label(language: str) -> str:
    return _WORDS[language]["open"]
