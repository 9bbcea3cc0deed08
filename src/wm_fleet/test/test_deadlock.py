"""The deadlock rule: who yields, where to, and when it is over (plain Python)."""
from __future__ import annotations

import pytest

from wm_fleet.deadlock import (BlockDetector, DeadlockConfig, YieldArbiter, has_passed,
                               parse_places, passing_place, who_yields)
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


def test_arbiter_yields_waits_through_a_pause_and_releases_after_the_hold_off():
    """The rule as one object (the fleet node and the in-process evaluation both run it):
    robot2 yields to robot1 after 4 s stuck; robot1 pausing in the lane does not release it;
    robot1 driving away releases it only once that has held release_hold (2 s) without a
    break; a referee's answer overrides the proposal."""
    cfg = DeadlockConfig(time=4.0, radius=8.0, release_hold=2.0, timeout=60.0)
    places = parse_places("15.75,8.6;8.25,3.4")
    arb = YieldArbiter("robot2", cfg, places)
    me, other = robot("robot2", 13.2, 6.45), robot("robot1", 10.8, 6.45)
    assert arb.update(0.0, me, [other], True, 10.0) is None
    act = arb.update(4.1, me, [other], True, 10.0)
    assert act.kind == "yield" and act.other == "robot1" and act.place == (15.75, 8.6)
    assert act.other_at == (10.8, 6.45)   # where robot1 stood, for the log
    parked_here = robot("robot2", 15.75, 8.6)
    pausing = robot("robot1", 13.0, 6.45, v=0.0)          # in the lane, standing: no release
    for t in (5.0, 8.0, 12.0):
        assert arb.update(t, parked_here, [pausing], True, 10.0) is None
    gone = robot("robot1", 18.5, 6.45, yaw=0.0, v=0.5)    # past us, driving away
    assert arb.update(13.0, parked_here, [gone], True, 10.0) is None      # hold-off starts
    assert arb.update(14.0, parked_here, [pausing], True, 10.0) is None   # a break: restarts
    assert arb.update(14.5, parked_here, [gone], True, 10.0) is None
    assert arb.update(16.0, parked_here, [gone], True, 10.0) is None      # 1.5 s: not yet
    act = arb.update(16.6, parked_here, [gone], True, 10.0)
    assert act.kind == "release" and act.other == "robot1"
    # robot1's arbiter: robot2 yields, so robot1 is told so and keeps its goal
    arb1 = YieldArbiter("robot1", cfg, places)
    assert arb1.update(0.0, other, [me], True, 10.0) is None
    act = arb1.update(4.1, other, [me], True, 10.0)
    assert act.kind == "deadlock" and act.note == "robot2 yields" and arb1.yielding is None
    # the referee (Redis SET NX) decided otherwise: robot1 yields after all
    arb1 = YieldArbiter("robot1", cfg, places)
    arb1.update(0.0, other, [me], True, 10.0)
    act = arb1.update(4.1, other, [me], True, 10.0, decide=lambda o, p: "robot1")
    assert act.kind == "yield" and act.place == (8.25, 3.4)


def test_arbiter_releases_at_the_timeout_and_when_the_goal_ends():
    cfg = DeadlockConfig(time=1.0, radius=8.0, timeout=10.0)
    arb = YieldArbiter("robot2", cfg, parse_places("15.75,8.6"))
    me, other = robot("robot2", 13.2, 6.45), robot("robot1", 10.8, 6.45)
    arb.update(0.0, me, [other], True, 10.0)
    assert arb.update(1.1, me, [other], True, 10.0).kind == "yield"
    assert arb.update(11.0, me, [other], True, 10.0) is None
    assert arb.update(11.2, me, [other], True, 10.0).kind == "release"   # waited 10 s
    arb.update(20.0, me, [other], True, 10.0)
    assert arb.update(21.1, me, [other], True, 10.0).kind == "yield"
    assert arb.update(21.2, me, [other], False, None).kind == "release"  # goal over
