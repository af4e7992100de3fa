"""Backtest: replay stored history through the rules and list the faults they would have raised.

History is read in time chunks (`chunk_s`) from a `HistorySource` as `Batch`es, evaluated by
a fresh `RuleEngine` in time order, with the engine's timer ticking every `tick_s` of history
time (so offline is found as it would have been live). Nothing is written: the result is the
list of faults opened and cleared. The history comes from whichever store the gateway wrote
to, through `ingest.registry.open_history` (its readers' `batch`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Rule
from alerts.quarantine import RuleFailure
from alerts.rule_file import RuleSet
from facility.batch import Batch
from facility.errors import FacilityError
from facility.site import Site
from ingest.settings import StoreSettings

DEFAULT_CHUNK_S = 3600.0
DEFAULT_TICK_S = 10.0


class BacktestError(FacilityError):
    """The backtest cannot run: a bad range (store errors are ingest's own)."""


class HistorySource(Protocol):
    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """Every stored reading of the site in [start_ms, end_ms)."""


@dataclass(slots=True)
class BacktestResult:
    start_ms: int
    end_ms: int
    readings: int = 0
    opened: list[FaultOpened] = field(default_factory=list)
    cleared: list[FaultCleared] = field(default_factory=list)
    quarantined: list[RuleFailure] = field(default_factory=list)
    """Rules whose evaluation raised (`alerts.quarantine`): their faults after it are missing."""

    def lines(self) -> list[str]:
        """One line per fault, oldest first, with when it cleared (if it did); then one per
        quarantined rule."""
        ends: dict[tuple[str, str], list[int]] = {}
        for c in self.cleared:
            ends.setdefault((c.rule_id, c.device_id), []).append(c.cleared_ms)
        out = []
        for f in sorted(self.opened, key=lambda f: (f.detected_ms, f.device_id, f.rule_id)):
            later = [t for t in ends.get((f.rule_id, f.device_id), []) if t >= f.started_ms]
            cleared = f"cleared {_iso(min(later))}" if later else "still open"
            out.append(
                f"{_iso(f.started_ms)}  {f.severity:<8} {f.rule_id:<28} {f.device_id:<16} "
                f"detected {_iso(f.detected_ms)}  {cleared}  {f.title}"
            )
        out += [
            f"rule {q.rule_id} raised and was skipped from then on: {q.error}"
            for q in self.quarantined
        ]
        return out

    def orders(self) -> int:
        """How many work orders these faults would make: an episode back within its rule's gap
        (a flap) and a fault of a family whose order is open on the device join an order."""
        ends: dict[tuple[str, str], list[int]] = {}
        for c in self.cleared:
            ends.setdefault((c.rule_id, c.device_id), []).append(c.cleared_ms)
        open_until: dict[tuple[str, tuple[str, ...]], float] = {}
        count = 0
        for f in sorted(self.opened, key=lambda f: (f.started_ms, f.detected_ms)):
            if f.flap:
                continue
            later = [t for t in ends.get((f.rule_id, f.device_id), []) if t >= f.started_ms]
            end = float(min(later)) if later else float("inf")
            key = (f.device_id, f.family_rules or (f.rule_id,))
            if open_until.get(key, float("-inf")) >= f.started_ms:
                open_until[key] = max(open_until[key], end)
                continue
            open_until[key] = end
            count += 1
        return count


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time_ms(text: str, option: str) -> int:
    """ms since the epoch from an ISO 8601 date or date-time (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BacktestError(
            f"{option} {text!r} is not a date or time like 2026-09-21 or 2026-09-21T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def backtest(
    site: Site,
    rules: RuleSet | Sequence[Rule],
    source: HistorySource,
    start_ms: int,
    end_ms: int,
    *,
    chunk_s: float = DEFAULT_CHUNK_S,
    tick_s: float = DEFAULT_TICK_S,
) -> BacktestResult:
    if end_ms <= start_ms:
        raise BacktestError("--from must be before --to")
    if isinstance(rules, RuleSet):
        engine = RuleEngine.from_rule_set(site, rules)
    else:
        engine = RuleEngine(site, rules)
    result = BacktestResult(start_ms, end_ms)
    engine.tick(start_ms)
    for chunk_start, chunk_end in _chunks(start_ms, end_ms, round(chunk_s * 1000)):
        batch = source.batch(chunk_start, chunk_end)
        result.readings += len(batch)
        batch = Batch(
            batch.site_id,
            {k: kb.take(np.argsort(kb.ts_ms, kind="stable")) for k, kb in batch.kinds.items()},
        )
        # readings and ticks interleaved in history time, one tick step at a time
        step = max(round(tick_s * 1000), 1)
        for t in range(chunk_start, chunk_end, step):
            part = _between(batch, t, min(t + step, chunk_end))
            evaluation = engine.evaluate(part)
            result.opened += evaluation.opened
            result.cleared += evaluation.cleared
            timed = engine.tick(min(t + step, chunk_end))
            result.opened += timed.opened
            result.cleared += timed.cleared
    result.quarantined = engine.quarantine.failures()
    return result


def _chunks(start_ms: int, end_ms: int, size_ms: int) -> Iterator[tuple[int, int]]:
    t = start_ms
    while t < end_ms:
        yield t, min(t + size_ms, end_ms)
        t += size_ms


def _between(batch: Batch, start_ms: int, end_ms: int) -> Batch:
    """The readings in [start_ms, end_ms) of a batch whose kinds are sorted by time."""
    kinds = {}
    for name, kb in batch.kinds.items():
        lo, hi = np.searchsorted(kb.ts_ms, [start_ms, end_ms])
        if hi > lo:
            kinds[name] = kb.take(np.arange(lo, hi))
    return Batch(batch.site_id, kinds)


def run_command(
    *,
    site_path: Path,
    rules_path: Path | None,
    store: StoreSettings,
    start: str,
    end: str,
) -> list[str]:
    """`facility rules backtest`: the report's lines (a summary line first). The history is
    read from `store`; an unreachable store raises `StoreUnavailableError`."""
    from alerts.rule_file import load_rule_file  # noqa: PLC0415
    from alerts.rules import default_rule_set  # noqa: PLC0415
    from facility.portfolio import load_sites  # noqa: PLC0415
    from ingest.registry import open_history  # noqa: PLC0415

    start_ms, end_ms = parse_time_ms(start, "--from"), parse_time_ms(end, "--to")
    if end_ms <= start_ms:
        raise BacktestError(f"--from {start} must be before --to {end}")
    site = load_sites(site_path)  # a directory: a portfolio, judged estate by estate
    rules = load_rule_file(rules_path) if rules_path is not None else default_rule_set()
    source = open_history(site, store)
    try:
        result = backtest(site, rules, source, start_ms, end_ms)
    finally:
        source.close()
    orders = result.orders()
    device_days = len(site.devices) * (end_ms - start_ms) / 86_400_000
    rate = 1000 * orders / device_days if device_days else 0.0
    summary = (
        f"{len(result.opened)} faults from {result.readings} readings of site {site.id!r}, "
        f"{_iso(start_ms)} to {_iso(end_ms)}: {orders} work orders, {rate:.1f} per 1000 "
        f"device-days ({device_days:.0f} device-days)"
    )
    return [summary, *result.lines()]
