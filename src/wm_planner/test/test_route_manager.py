"""RouteManager: the global planner's route or an external one, in the odom frame."""
from __future__ import annotations

import numpy as np
import pytest

from planner_world import BoxWorld
from wm_common.geometry import Pose2D
from wm_common.map_io import OccupancyMap
from wm_planner.route_manager import RouteManager


def room_with_wall() -> OccupancyMap:
    occ = np.zeros((120, 120), dtype=bool)
    occ[20:100, 49:52] = True                   # wall at x = 3 m, y in [-4, 4]
    return OccupancyMap.from_occupied(occ, 0.1, -2.0, -6.0)


def test_global_route_in_odom_and_replanning():
    rm = RouteManager(0.3, replan_period=1.0, without_map=False)
    assert rm.update(0.0, Pose2D(0, 0, 0), (6.0, 0.0), None, Pose2D(0, 0, 0)) == (None, "no map")
    rm.set_map(room_with_wall())
    assert rm.update(0.0, Pose2D(0, 0, 0), (6.0, 0.0), None, None)[1] == "no map->odom"
    m2o = Pose2D(1.0, 0.5, 0.0)                # odom origin sits at (1, 0.5) in map
    route, what = rm.update(0.0, Pose2D(-1.0, -0.5, 0.0), (6.0, 0.0), None, m2o)
    assert what == "planned: no route"
    np.testing.assert_allclose(route[0], [-1.0, -0.5], atol=0.11)       # robot, in odom
    np.testing.assert_allclose(route[-1], [5.0, -0.5], atol=0.11)       # goal, in odom
    assert rm.update(0.5, Pose2D(-1.0, -0.5, 0.0), (6.0, 0.0), None, m2o)[1] == "kept"
    # the periodic replan finds the same way: the route in hand is kept (hysteresis)
    assert rm.update(1.1, Pose2D(-1.0, -0.5, 0.0), (6.0, 0.0), None, m2o)[1] == \
        "kept: no route 1.0 m shorter"
    rm.new_goal()
    assert rm.update(1.2, Pose2D(-1.0, -0.5, 0.0), (6.0, 2.0), None, m2o)[1].startswith(
        "planned")
    route, what = rm.update(3.0, Pose2D(-1.0, -0.5, 0.0), (30.0, 0.0), None, m2o)
    assert what.startswith("failed") and route is None                  # off the map
    assert rm.last_plan.reason


def test_external_path_wins_while_fresh():
    rm = RouteManager(0.3, external_timeout=2.0)
    rm.set_map(room_with_wall())
    rm.set_external(10.0, "map", [[0.0, 0.0], [1.0, 0.0]])
    m2o = Pose2D(1.0, 0.0, 0.0)
    route, what = rm.update(11.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)
    assert what == "external"
    np.testing.assert_allclose(route, [[-1.0, 0.0], [0.0, 0.0]])        # map -> odom
    assert rm.update(11.0, Pose2D(0, 0, 0), (6.0, 0.0), None, None)[0] is None
    assert rm.update(12.5, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)[1].startswith("planned")
    with pytest.raises(ValueError):
        rm.set_external(13.0, "base_link", [[0.0, 0.0]])
    with pytest.raises(ValueError):
        rm.set_external(13.0, "odom", [[np.nan, 0.0]])


def test_a_route_that_ended_short_of_the_goal_gives_way_to_one_that_reaches_it():
    """A robot stood on the goal when the route was planned: the goal was snapped to the
    nearest free cell and the route ended there. Once that robot has gone, the periodic
    replan reaches the goal itself, whatever the switch margin (the robot once stood at the
    snapped end 0.45 m from its goal until the goal aborted)."""
    rm = RouteManager(0.3, replan_period=1.0, without_map=False, switch_margin=1.0)
    rm.set_map(room_with_wall())
    ident = Pose2D(0.0, 0.0, 0.0)
    parked = BoxWorld([(5.85, 6.15, -0.15, 0.15)]).window(3.0, 0.0)
    route, what = rm.update(0.0, Pose2D(0, 0, 0), (6.0, 0.0), parked, ident)
    assert what.startswith("planned") and route is not None
    short = float(np.hypot(*(route[-1] - [6.0, 0.0])))
    assert short > 0.2                                    # snapped out of the robot
    gone = BoxWorld([]).window(3.0, 0.0)
    route, what = rm.update(1.1, Pose2D(0, 0, 0), (6.0, 0.0), gone, ident)
    assert what == "planned: period"
    np.testing.assert_allclose(route[-1], [6.0, 0.0], atol=0.11)


def test_a_held_external_path_stays_until_the_goal_ends_and_plan_once_leaves_the_route():
    rm = RouteManager(0.3, external_timeout=2.0)
    rm.set_map(room_with_wall())
    m2o = Pose2D(0.0, 0.0, 0.0)
    own, what = rm.update(0.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)
    assert what.startswith("planned")
    # a planner-server request: a route of its own, the robot's untouched
    other = rm.plan_once((0.0, 3.0), (6.0, 3.0))
    assert other.ok and np.allclose(other.route[-1], [6.0, 3.0])
    np.testing.assert_allclose(rm.route_map, own)
    assert not rm.plan_once((0.0, 0.0), (30.0, 0.0)).ok            # off the map: a reason
    # FollowPath's path: no timeout
    rm.set_external(10.0, "map", [[0.0, 0.0], [1.0, 0.0]], hold=True)
    assert rm.update(100.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)[1] == "external"
    rm.new_goal()                                                  # the goal ended
    assert rm.external is None
    assert rm.update(101.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)[1].startswith("planned")
    # a fresh `plan` topic path is not held: a new goal keeps it, its timeout ends it
    rm.set_external(200.0, "map", [[0.0, 0.0], [1.0, 0.0]])
    rm.new_goal()
    assert rm.update(201.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)[1] == "external"
    assert rm.update(203.0, Pose2D(0, 0, 0), (6.0, 0.0), None, m2o)[1] != "external"
