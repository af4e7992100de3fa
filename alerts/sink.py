"""The alerts stage as a batch sink: rules over the batch, faults into work orders."""

from __future__ import annotations

import logging

from alerts.engine import RuleEngine
from alerts.store import WorkOrderStore
from facility.batch import Batch
from facility.site import Site

log = logging.getLogger(__name__)


class AlertsSink:
    def __init__(self, site: Site, engine: RuleEngine, store: WorkOrderStore) -> None:
        self.site = site
        self.engine = engine
        self.store = store

    def handle(self, batch: Batch) -> None:
        evaluation = self.engine.evaluate(batch)
        self.store.open_for_faults(self.site.id, evaluation.opened)
        self.store.record_clears(evaluation.cleared)
        self.store.update_device_state(self.site, batch)
        for fault in evaluation.opened:
            log.info("fault %s on %s since %d", fault.rule_id, fault.device_id, fault.started_ms)
