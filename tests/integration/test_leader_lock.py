"""The shard's leader lock on a real PostgreSQL: one holder per shard, freed the moment the
holder's session ends (closed or terminated), checked on the holder's own connection."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from alerts.checkpoint_store import RuleCheckpointStore, SavedState
from db.engine import make_engine
from db.leader_lock import PostgresLeaderLock, application_name, lock_key
from db.migrate import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def locks(postgres_url: str) -> Iterator[list[PostgresLeaderLock]]:
    made: list[PostgresLeaderLock] = []
    yield made
    for lock in made:
        lock.dispose()


def _lock(locks: list[PostgresLeaderLock], url: str, shard: str) -> PostgresLeaderLock:
    lock = PostgresLeaderLock(url, shard)
    locks.append(lock)
    return lock


def _terminate(url: str, shard: str) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (application_name(shard),),
        ).fetchall()
    assert ended
    assert all(row == (True,) for row in ended)


def test_one_holder_per_shard_and_the_lock_moves_when_its_session_ends(
    locks: list[PostgresLeaderLock], postgres_url: str
) -> None:
    a = _lock(locks, postgres_url, "north")
    b = _lock(locks, postgres_url, "north")
    other = _lock(locks, postgres_url, "south")
    assert a.try_acquire()
    assert a.try_acquire()  # re-entrant for its holder: still one session
    assert not b.try_acquire()
    assert other.try_acquire()  # another shard, another lock
    assert a.check()
    assert not b.check()
    _terminate(postgres_url, "north")  # both north sessions: a held it, b only waited
    assert not a.check()  # the holder's check fails at once: it fences
    # b's own waiting session was cut too: that poll fails, the next connects and wins
    assert [b.try_acquire(), b.try_acquire()] == [False, True]
    assert b.check()
    assert not a.try_acquire()
    b.release()
    assert a.try_acquire()
    assert other.check()


def test_a_database_that_cannot_be_reached_is_no_lock_and_no_crash() -> None:
    lock = PostgresLeaderLock("postgresql://nobody@127.0.0.1:1/nothing", "north")
    try:
        assert not lock.try_acquire()
        assert not lock.check()
        lock.release()
    finally:
        lock.dispose()


def test_the_key_is_stable_and_the_name_fits_postgresql() -> None:
    assert lock_key("north") == lock_key("north") != lock_key("south")
    # pinned: gateways of two releases running side by side (an upgrade) must agree on it
    assert lock_key("site-shangri-la") == 8294922821961455145
    assert -(2**63) <= lock_key("x" * 500) < 2**63
    assert len(application_name("x" * 500)) == 63


def test_a_checkpoint_is_written_only_while_its_writers_lock_holds(
    locks: list[PostgresLeaderLock], postgres_url: str
) -> None:
    """The fence on rule state: a stale leader (its lock session gone, the process alive)
    cannot overwrite the checkpoint of the leader after it."""
    engine = make_engine(postgres_url)
    try:
        migrate(engine)
        old = _lock(locks, postgres_url, "north")
        new = _lock(locks, postgres_url, "north")
        stale = RuleCheckpointStore(engine, "north", holder=old.holder)
        current = RuleCheckpointStore(engine, "north", holder=new.holder)
        assert not stale.save(b"before any lock", 1)  # no lock held: nothing written
        assert stale.load() is None
        assert old.try_acquire()
        assert stale.save(b"old leader", 2)
        holder = old.holder()
        _terminate(postgres_url, "north")  # the old leader's lock session dies...
        assert new.try_acquire()  # ...the new leader takes over and saves
        assert current.save(b"new leader", 3)
        old_again = RuleCheckpointStore(engine, "north", holder=lambda: holder)
        assert not old_again.save(b"stale write", 4)  # the old one had not noticed yet
        assert current.load() == SavedState(b"new leader", 3)
        assert (stale.fenced, old_again.fenced, current.fenced) == (1, 1, 0)
    finally:
        engine.dispose()
