"""One start-stop lifecycle for every service: start in order, stop in reverse, always.

A service is anything with `start()` and `stop()`; `ServiceStack` starts them one by one and,
whatever happens after (an error at start, a signal, a crash of the main loop), stops those
that started, the last first, through an ExitStack.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class ServiceStack:
    """`with ServiceStack() as services: services.start(a); services.start(b)` stops b, then a."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def start(self, service: Service) -> None:
        service.start()
        self._stack.callback(_stop_quietly, service)

    def start_all(self, services: Iterable[Service]) -> None:
        for service in services:
            self.start(service)

    def callback(self, stop: Callable[[], object]) -> None:
        """Something to undo at stop that is not a service (close a file, dispose an engine)."""
        self._stack.callback(stop)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ServiceStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stop_quietly(service: Service) -> None:
    """One service failing to stop must not keep the ones started before it running."""
    try:
        service.stop()
    except Exception:
        log.exception("stopping %s failed", type(service).__name__)


STACKS_AFTER_S = 12.0
"""A stop still under way this long after the signal prints every thread's stack to stderr.
A stop takes a second or two; one that waits on a hung store or broker waits up to their
timeouts (10 s each by default). Past that the stacks show where it waits, kept in the log
even if whoever waits for the process then kills it. The process goes on stopping."""


def stop_on_signals(stacks_after_s: float = STACKS_AFTER_S) -> threading.Event:
    """An event set by SIGTERM or SIGINT (uvicorn re-raises the ones it captured into these)."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        with contextlib.suppress(OSError, ValueError, RuntimeError):  # stderr is no file
            faulthandler.dump_traceback_later(stacks_after_s, exit=False)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
