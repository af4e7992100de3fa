"""alerts/workorders.py: the lifecycle table, SLA and assignment policy, and its settings."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.workorders import (
    DEFAULT_SEVERITIES,
    TRANSITIONS,
    AssignmentRule,
    InvalidTransitionError,
    SeverityPolicy,
    WorkOrderPolicy,
    WorkOrderPolicyError,
    WorkOrderStatus,
    check_transition,
    fullest_window,
    policy_from_mapping,
)
from db.schema import OPEN_STATUSES

S = WorkOrderStatus


def test_the_open_statuses_are_those_that_can_still_be_resolved() -> None:
    """The partial unique index (schema) and the lifecycle must agree on what is open."""
    can_resolve = {str(s) for s, targets in TRANSITIONS.items() if S.RESOLVED in targets}
    assert can_resolve == set(OPEN_STATUSES)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        ("open", "acknowledged"),
        ("acknowledged", "in_progress"),
        ("in_progress", "on_hold"),
        ("on_hold", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
        ("resolved", "open"),
        ("open", "cancelled"),
        ("on_hold", "cancelled"),
    ],
)
def test_allowed_transitions(from_status: str, to_status: str) -> None:
    assert check_transition(7, from_status, to_status) == S(to_status)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        ("closed", "open"),
        ("cancelled", "open"),
        ("closed", "resolved"),
        ("resolved", "in_progress"),
        ("in_progress", "acknowledged"),
        ("open", "open"),
        ("open", "closed"),
        ("open", "done"),
        ("nonsense", "open"),
    ],
)
def test_refused_transitions_name_the_order_and_the_statuses(
    from_status: str, to_status: str
) -> None:
    with pytest.raises(InvalidTransitionError) as info:
        check_transition(7, from_status, to_status)
    message = str(info.value)
    assert "work order 7" in message
    assert repr(from_status) in message
    assert repr(to_status) in message


def test_a_final_status_says_so() -> None:
    with pytest.raises(InvalidTransitionError, match="none, it is final"):
        check_transition(1, "closed", "open")


def test_sla_is_measured_from_the_fault_start() -> None:
    policy = WorkOrderPolicy()

    assert policy.sla("critical", 1_000) == (1, 1_000 + 15 * 60_000, 1_000 + 4 * 3_600_000)
    assert policy.sla("major", 0) == (2, 3_600_000, 86_400_000)


def test_an_unknown_severity_gets_the_mildest_terms() -> None:
    policy = WorkOrderPolicy()

    assert policy.for_severity("catastrophic") == DEFAULT_SEVERITIES["warning"]


def test_assignment_first_matching_rule_wins_then_the_default_team() -> None:
    policy = WorkOrderPolicy(
        assignment=(
            AssignmentRule("lifts-north", frozenset({"elevator"}), "n*"),
            AssignmentRule("lifts", frozenset({"elevator"})),
            AssignmentRule("north-caretaker", building="n*"),
        ),
        default_team="maintenance",
    )

    assert policy.team_for("elevator", "n01") == "lifts-north"
    assert policy.team_for("elevator", "s01") == "lifts"
    assert policy.team_for("pump", "n02") == "north-caretaker"
    assert policy.team_for(None, "n02") == "north-caretaker"
    assert policy.team_for("pump", "s02") == "maintenance"
    assert WorkOrderPolicy(assignment=(), default_team=None).team_for("pump", "x") is None


def test_policy_from_mapping_overrides_only_what_it_names() -> None:
    policy = policy_from_mapping(
        {
            "severities": {"critical": {"respond_s": 600}, "cosmetic": {"priority": 5}},
            "assignment": [{"team": "lifts", "kinds": ["elevator"], "building": "b0*"}],
            "default_team": "caretaker",
            "root_cause_after": 4,
            "root_cause_window_s": 7 * 86_400,
        }
    )

    assert policy.severities["critical"] == SeverityPolicy(1, 600, 4 * 3600, 86_400)
    assert policy.severities["major"] == DEFAULT_SEVERITIES["major"]
    assert policy.severities["cosmetic"].priority == 5
    assert policy.assignment == (AssignmentRule("lifts", frozenset({"elevator"}), "b0*"),)
    assert (policy.default_team, policy.root_cause_after) == ("caretaker", 4)
    assert policy.root_cause_window_s == 7 * 86_400
    assert policy_from_mapping({}) == WorkOrderPolicy()


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"severites": {}}, "unknown setting(s) severites"),
        ({"severities": {"critical": {"respond_s": 0}}}, "severities.critical"),
        ({"severities": {"critical": {"respond_s": -5}}}, "severities.critical"),
        ({"severities": {"critical": {"respond_s": "15m"}}}, "severities.critical.respond_s"),
        ({"severities": {"critical": {"respond_s": True}}}, "severities.critical.respond_s"),
        ({"severities": {"major": {"resolve_s": 60}}}, "severities.major.resolve_s"),
        ({"severities": {"major": {"cooldown_s": -1}}}, "severities.major.cooldown_s"),
        ({"severities": {"major": {"priority": 0}}}, "severities.major.priority"),
        ({"severities": {"major": {"respond": 60}}}, "severities.major: unknown"),
        ({"severities": {"major": 60}}, "severities.major must be a table"),
        ({"assignment": [{"kinds": ["pump"]}]}, "assignment[0] needs a team"),
        ({"assignment": [{"team": " "}]}, "assignment[0].team"),
        ({"assignment": [{"team": "x", "kinds": "pump"}]}, "assignment[0].kinds"),
        ({"assignment": [{"team": "x", "building": 3}]}, "assignment[0].building"),
        ({"default_team": 3}, "default_team"),
        ({"root_cause_after": 1}, "root_cause_after"),
        ({"root_cause_window_s": 0}, "root_cause_window_s"),
    ],
)
def test_bad_settings_fail_naming_the_setting(raw: dict[str, Any], names: str) -> None:
    with pytest.raises(WorkOrderPolicyError) as info:
        policy_from_mapping(raw)
    assert names in str(info.value)


@pytest.mark.parametrize(
    ("starts", "start", "expected"),
    [
        ([10], 10, (1, 10)),
        ([1, 5, 10], 10, (3, 10)),  # filed in time order: the window ending here holds all
        ([1, 5, 10], 1, (3, 10)),  # filed last: the window (0, 10] ending later holds all
        ([0, 5, 10], 10, (2, 10)),  # 0 and 10 are a whole window apart: (0, 10] leaves 0 out
        ([0, 5, 10], 0, (2, 5)),  # (-5, 5] is the fullest window holding 0
        ([2, 9, 10, 19], 9, (3, 10)),  # (0, 10] holds 2, 9, 10; none holds 9, 19 and more
        ([5, 6], 3, (2, 6)),  # 3 itself not counted (before the last trigger); (-4, 6] spans it
        ([], 3, (0, 3)),
    ],
)
def test_fullest_window_holding_an_episode(
    starts: list[int], start: int, expected: tuple[int, int]
) -> None:
    assert fullest_window(starts, start, 10) == expected
