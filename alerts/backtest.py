"""Backtest: replay stored history through the rules and list the faults they would have raised.

History is read in time chunks (`chunk_s`) from a `HistorySource`, decoded straight into
`Batch`es, evaluated by a fresh `RuleEngine` in time order, with the engine's timer ticking
every `tick_s` of history time (so offline is found as it would have been live). Nothing is
written: the result is the list of faults opened and cleared.

`SQLiteHistorySource` reads the embedded time-series store (`ingest.sqlite_store`'s tables),
`InfluxV1HistorySource` InfluxDB 1.x (what the gateway wrote there, with InfluxQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import orjson

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Rule
from alerts.rule_file import RuleSet
from facility.batch import Batch, KindBatch
from facility.catalog import KINDS
from facility.errors import FacilityError
from facility.site import Site

DEFAULT_CHUNK_S = 3600.0
DEFAULT_TICK_S = 10.0


class BacktestError(FacilityError):
    """The backtest cannot run: bad range, missing store."""


class HistorySource(Protocol):
    def batch(self, start_ms: int, end_ms: int) -> Batch:
        """Every stored reading of the site in [start_ms, end_ms)."""


class SQLiteHistorySource:
    """The embedded store, read-only: one query per kind and chunk."""

    def __init__(self, site: Site, path: Path) -> None:
        if not Path(path).exists():
            raise BacktestError(f"no time-series store at {path}")
        from ingest.sqlite_store import table_name  # noqa: PLC0415 (one naming, ingest's)

        self.site = site
        self._table = table_name
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self._rows = {
            kind: {d.id: d.kind_index for d in devices} for kind, devices in site.by_kind.items()
        }

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        kinds: dict[str, KindBatch] = {}
        for kind, spec in KINDS.items():
            columns = ", ".join(f'"{f.name}"' for f in spec.fields)
            try:
                rows = self._db.execute(
                    f"SELECT device, ts_ms, seq, {columns} FROM {self._table(kind)} "
                    "WHERE ts_ms >= ? AND ts_ms < ? ORDER BY device, ts_ms",
                    (start_ms, end_ms),
                ).fetchall()
            except sqlite3.OperationalError:
                continue  # a store without this kind's table
            index = self._rows[kind]
            rows = [r for r in rows if r[0] in index]  # devices no longer in the site
            if not rows:
                continue
            data = np.array([r[1:] for r in rows], dtype=np.float64)  # None -> nan
            kinds[kind] = KindBatch(
                spec,
                np.array([index[r[0]] for r in rows], np.int32),
                data[:, 0].astype(np.int64),
                data[:, 1].astype(np.int64),
                np.ascontiguousarray(data[:, 2:]),
            )
        return Batch(self.site.id, kinds)

    def close(self) -> None:
        self._db.close()


class InfluxV1HistorySource:
    """InfluxDB 1.x, read-only: one InfluxQL query per kind and chunk, answered in chunks.

    The gateway writes no sequence numbers to InfluxDB, so replayed readings carry seq 0; the
    rules do not read them.
    """

    CHUNK_POINTS = 10_000

    def __init__(
        self,
        site: Site,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.site = site
        self.database = database
        auth = (username, password or "") if username else None
        self._http = httpx.Client(base_url=url, timeout=timeout_s, auth=auth)
        self._rows = {
            kind: {d.id: d.kind_index for d in devices} for kind, devices in site.by_kind.items()
        }

    def _series(self, influxql: str) -> Iterator[tuple[list[str], list[list[Any]]]]:
        params = {"db": self.database, "q": influxql, "epoch": "ms", "chunked": "true",
                  "chunk_size": str(self.CHUNK_POINTS)}  # fmt: skip
        try:
            with self._http.stream("GET", "/query", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise BacktestError(
                        f"InfluxDB at {self._http.base_url} answered {response.status_code}: "
                        f"{response.text[:200]}"
                    )
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    body = orjson.loads(line)
                    for result in body.get("results", []):
                        if "error" in result:
                            raise BacktestError(f"InfluxDB: {result['error']}")
                        for series in result.get("series", []):
                            yield series["columns"], series.get("values", [])
        except httpx.HTTPError as exc:
            raise BacktestError(f"cannot read InfluxDB at {self._http.base_url}: {exc}") from exc

    def batch(self, start_ms: int, end_ms: int) -> Batch:
        kinds: dict[str, KindBatch] = {}
        site = self.site.id.replace("\\", "\\\\").replace("'", "\\'")
        for kind, spec in KINDS.items():
            index = self._rows[kind]
            if not index:
                continue
            fields = ", ".join(f'"{f.name}"' for f in spec.fields)
            query = (
                f'SELECT "device", {fields} FROM "{kind}" WHERE "site" = \'{site}\' '
                f"AND time >= {start_ms}ms AND time < {end_ms}ms"
            )
            blocks = []
            for columns, values in self._series(query):
                if columns[:2] != ["time", "device"]:
                    raise BacktestError(f"InfluxDB: unexpected columns {columns[:2]}")
                if values:
                    blocks.append(np.array(values, dtype=object))
            if not blocks:
                continue
            block = np.concatenate(blocks)
            device = np.array([index.get(name, -1) for name in block[:, 1].tolist()], np.int32)
            known = device >= 0  # devices no longer in the site are left out
            if not known.any():
                continue
            block = block[known]
            kinds[kind] = KindBatch(
                spec,
                device[known],
                block[:, 0].astype(np.int64),
                np.zeros(len(block), np.int64),
                np.ascontiguousarray(block[:, 2:].astype(np.float64)),  # None -> NaN
            )
        return Batch(self.site.id, kinds)

    def close(self) -> None:
        self._http.close()


@dataclass(slots=True)
class BacktestResult:
    start_ms: int
    end_ms: int
    readings: int = 0
    opened: list[FaultOpened] = field(default_factory=list)
    cleared: list[FaultCleared] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per fault, oldest first, with when it cleared (if it did)."""
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
    sqlite_path: Path,
    start: str,
    end: str,
    influx_url: str | None = None,
    influx_db: str = "facility",
    influx_username: str | None = None,
    influx_password: str | None = None,
) -> list[str]:
    """`facility rules backtest`: the report's lines (a summary line first)."""
    from alerts.rule_file import load_rule_file  # noqa: PLC0415
    from alerts.rules import default_rule_set  # noqa: PLC0415
    from facility.site import load_site  # noqa: PLC0415

    start_ms, end_ms = parse_time_ms(start, "--from"), parse_time_ms(end, "--to")
    if end_ms <= start_ms:
        raise BacktestError(f"--from {start} must be before --to {end}")
    site = load_site(site_path)
    rules = load_rule_file(rules_path) if rules_path is not None else default_rule_set()
    source: SQLiteHistorySource | InfluxV1HistorySource
    if influx_url is not None:
        source = InfluxV1HistorySource(
            site, influx_url, influx_db, username=influx_username, password=influx_password
        )
    else:
        source = SQLiteHistorySource(site, sqlite_path)
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
