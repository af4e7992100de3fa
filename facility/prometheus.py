"""Prometheus text exposition (format 0.0.4) for the few metrics we export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    type: Literal["counter", "gauge"]
    help: str
    samples: Mapping[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    """Label set (sorted pairs; empty for none) -> value."""

    @staticmethod
    def single(name: str, type_: Literal["counter", "gauge"], help_: str, value: float) -> Metric:
        return Metric(name, type_, help_, {(): value})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def render(metrics: Iterable[Metric]) -> str:
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for labels, value in metric.samples.items():
            lines.append(f"{metric.name}{_labels(labels)} {value:g}")
    return "\n".join(lines) + "\n"
