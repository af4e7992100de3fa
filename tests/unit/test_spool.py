"""The segment spool: records, merging, the cap, torn tails, old-format migration, a real crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import GATE, PUMP
from ingest.errors import SpoolError, SpoolFullError
from ingest.spool import Spool
from ingest.spool_codec import (
    HEADER,
    decode_payload,
    encode_legacy_npz,
    encode_record,
)

ROOT = Path(__file__).resolve().parents[2]


def pump_batch(readings: int, *, first_ts: int = 1_790_000_000_000, device: int = 0) -> Batch:
    values = np.full((readings, len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = np.round(1.5 + np.sin(np.arange(readings)) / 10, 2)
    values[:, PUMP.col("running")] = 1.0
    kb = KindBatch(
        PUMP,
        np.full(readings, device, np.int32),
        first_ts + np.arange(readings, dtype=np.int64) * 1000,
        np.arange(1, readings + 1, dtype=np.int64),
        np.asfortranarray(values),
    )
    return Batch("s", {"pump": kb})


def first_ts(batch: Batch) -> int:
    return int(batch.kinds["pump"].ts_ms[0])


def drain_all(spool: Spool, max_readings: int = 1_000_000) -> list[Batch]:
    out = []
    while (lease := spool.take(max_readings)) is not None:
        out.append(lease.batch)
        spool.commit(lease)
    return out


def filled(path: Path, batches: int, readings: int, segment_bytes: int = 4 << 20) -> Spool:
    """A spool holding `batches` pump batches of `readings`, the i-th from ts i * 1,000 s."""
    spool = Spool(path, max_bytes=10 << 20, segment_bytes=segment_bytes)
    for i in range(batches):
        spool.append(pump_batch(readings, first_ts=i * 1_000_000))
    return spool


def test_a_record_round_trips_every_kind_column_and_nan() -> None:
    gate = KindBatch(
        GATE,
        np.array([2, 0, 1], np.int32),
        np.array([5, 3, 9], np.int64) + 1_790_000_000_000,
        np.array([7, 1, 4], np.int64),
        np.asfortranarray(np.arange(3 * len(GATE.fields), dtype=np.float64).reshape(3, -1)),
    )
    batch = Batch("site-x", {"pump": pump_batch(4).kinds["pump"], "gate": gate})
    record = encode_record(batch)
    back = decode_payload(record[HEADER.size :])
    assert back.site_id == "site-x"
    for name, kb in batch.kinds.items():
        got = back.kinds[name]
        np.testing.assert_array_equal(got.device, kb.device)
        np.testing.assert_array_equal(got.ts_ms, kb.ts_ms)
        np.testing.assert_array_equal(got.seq, kb.seq)
        np.testing.assert_array_equal(got.values, kb.values)  # NaN where unreported, too
        assert got.values.flags.f_contiguous


def test_records_are_several_times_smaller_than_the_old_files() -> None:
    batch = pump_batch(1000)
    assert len(encode_record(batch)) * 4 < len(encode_legacy_npz(batch))


def test_appends_fill_segments_and_the_drainer_merges_records(tmp_path: Path) -> None:
    spool = filled(tmp_path / "spool", 30, 100, segment_bytes=4096)
    assert spool.segments >= 3
    assert len(spool) == 30
    lease = spool.take(1000)
    assert lease is not None
    assert len(lease.batch) == 1000  # ten records merged into one write
    assert first_ts(lease.batch) == 0
    spool.commit(lease)
    rest = drain_all(spool, 1000)
    assert [len(b) for b in rest] == [1000, 1000]
    assert first_ts(rest[0]) == 10_000_000
    assert len(spool) == 0
    assert spool.segments == 0
    assert list((tmp_path / "spool").glob("*.seg")) == []
    spool.close()


def test_an_uncommitted_lease_is_taken_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    spool.append(pump_batch(5))
    first = spool.take(100)
    again = spool.take(100)
    assert first is not None
    assert again is not None
    assert len(first.batch) == len(again.batch) == 5
    spool.close()


def test_the_spool_survives_a_restart_and_keeps_order(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool", max_bytes=10 << 20, segment_bytes=4096)
    for i in range(20):
        first.append(pump_batch(50, first_ts=i * 1_000_000))
    lease = first.take(100)
    assert lease is not None
    first.commit(lease)
    first.close()
    reopened = Spool(tmp_path / "spool", max_bytes=10 << 20, segment_bytes=4096)
    # A segment's progress is not persisted: its committed records may come again (the store
    # takes them as the same points), but every uncommitted one comes, in order.
    stamps = [first_ts(b) for b in drain_all(reopened, 50)]
    assert stamps == sorted(stamps)
    assert stamps[-18:] == [i * 1_000_000 for i in range(2, 20)]
    reopened.close()


def test_a_torn_tail_is_cut_counted_and_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    for i in range(3):
        spool.append(pump_batch(10, first_ts=i * 1_000_000))
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    sizes = [len(encode_record(pump_batch(10, first_ts=i * 1_000_000))) for i in range(3)]
    assert segment.stat().st_size == sum(sizes)
    os.truncate(segment, sum(sizes) - sizes[2] // 2)  # the last append was cut short by a crash
    reopened = Spool(tmp_path / "spool", max_bytes=10 << 20)
    assert reopened.torn_records == 1
    assert reopened.readings == 20
    assert segment.stat().st_size == sizes[0] + sizes[1]
    assert len(list((tmp_path / "spool").glob("*.torn-*"))) == 1
    reopened.append(pump_batch(10, first_ts=9_000_000))  # goes on in a new segment
    assert [first_ts(b) for b in drain_all(reopened, 10)] == [0, 1_000_000, 9_000_000]
    reopened.close()


def test_a_damaged_record_never_passes_as_readings(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    spool.append(pump_batch(10, first_ts=0))
    spool.append(pump_batch(10, first_ts=1_000_000))
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0xFF  # a flipped bit in the last record's payload
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path / "spool", max_bytes=10 << 20)
    assert reopened.torn_records == 1
    assert [first_ts(b) for b in drain_all(reopened)] == [0]
    reopened.close()


def test_old_format_files_are_migrated_in_order(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    for number, ts in ((1, 5_000_000), (2, 6_000_000)):
        batch = pump_batch(7, first_ts=ts)
        (directory / f"{number:016d}.{len(batch)}.npz").write_bytes(encode_legacy_npz(batch))
    (directory / f"{3:016d}.7.npz").write_bytes(b"not an npz")
    (directory / f"{4:016d}.7.tmp").write_bytes(b"half")
    spool = Spool(directory, max_bytes=10 << 20)
    assert spool.readings == 14
    assert list(directory.glob("*.npz")) == []
    assert list(directory.glob("*.corrupt"))  # unreadable: kept aside, not fatal
    assert list(directory.glob("*.tmp")) == []
    assert [first_ts(b) for b in drain_all(spool, 7)] == [5_000_000, 6_000_000]
    spool.close()


def test_a_full_spool_blocks_by_default_and_loses_nothing(tmp_path: Path) -> None:
    size = len(encode_record(pump_batch(100)))
    spool = Spool(tmp_path / "spool", max_bytes=size * 3 + size // 2, segment_bytes=size)
    for i in range(3):
        spool.append(pump_batch(100, first_ts=i * 1_000_000))
    with pytest.raises(SpoolFullError):
        spool.append(pump_batch(100, first_ts=3_000_000))
    assert spool.dropped_readings == 0
    lease = spool.take(100)
    assert lease is not None
    spool.commit(lease)
    spool.append(pump_batch(100, first_ts=3_000_000))  # room again
    assert [first_ts(b) for b in drain_all(spool, 100)] == [1_000_000, 2_000_000, 3_000_000]
    spool.close()


def test_drop_oldest_deletes_the_oldest_segment_and_counts_it(tmp_path: Path) -> None:
    size = len(encode_record(pump_batch(100)))
    spool = Spool(
        tmp_path / "spool", max_bytes=size * 4 + size // 2, segment_bytes=size,
        when_full="drop-oldest",
    )  # fmt: skip
    for i in range(6):
        spool.append(pump_batch(100, first_ts=i * 1_000_000))
    assert spool.dropped_readings == 200
    assert spool.disk_bytes <= spool.max_bytes
    assert [first_ts(b) for b in drain_all(spool, 100)] == [
        2_000_000 + i * 1_000_000 for i in range(4)
    ]
    spool.close()


def test_a_spool_directory_in_use_by_another_gateway_is_refused(tmp_path: Path) -> None:
    """Two gateways on one spool would drain and delete each other's batches."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SPOOL, str(tmp_path / "spool")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"holding\n"
        with pytest.raises(SpoolError, match=rf"in use by another process \(pid {holder.pid}\)"):
            Spool(tmp_path / "spool", max_bytes=10 << 20)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # it exits, and its lock goes with it
        holder.wait(30)
        assert holder.stdout is not None
        holder.stdout.close()
    Spool(tmp_path / "spool", max_bytes=10 << 20).close()  # free again


HOLD_SPOOL = """
import sys
from pathlib import Path
from ingest.spool import Spool
spool = Spool(Path(sys.argv[1]), max_bytes=1 << 20)
print("holding", flush=True)
sys.stdin.read()
"""

APPEND_FOREVER = """
import sys
from pathlib import Path
from ingest.spool import Spool
from tests.unit.test_spool import pump_batch
spool = Spool(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=64 << 10)
i = 0
while True:
    spool.append(pump_batch(500, first_ts=i * 1_000_000))
    i += 1
    print(i, flush=True)  # acked: append returned
"""


def test_sigkill_mid_append_keeps_every_acked_batch(tmp_path: Path) -> None:
    """A real crash: whatever `append` returned for is there after a restart, and readable."""
    child = subprocess.Popen(
        [sys.executable, "-c", APPEND_FOREVER, str(tmp_path / "spool")],
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        acked = 0
        while acked < 60:
            acked = int(child.stdout.readline())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        assert child.stdout is not None
        child.stdout.close()
    spool = Spool(tmp_path / "spool", max_bytes=1 << 30, segment_bytes=64 << 10)
    batches = drain_all(spool, 500)
    assert len(batches) >= acked
    assert [first_ts(b) for b in batches] == [i * 1_000_000 for i in range(len(batches))]
    assert spool.torn_records in (0, 1)
    spool.close()


def test_a_lease_taken_after_another_holds_the_records_that_follow(tmp_path: Path) -> None:
    """The drainer reads the next write while the store takes the current one."""
    spool = filled(tmp_path / "spool", 30, 100, segment_bytes=4096)
    first = spool.take(1000)
    assert first is not None
    second = spool.take(1000, after=first)
    third = spool.take(1000, after=second)
    assert second is not None
    assert third is not None
    assert [first_ts(lease.batch) for lease in (first, second, third)] == [
        0, 10_000_000, 20_000_000,
    ]  # fmt: skip
    assert spool.take(1000, after=third) is None  # nothing follows the last
    spool.commit(first)
    spool.commit(second)
    assert len(spool) == 10
    spool.commit(third)
    assert len(spool) == 0
    assert spool.segments == 0
    spool.close()


def test_leases_after_an_uncommitted_one_are_taken_again(tmp_path: Path) -> None:
    spool = filled(tmp_path / "spool", 3, 10)
    first = spool.take(10)
    assert first is not None
    following = spool.take(10, after=first)
    assert following is not None
    assert first_ts(following.batch) == 1_000_000
    # the first write failed, so neither is committed: the drainer starts again from the oldest
    again = spool.take(10)
    assert again is not None
    assert first_ts(again.batch) == 0
    assert [first_ts(b) for b in drain_all(spool, 10)] == [0, 1_000_000, 2_000_000]
    spool.close()


def test_records_appended_while_a_lease_is_out_follow_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    spool.append(pump_batch(10, first_ts=0))
    first = spool.take(100)
    assert first is not None
    assert spool.take(100, after=first) is None
    spool.append(pump_batch(10, first_ts=1_000_000))  # into the same (active) segment
    following = spool.take(100, after=first)
    assert following is not None
    assert first_ts(following.batch) == 1_000_000
    spool.commit(first)
    spool.commit(following)
    assert len(spool) == 0
    spool.close()
