"""`alerts.status.status_codes`: the one place a device's and a building's status is decided.

Edge cases by hand, then random boards against the rules written plainly (one device at a
time, as docs/dashboard.md states them).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from alerts.status import (
    ALARM_ORDER,
    NO_ORDER,
    NO_READING,
    OTHER_ORDER,
    STATUS_RANK,
    STATUSES,
    Status,
    StatusBoard,
    device_status,
    status_codes,
)
from alerts.store import DeviceState
from facility.site import Building, Device, Unit

NOW = 1_790_000_000_000
HEARTBEAT = 60_000


def _codes(
    last_seen: list[int],
    orders: list[int],
    bounds: list[int] | None = None,
    building_alarm: list[bool] | None = None,
) -> tuple[list[Status], list[Status]]:
    bounds = bounds if bounds is not None else [0, len(last_seen)]
    devices, buildings = status_codes(
        now_ms=NOW,
        last_seen_ms=np.array(last_seen, np.int64),
        heartbeat_ms=np.full(len(last_seen), HEARTBEAT, np.int64),
        orders=np.array(orders, np.int8),
        bounds=np.array(bounds, np.intp),
        building_alarm=np.array(building_alarm or [False] * (len(bounds) - 1), np.bool_),
    )
    return [STATUSES[c] for c in devices], [STATUSES[c] for c in buildings]


@pytest.mark.parametrize(
    ("last_seen", "order", "expected"),
    [
        (NOW, NO_ORDER, Status.OK),
        (NOW - HEARTBEAT, NO_ORDER, Status.OK),  # exactly the heartbeat: still online
        (NOW - HEARTBEAT - 1, NO_ORDER, Status.OFFLINE),
        (NO_READING, NO_ORDER, Status.UNKNOWN),
        (NOW, OTHER_ORDER, Status.WARNING),
        (NOW, ALARM_ORDER, Status.ALARM),
        (NOW - HEARTBEAT - 1, OTHER_ORDER, Status.OFFLINE),  # silence outranks a warning
        (NO_READING, OTHER_ORDER, Status.UNKNOWN),
        (NOW - HEARTBEAT - 1, ALARM_ORDER, Status.ALARM),  # a fault outranks silence
        (NO_READING, ALARM_ORDER, Status.ALARM),
        (NOW + 5_000, NO_ORDER, Status.OK),  # a clock a little ahead of ours
    ],
)
def test_one_device(last_seen: int, order: int, expected: Status) -> None:
    devices, buildings = _codes([last_seen], [order])
    assert devices == [expected]
    assert buildings == [expected]


def test_a_building_shows_its_worst_device_and_an_empty_one_is_unknown() -> None:
    devices, buildings = _codes(
        [NOW, NOW, NOW - HEARTBEAT - 1, NO_READING, NOW],
        [NO_ORDER, OTHER_ORDER, NO_ORDER, NO_ORDER, NO_ORDER],
        bounds=[0, 2, 2, 4, 5, 5],
    )
    assert devices == [Status.OK, Status.WARNING, Status.OFFLINE, Status.UNKNOWN, Status.OK]
    assert buildings == [Status.WARNING, Status.UNKNOWN, Status.OFFLINE, Status.OK, Status.UNKNOWN]


def test_a_serious_report_without_a_device_puts_the_building_in_alarm() -> None:
    _, buildings = _codes(
        [NOW, NOW], [NO_ORDER, NO_ORDER], bounds=[0, 1, 1, 2], building_alarm=[False, True, True]
    )
    assert buildings == [Status.OK, Status.ALARM, Status.ALARM]  # an empty building too


def test_a_minor_report_without_a_device_makes_the_building_at_least_a_warning() -> None:
    devices, buildings = status_codes(
        now_ms=NOW,
        last_seen_ms=np.array([NOW, NOW - HEARTBEAT - 1, NOW], np.int64),
        heartbeat_ms=np.full(3, HEARTBEAT, np.int64),
        orders=np.array([NO_ORDER, NO_ORDER, NO_ORDER], np.int8),
        bounds=np.array([0, 1, 2, 3, 3], np.intp),
        building_alarm=np.zeros(4, np.bool_),
        building_warning=np.array([True, True, False, True], np.bool_),
    )
    assert [STATUSES[c] for c in devices] == [Status.OK, Status.OFFLINE, Status.OK]
    # A green building turns amber; an offline one stays offline (worse); an empty one amber.
    assert [STATUSES[c] for c in buildings] == [
        Status.WARNING, Status.OFFLINE, Status.OK, Status.WARNING,
    ]  # fmt: skip


def test_no_devices_and_no_buildings() -> None:
    assert _codes([], [], bounds=[0]) == ([], [])
    assert _codes([], [], bounds=[0, 0]) == ([], [Status.UNKNOWN])


def _buildings() -> tuple[Building, ...]:
    devices = [
        Device("p1", "pump", "Pump 1", "b1", "b1-u1", 0),
        Device("g1", "gate", "Gate 1", "b1", "b1-u1", 0),
        Device("e1", "elevator", "Lift 1", "b2", "b2-u1", 0),
    ]
    b1 = Building("b1", "One", (Unit("b1-u1", "U1", "b1", tuple(devices[:2])),))
    b2 = Building("b2", "Two", (Unit("b2-u1", "U1", "b2", tuple(devices[2:])),))
    return b1, b2, Building("b3", "Three", ())


def test_the_board_reads_orders_by_device_and_building() -> None:
    board = StatusBoard(_buildings())
    result = board.evaluate(
        NOW,
        {"p1": NOW, "g1": NOW, "e1": NOW, "elsewhere": NOW},
        [
            ("p1", "b1", "minor"),
            ("p1", "b1", "critical"),  # the most severe of a device's orders counts
            ("g1", "b1", "warning"),
            ("gone", "b2", "critical"),  # a device no longer on the site: left out
            (None, "b3", "major"),  # a resident's report about b3
            (None, "b2", "minor"),  # a minor one makes it amber: never green while open
            (None, "nowhere", "critical"),
        ],
    )
    assert [STATUSES[c] for c in result.codes] == [Status.ALARM, Status.WARNING, Status.OK]
    assert [STATUSES[c] for c in result.building_codes] == [
        Status.ALARM,
        Status.WARNING,
        Status.ALARM,
    ]
    assert result.last_seen_ms.tolist() == [NOW, NOW, NOW]


def test_device_status_keeps_the_orders_and_values() -> None:
    device = _buildings()[0].devices[0]
    state = DeviceState("p1", "pump", "b1", NOW - 1000, 7, {"running": True})
    ds = device_status(device, state, [], NOW)
    assert (ds.status, ds.last_seen_ms, dict(ds.values)) == (
        Status.OK,
        NOW - 1000,
        {"running": True},
    )
    assert device_status(device, None, [], NOW).status == Status.UNKNOWN


def _plainly(last_seen: int, heartbeat: int, order: int) -> Status:
    """The rules of `alerts.status`, one device at a time."""
    if order == ALARM_ORDER:
        return Status.ALARM
    if last_seen == NO_READING:
        return Status.UNKNOWN
    if NOW - last_seen > heartbeat:
        return Status.OFFLINE
    return Status.WARNING if order == OTHER_ORDER else Status.OK


@pytest.mark.parametrize("seed", range(5))
def test_random_boards_match_the_rules_written_plainly(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 2, 5, 30]) for _ in range(rng.randint(1, 12))]
    count = sum(sizes)
    last_seen = [rng.choice([NO_READING, NOW - rng.randrange(0, 300_000)]) for _ in range(count)]
    heartbeat = [rng.choice([60_000, 120_000]) for _ in range(count)]
    orders = [rng.choice([NO_ORDER, NO_ORDER, OTHER_ORDER, ALARM_ORDER]) for _ in range(count)]
    alarm = [rng.random() < 0.1 for _ in sizes]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    devices, buildings = status_codes(
        now_ms=NOW,
        last_seen_ms=np.array(last_seen, np.int64),
        heartbeat_ms=np.array(heartbeat, np.int64),
        orders=np.array(orders, np.int8),
        bounds=bounds,
        building_alarm=np.array(alarm, np.bool_),
    )
    expected = [_plainly(*row) for row in zip(last_seen, heartbeat, orders, strict=True)]
    assert [STATUSES[c] for c in devices] == expected
    for j, size in enumerate(sizes):
        mine = expected[int(bounds[j]) : int(bounds[j]) + size]
        worst = max(mine, key=STATUS_RANK.__getitem__, default=Status.UNKNOWN)
        assert STATUSES[buildings[j]] == (Status.ALARM if alarm[j] else worst)
