"""Escalating overdue work orders; the composition root runs `run_once` on a periodic worker,
since an SLA is missed whether or not data arrives."""

from __future__ import annotations

import logging

from alerts.store import WorkOrderStore

log = logging.getLogger(__name__)


class EscalationLoop:
    """`escalate_overdue`, to be called every `interval_s`; the audit events it writes are what the
    notification relays deliver, so escalation needs no channel of its own."""

    def __init__(self, store: WorkOrderStore, interval_s: float = 30.0) -> None:
        self.store = store
        self.interval_s = interval_s
        self.escalated = 0

    def run_once(self) -> int:
        orders = self.store.escalate_overdue()
        for order in orders:
            log.warning(
                "work order %d (%s) escalated to level %d",
                order.id, order.title, order.escalation_level,
            )  # fmt: skip
        self.escalated += len(orders)
        return len(orders)
