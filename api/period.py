"""The reporting period of a query (service figures, maintenance history): one rule for the
defaults and the bounds, so every route refuses the same ranges with the same words."""

from __future__ import annotations

from dataclasses import dataclass

from api.deps import AppContext, unprocessable


@dataclass(frozen=True, slots=True)
class Period:
    start_ms: int
    end_ms: int
    until_ms: int | None
    """The end to filter by: None when the caller gave none, so an order filed a moment ago by a
    process whose clock runs ahead is not left out."""


def period(
    context: AppContext, start_ms: int | None, end_ms: int | None, *, default_ms: int
) -> Period:
    """[start, end) from the query; without `end_ms` it ends now, without `start_ms` it starts
    `default_ms` before the end. 422 naming `end_ms` for an empty or too long range."""
    end = end_ms if end_ms is not None else context.clock_ms()
    start = start_ms if start_ms is not None else end - default_ms
    check_period(context, start, end)
    return Period(start, end, end_ms)


def check_period(
    context: AppContext, start_ms: int, end_ms: int, *, too_long: str = "end_ms"
) -> None:
    """422 for an empty period (naming `end_ms`) or one over `service_max_range_s` (naming
    `too_long`: the parameter the caller's defaults make the one to change)."""
    if end_ms <= start_ms:
        raise unprocessable(("query", "end_ms"), "end_ms must be after start_ms")
    if end_ms - start_ms > context.settings.service_max_range_s * 1000:
        days = context.settings.service_max_range_s // 86_400
        raise unprocessable(("query", too_long), f"the period may be at most {days} days")
