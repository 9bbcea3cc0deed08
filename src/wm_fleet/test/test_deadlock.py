"""The deadlock rule: who yields, where to, and when it is over (plain Python)."""
from __future__ import annotations

import pytest

from wm_fleet.deadlock import (BlockDetector, DeadlockConfig, has_passed, parse_places,
                               passing_place, who_yields)
from wm_fleet.schema import RobotEntry

FOOT = ((0.35, 0.275), (0.35, -0.275), (-0.35, -0.275), (-0.35, 0.275))


def robot(rid, x, y, yaw=0.0, v=0.0, prio=0, parked=False):
    """A fleet entry; working on a goal (an intended path shared) unless parked."""
    plan = () if parked else ((0.0, x, y), (1.0, x, y))
    return RobotEntry(rid, "map", 0.0, 0.0, (x, y, yaw), (v, 0.0), FOOT, prio, plan, "")


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
    # a robot parked at its goal (no intended path) is an obstacle, not a party to agree with
    parked = robot("robot2", 14.5, 6.5, parked=True)
    assert d.update(21.0, me, [parked], True) is None
    assert d.update(26.0, me, [parked], True) is None


def test_released_once_the_other_drives_away_not_on_odometry_jitter():
    me = robot("robot2", 15.75, 8.6)
    coming = robot("robot1", 12.0, 6.5, yaw=0.0, v=0.5)
    jitter = robot("robot1", 18.0, 6.5, yaw=0.0, v=0.01)
    gone = robot("robot1", 18.0, 6.5, yaw=0.0, v=0.5)
    assert not has_passed(me, coming, 2.0)
    assert not has_passed(me, jitter, 2.0)
    assert has_passed(me, gone, 2.0)


def test_no_progress_counts_even_while_both_keep_moving():
    """Two robots taking turns at a lane (each enters, sees the other, backs out) never stand
    still; without getting 1 m closer to the goal than ever before in 10 s they are blocked
    too, by a neighbour that moves as well."""
    d = BlockDetector(DeadlockConfig(time=4.0, radius=8.0, progress_time=10.0,
                                     progress_distance=1.0))
    me = robot("robot1", 10.0, 6.4, v=0.3)
    other = robot("robot2", 15.0, 6.4, v=-0.3)
    assert d.update(0.0, me, [other], True, distance_to_goal=10.0) is None
    assert d.update(5.0, me, [other], True, distance_to_goal=9.2) is None   # < 1 m better
    assert d.update(9.9, me, [other], True, distance_to_goal=9.5) is None
    assert d.update(10.1, me, [other], True, distance_to_goal=9.8) == other
    # real progress restarts the clock; a far neighbour never blocks
    assert d.update(10.2, me, [other], True, distance_to_goal=8.5) is None
    assert d.update(19.0, me, [other], True, distance_to_goal=8.4) is None
    assert d.update(21.0, me, [robot("robot2", 30.0, 6.4)], True, distance_to_goal=8.4) is None
    assert d.update(21.1, me, [other], True, distance_to_goal=8.4) == other
    # a new goal (after none) is measured afresh
    assert d.update(22.0, me, [other], False, distance_to_goal=None) is None
    assert d.update(23.0, me, [other], True, distance_to_goal=20.0) is None
