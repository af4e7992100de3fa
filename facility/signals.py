"""Keeping asynchronous signals off a worker thread.

A signal that lands on a thread interrupts the wait it is in. Most waits take that in their
stride, but `queue.SimpleQueue.get` with a timeout (CPython 3.11) does not: interrupted near
its deadline, it recomputes the time left, finds it negative, and a negative timeout means no
timeout at all; it waits on for an item that may never come. A thread that waits that way
blocks the signals a process is sent (TERM, INT, HUP, USR1...), so the kernel hands them to
another thread; Python runs its handlers on the main thread whichever thread took them.
"""

from __future__ import annotations

import signal

SYNCHRONOUS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT, signal.SIGTRAP}
)
"""Raised by the thread's own fault: left to it (faulthandler reports them)."""


def block_async_signals() -> None:
    """From now on, the signals sent to the process are delivered to its other threads."""
    blocked = signal.valid_signals() - SYNCHRONOUS - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
