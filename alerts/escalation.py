"""Escalating overdue work orders on a timer: an SLA is missed whether or not data arrives."""

from __future__ import annotations

import logging
import threading

from alerts.store import WorkOrderStore

log = logging.getLogger(__name__)


class EscalationLoop:
    """Calls `escalate_overdue` every `interval_s`; the audit events it writes are what the
    notification relays deliver, so escalation needs no channel of its own."""

    def __init__(self, store: WorkOrderStore, interval_s: float = 30.0) -> None:
        self.store = store
        self.interval_s = interval_s
        self.escalated = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        orders = self.store.escalate_overdue()
        for order in orders:
            log.warning(
                "work order %d (%s) escalated to level %d",
                order.id, order.title, order.escalation_level,
            )  # fmt: skip
        self.escalated += len(orders)
        return len(orders)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end escalation for good
                log.exception("escalating overdue work orders failed; retrying")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="escalation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
