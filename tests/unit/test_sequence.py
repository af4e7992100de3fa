"""gateway/sequence.py: lost readings counted from gaps in each device's `seq`."""

from __future__ import annotations

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import GATE, PUMP, KindSpec
from facility.site import parse_site
from gateway.sequence import SequenceTracker

SITE = parse_site(
    """
[site]
id = "s1"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "u1"
devices = [
  { id = "p1", kind = "pump" },
  { id = "p2", kind = "pump" },
  { id = "g1", kind = "gate" },
]
"""
)
T0 = 1_790_000_000_000


def _kind(spec: KindSpec, readings: list[tuple[int, int]]) -> KindBatch:
    """readings: (kind_index, seq). A device stamps `seq` n at T0 + n s, as a live device
    whose counter and clock run together would; reordering readings reorders both."""
    return _timed(spec, [(index, seq, seq) for index, seq in readings])


def _timed(spec: KindSpec, readings: list[tuple[int, int, int]]) -> KindBatch:
    """readings: (kind_index, seq, seconds after T0) for when the clock and counter part ways."""
    n = len(readings)
    values = np.full((n, len(spec.fields)), np.nan)
    values[:, 0] = 1.0
    return KindBatch(
        spec,
        np.array([r[0] for r in readings], np.int32),
        T0 + 1000 * np.array([r[2] for r in readings], np.int64),
        np.array([r[1] for r in readings], np.int64),
        values,
    )


def _pumps(*readings: tuple[int, int]) -> Batch:
    return Batch("s1", {"pump": _kind(PUMP, list(readings))})


def _p1(*seqs: int) -> Batch:
    return _pumps(*((0, s) for s in seqs))


def _p1_at(*readings: tuple[int, int]) -> Batch:
    """p1 readings as (seq, seconds after T0): a reboot restarts seq while time goes on."""
    return Batch("s1", {"pump": _timed(PUMP, [(0, seq, at) for seq, at in readings])})


def test_first_reading_of_a_device_is_never_a_gap() -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1(500)) == 0
    assert tracker.gaps_total == 0


def test_consecutive_seqs_across_batches_have_no_gap() -> None:
    tracker = SequenceTracker(SITE)

    assert [tracker.observe(_p1(*s)) for s in ([1, 2, 3], [4], [5, 6])] == [0, 0, 0]
    assert tracker.gaps_total == 0


@pytest.mark.parametrize("k", [1, 2, 7])
def test_a_gap_of_k_within_a_batch_counts_k(k: int) -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1(1, 2, 3 + k, 4 + k)) == k
    assert tracker.gaps_total == k


@pytest.mark.parametrize("k", [1, 5])
def test_a_gap_of_k_between_batches_counts_k(k: int) -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1(10, 11)) == 0
    assert tracker.observe(_p1(12 + k)) == k
    assert tracker.observe(_p1(13 + k)) == 0
    assert tracker.gaps_total == k


def test_gaps_add_up_over_batches_and_devices() -> None:
    tracker = SequenceTracker(SITE)

    # p1: 1, 3 (1 lost); p2: 10, 14 (3 lost)
    assert tracker.observe(_pumps((0, 1), (1, 10), (0, 3), (1, 14))) == 4
    # p1: 3 -> 6 (2 lost); p2: 14 -> 15
    assert tracker.observe(_pumps((1, 15), (0, 6))) == 2
    assert tracker.gaps_total == 6


def test_out_of_order_within_a_batch_is_not_a_gap() -> None:
    tracker = SequenceTracker(SITE)
    tracker.observe(_p1(1))

    assert tracker.observe(_p1(4, 2, 5, 3)) == 0
    assert tracker.observe(_p1(6)) == 0
    assert tracker.gaps_total == 0


def test_duplicates_within_a_batch_are_not_gaps() -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1(1, 2, 2, 3, 3, 3)) == 0
    assert tracker.observe(_p1(4)) == 0


def test_a_duplicate_of_the_last_seen_reading_is_not_a_gap() -> None:
    tracker = SequenceTracker(SITE)
    tracker.observe(_p1(1, 2, 3))

    assert tracker.observe(_p1(3)) == 0
    assert tracker.observe(_p1(4)) == 0
    assert tracker.gaps_total == 0


def test_a_replayed_older_reading_in_a_later_batch_is_not_a_gap() -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1(1, 2, 3)) == 0
    assert tracker.observe(_p1(2)) == 0  # QoS 1 redelivery of seq 2
    assert tracker.observe(_p1(4)) == 0
    assert tracker.gaps_total == 0


def test_a_reboot_between_batches_is_not_a_gap() -> None:
    tracker = SequenceTracker(SITE)

    assert tracker.observe(_p1_at((100, 100), (101, 101))) == 0
    assert tracker.observe(_p1_at((0, 200), (1, 201), (2, 202))) == 0
    # Counting goes on from the new numbering.
    assert tracker.observe(_p1_at((5, 205))) == 2
    assert tracker.gaps_total == 2


def test_a_reboot_within_a_batch_is_not_a_gap() -> None:
    tracker = SequenceTracker(SITE)
    tracker.observe(_p1_at((100, 100)))

    assert tracker.observe(_p1_at((101, 101), (102, 102), (1, 200), (2, 201))) == 0
    assert tracker.observe(_p1_at((4, 203))) == 1


def test_devices_are_tracked_separately() -> None:
    tracker = SequenceTracker(SITE)
    tracker.observe(_pumps((0, 1), (1, 50)))

    # p2 continues at 51; p1 continues at 2: interleaving devices is no gap.
    assert tracker.observe(_pumps((1, 51), (0, 2), (1, 52), (0, 3))) == 0


def test_kinds_are_tracked_separately() -> None:
    tracker = SequenceTracker(SITE)
    first = Batch("s1", {"pump": _kind(PUMP, [(0, 1)]), "gate": _kind(GATE, [(0, 1)])})
    second = Batch("s1", {"pump": _kind(PUMP, [(0, 2)]), "gate": _kind(GATE, [(0, 4)])})

    assert tracker.observe(first) == 0
    # pump 0 is p1 and gate 0 is g1: g1 lost 2 and 3, p1 lost nothing.
    assert tracker.observe(second) == 2


def test_an_empty_batch_changes_nothing() -> None:
    tracker = SequenceTracker(SITE)
    tracker.observe(_p1(1))

    assert tracker.observe(Batch("s1", {})) == 0
    assert tracker.observe(Batch("s1", {"pump": KindBatch.empty(PUMP)})) == 0
    assert tracker.observe(_p1(2)) == 0
