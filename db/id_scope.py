"""The ids a database stores and the deployment's: moving a single-site database to a portfolio's
scoped ids (`facility db scope-ids`), and the start-up check that the two agree.

One site file keeps plain ids (`b03`, `b03-u1-el1`); a portfolio (a directory of site files)
scopes them by site (`riverside:b03`, `facility.portfolio`). A database written by one kind of
deployment and served by the other would show nothing: every order, steward scope and device
state is keyed by those ids. `scope_ids` rewrites one site's plain ids in every table that
stores them, in one transaction, and leaves scoped ones alone (running it twice changes
nothing). `check_id_scope` refuses to serve a database whose ids are of the other kind, naming
the command that fixes it; the API calls it at start, and so may any process that writes ids.

Ids of a whole site (the "site silent" order is filed on the site's own id) are neither
building nor device ids: they stay as they are, and both checks ignore them.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from sqlalchemy import Column, Connection, Engine, delete, func, literal, select, update

from db.engine import begin_write
from db.schema import (
    device_state,
    fault_episodes,
    live_events,
    live_feed,
    maintenance_evidence,
    maintenance_orders,
    maintenance_tracking,
    rate_limit_hits,
    rule_checkpoints,
    user_buildings,
    work_orders,
)
from facility.errors import FacilityError
from facility.site import ID_PATTERN, SCOPE_SEPARATOR, Site

ID_COLUMNS: Final = (
    work_orders.c.building_id,
    work_orders.c.unit_id,
    work_orders.c.device_id,
    fault_episodes.c.device_id,
    device_state.c.device_id,
    device_state.c.building_id,
    user_buildings.c.building_id,
    maintenance_tracking.c.device_id,
    maintenance_orders.c.device_id,
    maintenance_evidence.c.device_id,
)
"""Every column that stores a building, unit, device or asset id of the site."""
CODE_LIMIT: Final = "code"
"""The rate limit counted per unit (`rate_limit_hits.key` is a unit id)."""
SAMPLE: Final = 1000
"""Orders the start-up check reads from each end of the table (a migration is one transaction:
a database is all of one kind or all of the other, so both ends tell)."""


class IdScopeError(FacilityError):
    """The database's ids are not of the deployment's kind (the message says what to run)."""


@dataclass(frozen=True, slots=True)
class ScopeResult:
    site_id: str
    rows: dict[str, int] = field(default_factory=dict)
    """`table.column` -> rows rewritten (`live_events`: rows dropped; `rule_checkpoints`:
    checkpoints rewritten)."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _plain(column: Column[Any], site_id: str) -> Any:
    """Rows whose `column` holds a plain id of the site (not empty, not the site's own id,
    not scoped already)."""
    return (
        column.is_not(None)
        & (column != "")
        & (column != site_id)
        & ~column.contains(SCOPE_SEPARATOR, autoescape=True)
    )


def scope_ids(engine: Engine, site_id: str) -> ScopeResult:
    """Rewrite every stored plain id of the site `site_id` to its scoped form (`site:id`), in
    one transaction. Idempotent: scoped ids (and the site's own id) are left alone.

    The live-updates window is dropped rather than rewritten (its events' bodies hold the old
    ids): clients that reconnect are told to reload. Saved rules-engine checkpoints get their
    device lists rewritten, so a gateway restores its state under the new ids."""
    if not ID_PATTERN.match(site_id):
        raise IdScopeError(f"{site_id!r} is not a site id (lower-case letters, digits, - or _)")
    prefix = f"{site_id}{SCOPE_SEPARATOR}"
    rows: dict[str, int] = {}
    with begin_write(engine) as conn:
        for column in ID_COLUMNS:
            table = column.table
            done = conn.execute(
                update(table)
                .where(_plain(column, site_id))
                .values({column.name: literal(prefix) + column})
            ).rowcount
            rows[f"{table.name}.{column.name}"] = int(done or 0)
        key = rate_limit_hits.c.key
        rows["rate_limit_hits.key"] = int(
            conn.execute(
                update(rate_limit_hits)
                .where(rate_limit_hits.c.scope == CODE_LIMIT, _plain(key, site_id))
                .values(key=literal(prefix) + key)
            ).rowcount
            or 0
        )
        rows["live_events"] = _drop_live_window(conn)
        rows["rule_checkpoints"] = _scope_checkpoints(conn, site_id)
    return ScopeResult(site_id, rows)


def _drop_live_window(conn: Connection) -> int:
    """Drop the live feed's kept events; replays from before now answer `reset` (reload)."""
    newest = conn.execute(select(func.max(live_events.c.id))).scalar()
    if newest is None:
        return 0
    dropped = conn.execute(delete(live_events)).rowcount or 0
    conn.execute(
        update(live_feed)
        .where(live_feed.c.pruned_through < newest)
        .values(pruned_through=int(newest))
    )
    return int(dropped)


def _scope_checkpoints(conn: Connection, site_id: str) -> int:
    """The device lists (`<kind>.devices`) of every saved rules checkpoint, scoped."""
    changed = 0
    for row in conn.execute(select(rule_checkpoints.c.shard, rule_checkpoints.c.state)).all():
        try:
            with np.load(io.BytesIO(row.state), allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            continue  # unreadable: the gateway starts that shard afresh, as it would anyway
        touched = False
        for name, values in arrays.items():
            if not name.endswith(".devices") or name.count(".") != 1:
                continue
            ids = [str(v) for v in values.tolist()]
            scoped = [
                i if SCOPE_SEPARATOR in i or i == site_id else f"{site_id}{SCOPE_SEPARATOR}{i}"
                for i in ids
            ]
            if scoped != ids:
                arrays[name] = np.array(scoped, dtype=str)
                touched = True
        if touched:
            out = io.BytesIO()
            np.savez(out, **arrays)
            conn.execute(
                update(rule_checkpoints)
                .where(rule_checkpoints.c.shard == row.shard)
                .values(state=out.getvalue())
            )
            changed += 1
    return changed


# -- the start-up check -------------------------------------------------------------------------


def check_id_scope(engine: Engine, site: Site) -> None:
    """Refuse (`IdScopeError`) a database whose stored ids are of the other kind than the
    deployment's: plain ids under a portfolio (run `facility db scope-ids --site <site>`), or
    scoped ids under one site file (serve the portfolio directory instead).

    Reads the device states (one row a device), the stewards' buildings and both ends of the
    work orders: bounded, whatever the size of the order history."""
    site_ids = {s.id for s in site.sites} | {site.id}
    stored = _stored_ids(engine)
    if site.scoped:
        plain = sorted(i for i in stored if SCOPE_SEPARATOR not in i and i not in site_ids)
        if plain:
            raise IdScopeError(
                f"the database holds plain (single-site) ids such as {_some(plain)}, but this "
                f"deployment is a portfolio of sites {', '.join(sorted(s.id for s in site.sites))}"
                " whose ids are scoped (site:id). Move the database once, with the site those "
                "ids are of: `facility db scope-ids --site <site id>` (back it up first)"
            )
    else:
        scoped = sorted(i for i in stored if SCOPE_SEPARATOR in i)
        if scoped:
            raise IdScopeError(
                f"the database holds scoped (portfolio) ids such as {_some(scoped)}, but this "
                f"deployment is the single site {site.id!r} with plain ids: serve the portfolio "
                "(site.file naming the directory of site files), not one site file"
            )


def _stored_ids(engine: Engine) -> set[str]:
    c = work_orders.c
    ids: set[str] = set()
    with engine.connect() as conn:
        ids.update(conn.execute(select(device_state.c.device_id)).scalars())
        ids.update(conn.execute(select(user_buildings.c.building_id).distinct()).scalars())
        for order in (c.id.desc(), c.id.asc()):
            query = select(c.building_id, c.device_id).order_by(order).limit(SAMPLE)
            for building_id, device_id in conn.execute(query):
                ids.add(building_id)
                if device_id:
                    ids.add(device_id)
    return {i for i in ids if i}


def _some(ids: Collection[str]) -> str:
    shown = sorted(ids)[:3]
    return ", ".join(map(repr, shown)) + (" ..." if len(ids) > 3 else "")
