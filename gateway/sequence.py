"""Per-device sequence tracking: a gap in `seq` means readings were lost before the gateway."""

from __future__ import annotations

import numpy as np

from facility.batch import Batch
from facility.site import Site


class SequenceTracker:
    """Counts missing sequence numbers per device, vectorised over a batch.

    A device that restarts from a lower `seq` (reboot) starts a new count and is not a gap;
    a replayed (duplicate) reading is not a gap either.
    """

    def __init__(self, site: Site) -> None:
        self._last = {k: np.full(len(d), -1, dtype=np.int64) for k, d in site.by_kind.items()}
        self.gaps_total = 0

    def observe(self, batch: Batch) -> int:
        """Record a batch; return how many readings are missing in it."""
        missing = 0
        for kb in batch:
            last = self._last[kb.kind.name]
            order = np.lexsort((kb.seq, kb.device))
            dev = kb.device[order]
            seq = kb.seq[order]
            first = np.ones(len(dev), dtype=np.bool_)
            first[1:] = dev[1:] != dev[:-1]
            previous = np.empty_like(seq)
            previous[1:] = seq[:-1]
            previous[first] = last[dev[first]]
            known = previous >= 0
            step = seq - previous
            missing += int(np.sum(np.where(known & (step > 1), step - 1, 0)))
            # Remember the highest seq per device; a reboot (seq fell) resets to the new value.
            last_of_device = np.ones(len(dev), dtype=np.bool_)
            last_of_device[:-1] = dev[:-1] != dev[1:]
            last[dev[last_of_device]] = seq[last_of_device]
        self.gaps_total += missing
        return missing
