"""Shared counters of API replicas on SQLite and PostgreSQL: the sliding-window rate limits and
the login back-off, hit at once from several processes (each its own engine) — every hit and
every failure counted once, never one too many allowed."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select

from api.auth.backoff import BackoffPolicy, LoginBackoff
from api.auth.ratelimit import MAX_KEY_CHARS, SqlRateLimiter
from api.errors import LoginBackoffError
from db.engine import make_engine
from db.migrate import migrate
from db.schema import login_failures, rate_limit_hits
from tests.api_support import T0
from tests.fakes import FakeClock

T = TypeVar("T")
PROCESSES = 4


@pytest.fixture
def engines(db_url: str) -> Iterator[list[Engine]]:
    """One engine per simulated API process, on one migrated database."""
    engines = [make_engine(db_url) for _ in range(PROCESSES)]
    migrate(engines[0])
    try:
        yield engines
    finally:
        for engine in engines:
            engine.dispose()


def limiter(
    engine: Engine, clock: FakeClock, limit: int = 3, scope: str = "login"
) -> SqlRateLimiter:
    return SqlRateLimiter(engine, scope=scope, limit=limit, window_s=60, clock_ms=clock)


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls on threads released together; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    lock = threading.Lock()

    def run(call: Callable[[], T]) -> None:
        barrier.wait()
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(calls), "a call did not finish"
    return results


def test_a_limit_is_shared_by_every_process(engines: list[Engine]) -> None:
    clock = FakeClock(T0)
    a, b = limiter(engines[0], clock), limiter(engines[1], clock)
    assert [a.hit("10.0.0.1"), b.hit("10.0.0.1"), a.hit("10.0.0.1")] == [None] * 3
    assert b.hit("10.0.0.1") == 60.0  # the fourth, whichever process it reaches
    assert a.hit("10.0.0.2") is None  # another key has its own count
    other_scope = limiter(engines[1], clock, scope="report")
    assert other_scope.hit("10.0.0.1") is None  # and another limit too
    clock.now += 20_000
    assert a.hit("10.0.0.1") == 40.0  # the oldest hit leaves the window in 40 s
    clock.now += 40_000  # a refused hit is not counted: all three left the window now
    assert [b.hit("10.0.0.1") for _ in range(3)] == [None] * 3
    assert a.hit("10.0.0.1") == 60.0


def test_concurrent_hits_on_several_processes_allow_exactly_the_limit(
    engines: list[Engine],
) -> None:
    clock = FakeClock(T0)
    limiters = [limiter(engine, clock, limit=5) for engine in engines]
    calls = [functools.partial(lim.hit, "10.0.0.9") for lim in limiters for _ in range(4)]
    results = at_once(calls)
    assert sum(r is None for r in results) == 5
    assert len(results) == 4 * PROCESSES
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(rate_limit_hits)).scalar() == 5


def test_old_hits_are_pruned_and_long_keys_cut(engines: list[Engine]) -> None:
    clock = FakeClock(T0)
    lim = limiter(engines[0], clock, limit=100)
    for n in range(50):
        assert lim.hit(f"10.0.{n}.1") is None
    assert lim.hit("x" * 10_000) is None  # a header of any length is a bounded key
    clock.now += 61_000
    assert lim.prune(clock.now) == 51
    assert lim.hit("10.0.0.1") is None
    with engines[0].connect() as conn:
        rows = conn.execute(select(rate_limit_hits.c.key)).scalars().all()
    assert rows == ["10.0.0.1"]
    assert all(len(key) <= MAX_KEY_CHARS for key in rows)
    lim.forget("10.0.0.1")
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(rate_limit_hits)).scalar() == 0


def test_concurrent_failed_logins_on_several_processes_are_each_counted(
    engines: list[Engine],
) -> None:
    policy = BackoffPolicy(free_failures=5, base_ms=1_000)
    backoffs = [LoginBackoff(engine, policy) for engine in engines]
    calls = [
        functools.partial(b.failed, "admin", "10.0.0.7", T0) for b in backoffs for _ in range(3)
    ]
    waits = at_once(calls)
    failures = 3 * PROCESSES
    with engines[0].connect() as conn:
        counted = conn.execute(select(login_failures.c.failures)).scalar_one()
    assert counted == failures
    # Each failure saw its own count: the waits are those of failures 1..12, each once.
    assert sorted(waits) == sorted(policy.delay_ms(n) for n in range(1, failures + 1))


def test_tries_at_the_back_off_threshold_at_once_let_one_guess_through(
    engines: list[Engine],
) -> None:
    """Four failures made; the fifth would start the wait. Tries sent at once to several
    processes: one goes on to the password check, the others wait, as after a failure."""
    policy = BackoffPolicy(free_failures=5, base_ms=1_000)
    first = LoginBackoff(engines[0], policy)
    for _ in range(4):
        assert first.failed("admin", "10.0.0.8", T0) == 0
    backoffs = [LoginBackoff(engine, policy) for engine in engines for _ in range(2)]

    def try_once(backoff: LoginBackoff) -> str:
        try:
            backoff.check("admin", "10.0.0.8", T0 + 10)
        except LoginBackoffError as exc:
            return f"wait {exc.retry_after_s}"
        return "go"

    results = at_once([functools.partial(try_once, b) for b in backoffs])
    assert sorted(results) == ["go"] + ["wait 1"] * (len(backoffs) - 1)
    # The one that went on fails: the client waits the same as after five sequential failures.
    assert first.failed("admin", "10.0.0.8", T0 + 10) == 1_000
    with pytest.raises(LoginBackoffError):
        first.check("admin", "10.0.0.8", T0 + 500)
    first.check("admin", "10.0.0.8", T0 + 1_010)  # waited: the next (sixth) try may go


def test_a_success_lifts_the_claim_of_its_try(engines: list[Engine]) -> None:
    policy = BackoffPolicy(free_failures=2, base_ms=1_000)
    backoff = LoginBackoff(engines[0], policy)
    backoff.failed("tech", "10.0.0.9", T0)
    backoff.check("tech", "10.0.0.9", T0 + 1)  # would start the wait if it failed: claimed
    backoff.succeeded("tech", "10.0.0.9")  # ... but it was the right password
    backoff.check("tech", "10.0.0.9", T0 + 2)  # nothing to wait for
    backoff.check("tech", "10.0.0.7", T0 + 2)  # and another address never had to
