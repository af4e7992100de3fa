"""The rules engine's checkpoints in the work-order database, one row per gateway shard.

A hot-standby gateway (`gateway.leadership`) cannot keep its rule state in a local file: the
next leader runs on another host. The active gateway saves its engine's arrays (the same npz
as the file checkpoint, `alerts.rule_checkpoint`) under the shard's name; the next leader
loads them on takeover and replays the gap from the time-series store (`alerts.takeover`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from db.engine import begin_write, upsert_for
from db.schema import rule_checkpoints


@dataclass(frozen=True, slots=True)
class SavedState:
    state: bytes
    saved_ms: int
    """The saving leader's wall clock when it saved."""


class RuleCheckpointStore:
    def __init__(self, engine: Engine, shard: str) -> None:
        self.engine = engine
        self.shard = shard

    def save(self, state: bytes, saved_ms: int) -> None:
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

    def load(self) -> SavedState | None:
        """The shard's last checkpoint; None when it has none yet."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(rule_checkpoints.c.state, rule_checkpoints.c.saved_ms).where(
                    rule_checkpoints.c.shard == self.shard
                )
            ).first()
        return None if row is None else SavedState(bytes(row[0]), int(row[1]))
