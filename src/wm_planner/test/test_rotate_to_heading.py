"""Turning on the spot towards a route that leaves behind the robot (rotate_to_heading)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from planner_world import BoxWorld
from wm_common.footprint import Footprint
from wm_planner.rotate_to_heading import RotateToHeading, lookahead_point, wrap_angle

# A dead end: a 1.4 m wide lane along x, closed at x = 5; the route leads back out west.
LANE = BoxWorld([(-10.0, 5.6, 0.7, 1.5), (-10.0, 5.6, -1.5, -0.7), (5.0, 5.6, -1.5, 1.5)])
ROUTE_WEST = np.array([[4.0 - 0.1 * i, 0.0] for i in range(40)])


def shim():
    return RotateToHeading(Footprint.rectangle(0.7, 0.55).circumscribed_radius)


def test_lookahead_point_walks_along_the_route():
    route = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    assert lookahead_point(route, 0.1, 0.0, 1.5) == (1.0, 1.0)
    assert lookahead_point(route, 0.1, 0.0, 9.0) == (1.0, 2.0)   # the end when shorter


def test_turns_towards_a_route_behind_and_hands_back_when_facing_it():
    field = LANE.window(4.0, 0.0)
    rot = shim()
    x, y, yaw = 4.0, 0.0, 0.0          # facing the dead end; the route goes west
    turns = 0
    for _ in range(200):
        cmd = rot.command(x, y, yaw, 0.0, ROUTE_WEST, field)
        if cmd is None:
            break
        v, w = cmd
        assert v == 0.0 and abs(w) == pytest.approx(0.6)
        yaw = wrap_angle(yaw + w * 0.1)
        turns += 1
    assert cmd is None and not rot.active
    assert abs(wrap_angle(yaw - math.pi)) <= 0.3 + 1e-9   # within the exit angle
    assert turns == pytest.approx((math.pi - 0.3) / 0.06, abs=2)


def test_leaves_the_mpc_alone_when_the_route_is_ahead_or_the_robot_moves():
    field = LANE.window(4.0, 0.0)
    rot = shim()
    assert rot.command(4.0, 0.0, math.pi - 1.0, 0.0, ROUTE_WEST, field) is None  # < enter
    assert rot.command(4.0, 0.0, 0.0, 0.4, ROUTE_WEST, field) is None            # driving
    assert rot.command(4.0, 0.0, 0.0, 0.0, None, field) is None                   # no route
    # the route's end within reach: the goal's own approach, not a direction to turn to
    assert rot.command(4.0, 0.0, 0.0, 0.0, np.array([[4.0, 0.0], [3.8, 0.0]]), field) is None


def test_creeps_out_of_a_corner_before_turning_and_never_turns_where_it_is_not_clear():
    field = LANE.window(4.0, 0.0)
    rot = shim()
    # 0.2 m from the closed end: a turn would swing the corners' 0.445 m circle into it, so it
    # first backs away from the end (the only direction that gains clearance), then turns
    x, yaw = 4.8, 0.0
    assert rot.command(x, 0.0, yaw, 0.0, ROUTE_WEST, field) == (-0.08, 0.0)
    assert rot.blocked and rot.creeping and rot.active
    for _ in range(100):
        cmd = rot.command(x, 0.0, yaw, -0.08, ROUTE_WEST, field)
        if cmd[1] != 0.0:
            break
        x += cmd[0] * 0.1
    assert cmd[0] == 0.0 and not rot.blocked
    assert 5.0 - x >= 0.445 - 0.05  # clear of the end (within a field cell) before turning
    # with no straight way that gains clearance (a box closing in on both sides) it hands
    # back to the MPC without a command
    boxed = BoxWorld([(-1.0, 1.0, 0.45, 2.0), (-1.0, 1.0, -2.0, -0.45)]).window(0.0, 0.0)
    route_north = np.array([[0.0, 0.1 * i] for i in range(30)])
    assert rot.command(0.0, 0.0, 0.0, 0.0, route_north, boxed) is None
    assert rot.blocked and not rot.active and not rot.creeping


def test_bad_angles_are_refused():
    with pytest.raises(ValueError):
        RotateToHeading(0.5, enter_angle=0.3, exit_angle=0.5)


def test_final_approach_turns_to_a_goal_beside_the_robot_not_one_ahead_or_behind():
    field = LANE.window(0.0, 0.0)
    rot = shim()
    end = np.array([[-0.3, 0.0], [0.0, 0.0]])      # the route ends here, within reach
    # 13 cm to the left of where the robot stands: turn towards it (left), then hand over
    cmd = rot.command(0.0, 0.0, 0.0, 0.0, end, field, goal=(0.02, 0.13), goal_tolerance=0.08)
    assert cmd is not None and cmd[0] == 0.0 and cmd[1] > 0.0
    # within the goal tolerance, straight ahead, or right behind (the MPC reverses): nothing
    rot = shim()
    assert rot.command(0.0, 0.0, 0.0, 0.0, end, field, (0.05, 0.0), 0.08) is None
    assert rot.command(0.0, 0.0, 0.0, 0.0, end, field, (0.3, 0.05), 0.08) is None
    assert rot.command(0.0, 0.0, 0.0, 0.0, end, field, (-0.3, 0.02), 0.08) is None
    # far away is the route's business, not the final approach's
    assert rot.command(0.0, 0.0, 0.0, 0.0, None, field, (0.0, 3.0), 0.08) is None


def test_a_wedged_rectangle_turns_where_its_polygon_clears_and_only_that_way():
    """A post 0.43 m off the centre, 56 degrees left of the heading: inside the circle the
    corners sweep (0.445 m) but 8.5 cm clear of the 0.7 x 0.55 m body. Turning right 1.3 rad
    keeps the polygon 6.7 cm clear, so it turns (without the footprint it could only creep);
    turning left the front-left corner hits the post at once, and the long way round hits
    it with the rear-left corner, so it does not turn left (it creeps, as before)."""
    fp = Footprint.rectangle(0.7, 0.55)
    post = BoxWorld([(0.24, 0.30, 0.36, 0.42)], xmin=-2.0, ymin=-2.0, size=(200, 200),
                    res=0.02).window(0.0, 0.0, 4.0)
    for err, turns in ((-1.3, True), (1.3, False)):
        route = np.array([[0.1 * i * math.cos(err), 0.1 * i * math.sin(err)]
                          for i in range(30)])
        circle_only = RotateToHeading(fp.circumscribed_radius)
        cmd = circle_only.command(0.0, 0.0, 0.0, 0.0, route, post)
        assert circle_only.blocked and cmd is not None and cmd[1] == 0.0
        rot = RotateToHeading(fp.circumscribed_radius, footprint=fp)
        cmd = rot.command(0.0, 0.0, 0.0, 0.0, route, post)
        if turns:
            assert cmd == (0.0, -0.6) and not rot.blocked
        else:
            assert rot.blocked and cmd is not None and cmd[1] == 0.0


def test_a_turn_in_progress_keeps_its_side():
    """The side is chosen when the turn starts and kept while it runs (no flip-flop as the
    way's direction passes behind the robot)."""
    rot = shim()
    field = BoxWorld([]).window(0.0, 0.0)
    behind_left = np.array([[-0.1 * i, 0.01 * i] for i in range(30)])
    v, w = rot.command(0.0, 0.0, 0.0, 0.0, behind_left, field)
    assert w > 0.0 and rot.turn_sign == 1.0
