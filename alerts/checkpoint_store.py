"""The rules engine's checkpoints in the work-order database, one row per gateway shard.

A hot-standby gateway (`gateway.leadership`) cannot keep its rule state in a local file: the
next leader runs on another host. The active gateway saves its engine's arrays (the same npz
as the file checkpoint, `alerts.rule_checkpoint`) under the shard's name; the next leader
loads them on takeover and replays the gap from the time-series store (`alerts.takeover`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, text

from db.engine import begin_write, upsert_for
from db.leader_lock import HOLDS, LockHolder
from db.schema import rule_checkpoints

FENCED_SAVE = text(
    "INSERT INTO rule_checkpoints (shard, saved_ms, state) SELECT :shard, :saved_ms, :state"
    " WHERE " + HOLDS + " ON CONFLICT (shard) DO UPDATE"
    " SET saved_ms = excluded.saved_ms, state = excluded.state"
)
"""One statement: the row is written only while the writer's lock session holds the lock."""


@dataclass(frozen=True, slots=True)
class SavedState:
    state: bytes
    saved_ms: int
    """The saving leader's wall clock when it saved."""


class RuleCheckpointStore:
    def __init__(
        self,
        engine: Engine,
        shard: str,
        *,
        holder: Callable[[], LockHolder | None] | None = None,
    ) -> None:
        """`holder`: the shard's lock session (PostgreSQL); given, a save is fenced: a leader
        that lost its lock (a stale one, still running) cannot overwrite its successor's."""
        self.engine = engine
        self.shard = shard
        self.holder = holder
        self.fenced = 0
        """Saves refused because the lock was no longer held."""

    def save(self, state: bytes, saved_ms: int) -> bool:
        """Write the shard's row; False when fenced (nothing written)."""
        if self.holder is not None:
            return self._save_fenced(state, saved_ms, self.holder())
        upsert = upsert_for(self.engine)
        statement = upsert(rule_checkpoints).values(
            shard=self.shard, saved_ms=saved_ms, state=state
        )
        statement = statement.on_conflict_do_update(
            index_elements=[rule_checkpoints.c.shard],
            set_={"saved_ms": statement.excluded.saved_ms, "state": statement.excluded.state},
        )
        with begin_write(self.engine) as conn:
            conn.execute(statement)
        return True

    def _save_fenced(self, state: bytes, saved_ms: int, holder: LockHolder | None) -> bool:
        written = 0
        if holder is not None:
            params = {"shard": self.shard, "saved_ms": saved_ms, "state": state}
            with begin_write(self.engine) as conn:
                written = conn.execute(FENCED_SAVE, {**params, **holder.params()}).rowcount
        if not written:
            self.fenced += 1
        return bool(written)

    def load(self) -> SavedState | None:
        """The shard's last checkpoint; None when it has none yet."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(rule_checkpoints.c.state, rule_checkpoints.c.saved_ms).where(
                    rule_checkpoints.c.shard == self.shard
                )
            ).first()
        return None if row is None else SavedState(bytes(row[0]), int(row[1]))
