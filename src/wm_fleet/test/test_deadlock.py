"""The deadlock rule: who yields, where to, and when it is over (plain Python)."""
from __future__ import annotations

import pytest

from wm_fleet.deadlock import (BlockDetector, DeadlockConfig, has_passed, parse_places,
                               passing_place, who_yields)
from wm_fleet.schema import RobotEntry

FOOT = ((0.35, 0.275), (0.35, -0.275), (-0.35, -0.275), (-0.35, 0.275))


def robot(rid, x, y, yaw=0.0, v=0.0, prio=0):
    return RobotEntry(rid, "map", 0.0, 0.0, (x, y, yaw), (v, 0.0), FOOT, prio, (), "")


def test_who_yields_is_the_same_answer_on_both_robots():
    a, b = robot("robot1", 0, 0), robot("robot2", 1, 0)
    assert who_yields(a, b) == who_yields(b, a) == "robot2"      # equal priority: larger id
    hi = robot("robot2", 1, 0, prio=5)
    assert who_yields(a, hi) == who_yields(hi, a) == "robot1"    # lower priority yields


def test_passing_place_on_own_side():
    places = parse_places("15.75,8.6; 8.25,3.4")
    assert places == ((15.75, 8.6), (8.25, 3.4))
    # robot2 east of robot1 in the lane: its place is the east cross aisle, not the west one
    assert passing_place((12.5, 6.5), (11.5, 6.5), places) == (15.75, 8.6)
    assert passing_place((11.5, 6.5), (12.5, 6.5), places) == (8.25, 3.4)
    assert passing_place((11.5, 6.5), (12.5, 6.5), ((15.75, 8.6),)) is None
    with pytest.raises(ValueError):
        parse_places("1,nan")


def test_blocked_only_after_the_time_with_a_stopped_neighbour_close():
    d = BlockDetector(DeadlockConfig(time=4.0, radius=6.0))
    me, other = robot("robot1", 9.0, 6.5), robot("robot2", 14.5, 6.5)
    assert d.update(0.0, me, [other], goal_active=True) is None
    assert d.update(3.9, me, [other], goal_active=True) is None
    assert d.update(4.1, me, [other], goal_active=True) == other
    assert d.update(4.2, me, [robot("robot2", 15.0, 6.5, v=0.4)], True) is None   # it moves
    assert d.update(4.3, me, [robot("robot2", 25.0, 6.5)], True) is None          # far
    assert d.update(4.4, robot("robot1", 9.0, 6.5, v=0.3), [other], True) is None  # we move
    assert d.update(20.0, me, [other], goal_active=False) is None                 # no goal


def test_released_once_the_other_drives_away_not_on_odometry_jitter():
    me = robot("robot2", 15.75, 8.6)
    coming = robot("robot1", 12.0, 6.5, yaw=0.0, v=0.5)
    jitter = robot("robot1", 18.0, 6.5, yaw=0.0, v=0.01)
    gone = robot("robot1", 18.0, 6.5, yaw=0.0, v=0.5)
    assert not has_passed(me, coming, 2.0)
    assert not has_passed(me, jitter, 2.0)
    assert has_passed(me, gone, 2.0)
