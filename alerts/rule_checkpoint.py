"""Checkpoints of the rules engine's state: every state array in one npz file, written
atomically, so a restart in the middle of a `for` keeps its timer, windows and counters.

Devices, fields, rules and windows are stored by id and name and matched on load, so a
changed site or rule file keeps what still applies.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from alerts.rule_language import NEVER
from alerts.rule_state import KindState
from alerts.rule_windows import WindowSpec, ring_current
from facility.batch import Array, BoolArray, Int64Array
from facility.catalog import KINDS
from facility.errors import FacilityError
from facility.site import Site

CHECKPOINT_VERSION = 1

WindowSpecs = Mapping[str, Mapping[str, WindowSpec]]
"""Each rule's window specs by state key (a saved window loads only into the same spec)."""


class CheckpointError(FacilityError):
    pass


def state_arrays(
    site: Site,
    states: Mapping[str, KindState],
    windows: WindowSpecs,
    site_ids: tuple[str, ...],
    site_active: BoolArray,
    site_started_ms: Int64Array,
) -> dict[str, Array]:
    """Every state array under its name in the checkpoint (`kind.`, `kind.rule.id.`, ...);
    `site.*`: each estate's site incident (one estate unless a portfolio)."""
    out: dict[str, Array] = {
        "version": np.array(CHECKPOINT_VERSION),
        "site.ids": np.array(site_ids, dtype=str),
        "site.active": np.asarray(site_active, np.bool_),
        "site.started_ms": np.asarray(site_started_ms, np.int64),
    }
    for kind, state in states.items():
        p = f"{kind}."
        out[p + "devices"] = np.array(site.device_ids(kind), dtype=str)
        out[p + "fields"] = np.array(KINDS[kind].field_names, dtype=str)
        out[p + "last_ts"] = state.last_ts
        out[p + "last_values"] = state.last_values
        out[p + "last_present_ts"] = state.last_present_ts
        out[p + "watch_from"] = state.watch_from
        for rule_id, rs in state.rules.items():
            r = f"{p}rule.{rule_id}."
            out[r + "since_ms"] = rs.since_ms
            out[r + "active"] = rs.active
            out[r + "reported"] = rs.reported
            out[r + "last_clear_ms"] = rs.last_clear_ms
            out[r + "occurrences"] = rs.occurrences
            out[r + "clear_since_ms"] = rs.clear_since_ms
            specs = windows[rule_id]
            for key, w in rs.windows.items():
                out[f"{r}window.{key}.spec"] = np.array(specs[key].text)
                out[f"{r}window.{key}.ts"] = w.ts
                out[f"{r}window.{key}.values"] = w.values
                out[f"{r}window.{key}.run_value"] = w.run_value
                out[f"{r}window.{key}.run_start"] = w.run_start
                out[f"{r}window.{key}.run_count"] = w.run_count
    return out


def write_checkpoint(path: Path, arrays: Mapping[str, Array]) -> None:
    """Write `arrays` to `path` (npz) atomically: a temporary file in the same folder,
    fsynced, then renamed over the old checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def checkpoint_bytes(arrays: Mapping[str, Array]) -> bytes:
    """`arrays` as the bytes of an npz file (a checkpoint kept in the database)."""
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def read_checkpoint(path: Path | bytes, what: str | None = None) -> dict[str, Array]:
    """The arrays of an existing checkpoint (a file, or its bytes); CheckpointError when it
    cannot be read or is of another version."""
    what = what or str(path)
    try:
        source = io.BytesIO(path) if isinstance(path, bytes) else path
        with np.load(source, allow_pickle=False) as data:
            saved = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"rules checkpoint {what}: cannot be read ({exc})") from exc
    if int(saved.get("version", -1)) != CHECKPOINT_VERSION:
        raise CheckpointError(f"rules checkpoint {what}: not a version {CHECKPOINT_VERSION} file")
    return saved


def restore_sites(
    saved: Mapping[str, Array], site_ids: tuple[str, ...]
) -> tuple[BoolArray, Int64Array]:
    """Each estate's site incident (open, since), matched by site id; a checkpoint of one
    site from before portfolios holds one value for the whole site."""
    active = np.zeros(len(site_ids), np.bool_)
    started = np.full(len(site_ids), NEVER, np.int64)
    saved_active = np.asarray(saved["site.active"], np.bool_)
    saved_started = np.asarray(saved["site.started_ms"], np.int64)
    if "site.ids" not in saved or saved_active.ndim == 0:
        active[:] = saved_active.reshape(-1)[:1].any()
        started[:] = saved_started.reshape(-1)[0] if saved_started.size else NEVER
        return active, started
    index = {str(s): i for i, s in enumerate(saved["site.ids"].tolist())}
    for row, site_id in enumerate(site_ids):
        if site_id in index:
            active[row] = saved_active[index[site_id]]
            started[row] = saved_started[index[site_id]]
    return active, started


def restore_states(
    saved: Mapping[str, Array], site: Site, states: Mapping[str, KindState], windows: WindowSpecs
) -> None:
    """Load the saved reading and rule state into `states`, matched by device id, field name,
    rule id and window spec; what has no match keeps its fresh state."""
    for kind, state in states.items():
        p = f"{kind}."
        if p + "devices" not in saved:
            continue
        old_ids = [str(x) for x in saved[p + "devices"].tolist()]
        index = {d: i for i, d in enumerate(old_ids)}
        new_rows, old_rows = [], []
        for row, device_id in enumerate(site.device_ids(kind)):
            if device_id in index:
                new_rows.append(row)
                old_rows.append(index[device_id])
        new = np.array(new_rows, np.intp)
        old = np.array(old_rows, np.intp)
        old_fields = [str(x) for x in saved[p + "fields"].tolist()]
        pairs = [
            (KINDS[kind].col(name), j)
            for j, name in enumerate(old_fields)
            if name in KINDS[kind].index
        ]
        cols_new = np.array([a for a, _ in pairs], np.intp)
        cols_old = np.array([b for _, b in pairs], np.intp)
        state.last_ts[new] = saved[p + "last_ts"][old]
        state.last_values[np.ix_(new, cols_new)] = saved[p + "last_values"][np.ix_(old, cols_old)]
        state.last_present_ts[np.ix_(new, cols_new)] = saved[p + "last_present_ts"][
            np.ix_(old, cols_old)
        ]
        for rule_id, rs in state.rules.items():
            r = f"{p}rule.{rule_id}."
            if r + "since_ms" not in saved:
                continue
            rs.since_ms[new] = saved[r + "since_ms"][old]
            rs.active[new] = saved[r + "active"][old]
            rs.reported[new] = saved[r + "reported"][old]
            rs.last_clear_ms[new] = saved[r + "last_clear_ms"][old]
            if r + "clear_since_ms" in saved:
                rs.clear_since_ms[new] = saved[r + "clear_since_ms"][old]
            if saved[r + "occurrences"].shape[1:] == rs.occurrences.shape[1:]:
                rs.occurrences[new] = saved[r + "occurrences"][old]
            specs = windows[rule_id]
            for key, w in rs.windows.items():
                k = f"{r}window.{key}."
                if k + "ts" not in saved or saved[k + "ts"].ndim != 2:
                    continue
                if k + "spec" in saved and str(saved[k + "spec"]) != specs[key].text:
                    continue  # the rule's text changed: another window under this key
                # a ring of another width (its capacity changed): its newest entries
                width = min(w.ts.shape[1], saved[k + "ts"].shape[1])
                w.ts[new] = NEVER
                w.values[new] = np.nan
                if width:
                    w.ts[new, -width:] = saved[k + "ts"][old, -width:]
                    w.values[new, -width:] = saved[k + "values"][old, -width:]
                w.run_value[new] = saved[k + "run_value"][old]
                w.run_start[new] = saved[k + "run_start"][old]
                w.run_count[new] = saved[k + "run_count"][old]
                w.current[:] = ring_current(specs[key], w.ts, w.values)
