"""Per-device sequence tracking: a gap in `seq` means readings were lost before the gateway."""

from __future__ import annotations

import numpy as np

from facility.batch import Batch
from facility.site import Site


class SequenceTracker:
    """Counts missing sequence numbers per device, vectorised over a batch.

    Readings are taken in time order per device. A reading not newer than the newest one seen
    from that device is a replay (QoS 1 redelivery) and changes nothing. Among newer readings,
    a `seq` more than one above the previous counts the numbers in between as lost; a `seq`
    that falls is a reboot and starts counting afresh.
    """

    def __init__(self, site: Site) -> None:
        self._last_seq = {k: np.full(len(d), -1, dtype=np.int64) for k, d in site.by_kind.items()}
        self._last_ts = {
            k: np.full(len(d), np.iinfo(np.int64).min, dtype=np.int64)
            for k, d in site.by_kind.items()
        }
        self.gaps_total = 0

    def observe(self, batch: Batch) -> int:
        """Record a batch; return how many readings are missing in it."""
        missing = 0
        for kb in batch:
            last_seq, last_ts = self._last_seq[kb.kind.name], self._last_ts[kb.kind.name]
            fresh = kb.ts_ms > last_ts[kb.device]
            order = np.lexsort((kb.seq[fresh], kb.ts_ms[fresh], kb.device[fresh]))
            dev = kb.device[fresh][order]
            seq = kb.seq[fresh][order]
            ts = kb.ts_ms[fresh][order]
            if not len(dev):
                continue
            first = np.ones(len(dev), dtype=np.bool_)
            first[1:] = dev[1:] != dev[:-1]
            previous = np.empty_like(seq)
            previous[1:] = seq[:-1]
            previous[first] = last_seq[dev[first]]
            step = seq - previous
            missing += int(np.sum(np.where((previous >= 0) & (step > 1), step - 1, 0)))
            newest = np.ones(len(dev), dtype=np.bool_)
            newest[:-1] = dev[:-1] != dev[1:]
            last_seq[dev[newest]] = seq[newest]
            last_ts[dev[newest]] = ts[newest]
        self.gaps_total += missing
        return missing
