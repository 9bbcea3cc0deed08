"""GlobalPlanner on the shipped warehouse maps: routes around shelves, clearance, no-route
reasons, the live obstacle layer (blocking, replanning, expiry) and the replan policy."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from wm_common.geometry import Pose2D, inverse, transform_points
from wm_common.grid import Grid2D
from wm_common.geometry import densify
from wm_planner.global_planner import GlobalPlanner, ReplanPolicy
from wm_common.map_io import OccupancyMap, read_map

REPO = Path(__file__).resolve().parents[3]
try:  # installed by colcon; from the source tree otherwise
    import wm_sim.world  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src" / "wm_sim"))
from wm_sim.scenario import load_world  # noqa: E402
from wm_sim.world import Box  # noqa: E402

RADIUS = 0.33


@pytest.fixture(scope="module")
def small():
    return GlobalPlanner(read_map(str(REPO / "config/maps/warehouse_small.yaml")), RADIUS)


def assert_clear(planner, world, route, extra=()):
    """Every point of the route (2 cm apart) is traversable for the planner and at least
    robot_radius from every box of the true world (and `extra` boxes)."""
    pts = densify(route, 0.02)
    assert planner.traversable(pts).all()
    sd = world.signed_distance(pts, extra_boxes=list(extra))
    assert sd.min() > RADIUS, "route comes within %.3f m of an obstacle" % sd.min()


def test_route_around_a_shelf_row_between_two_aisles(small):
    world = load_world("warehouse_small")
    # Aisle between rows 0 and 1 (y 4.4..6.6) to the next one (y 7.4..9.6), both at x 4.5:
    # the straight line crosses shelf_1_0 (x 2..7, y 6.6..7.4).
    start, goal = (4.5, 5.5), (4.5, 8.5)
    assert world.signed_distance(np.array([4.5, 7.0])) < 0.0
    r = small.plan(start, goal)
    assert r.ok, r.reason
    np.testing.assert_allclose(r.route[0], start)
    np.testing.assert_allclose(r.route[-1], goal)
    # Round the shelf's east end (x 7) through the cross aisle, or its west end (x 2).
    assert r.length > 3.0 + 2 * 2.5 - 0.5
    assert r.route[:, 0].max() > 7.0 + RADIUS or r.route[:, 0].min() < 2.0 - RADIUS
    assert_clear(small, world, r.route)
    # The smoothing keeps a short polyline.
    assert len(r.route) < 12


def test_route_keeps_to_the_aisle_centre(small):
    # Start and goal 0.6 m off the aisle's centre line (y 5.5); the straight line between
    # them is collision free but inside the cost band, so the route moves to the centre.
    r = small.plan((2.5, 4.9), (6.5, 4.9))
    assert r.ok, r.reason
    mid = densify(r.route, 0.05)
    mid = mid[np.abs(mid[:, 0] - 4.5) < 0.5]
    assert np.abs(mid[:, 1] - 5.5).max() < 0.2


def test_every_robot_route_on_warehouse_large():
    world = load_world("warehouse_large")
    planner = GlobalPlanner(read_map(str(REPO / "config/maps/warehouse_large.yaml")), RADIUS)
    for name, spawn in world.spawns.items():
        goal = world.goals[name]
        r = planner.plan((spawn.x, spawn.y), (goal.x, goal.y))
        assert r.ok, (name, r.reason)
        assert r.length >= math.hypot(goal.x - spawn.x, goal.y - spawn.y)
        assert_clear(planner, world, r.route)


def test_no_route_reasons(small):
    r = small.plan((3.0, 5.5), (4.5, 7.0))  # the middle of a shelf: nothing within 0.5 m
    assert not r.ok and r.route.shape == (0, 2)
    assert "goal" in r.reason and "inside an obstacle" in r.reason
    r = small.plan((4.5, 7.0), (3.0, 5.5))
    assert not r.ok and "start" in r.reason and "inside an obstacle" in r.reason
    r = small.plan((3.0, 5.5), (25.0, 5.5))
    assert not r.ok and "outside the map" in r.reason
    r = small.plan((3.0, 5.5), (float("nan"), 5.5))
    assert not r.ok and "finite" in r.reason


def test_disconnected_goal_has_no_route():
    # A closed room inside an open map: its inside is free but cut off.
    occ = np.zeros((100, 100), dtype=bool)
    occ[40:61, 40] = occ[40:61, 60] = occ[40, 40:61] = occ[60, 40:61] = True
    planner = GlobalPlanner(OccupancyMap.from_occupied(occ, 0.1), 0.2)
    r = planner.plan((1.0, 1.0), (5.0, 5.0))
    assert not r.ok and "not connected" in r.reason
    assert planner.plan((1.0, 1.0), (8.0, 8.0)).ok


def test_start_and_goal_in_the_inflation_are_snapped(small):
    world = load_world("warehouse_small")
    # 0.1 m from shelf_0_0's north face (y 4.4): inside the robot radius.
    r = small.plan((3.0, 4.5), (6.0, 4.5))
    assert r.ok, r.reason
    assert r.start_snapped and r.goal_snapped
    np.testing.assert_allclose(r.route[0], (3.0, 4.5))
    assert small.traversable(r.route[1:]).all()
    assert np.hypot(*(r.route[-1] - (6.0, 4.5))) <= small.snap_radius
    assert_clear(small, world, r.route[1:])


def live_field(world, robot_xy, map_to_odom, extra=(), size=16.0, res=0.1):
    """The perception's distance field around the robot: a Grid2D in the odom frame of
    the true world (boxes, plus `extra`), like the distance_field topic."""
    n = int(round(size / res))
    c = transform_points(inverse(map_to_odom), np.asarray(robot_xy, dtype=float))
    ox, oy = c[0] - size / 2, c[1] - size / 2
    xs = ox + (np.arange(n) + 0.5) * res
    ys = oy + (np.arange(n) + 0.5) * res
    pts_o = np.stack(np.meshgrid(xs, ys), axis=-1)
    sd = world.signed_distance(transform_points(map_to_odom, pts_o), extra_boxes=list(extra))
    sd = np.minimum(sd, 5.0)
    return Grid2D(ox, oy, res, sd, outside=5.0, frame_id="odom")


def test_live_obstacle_blocks_the_route_and_expires(small):
    world = load_world("warehouse_small")
    planner = GlobalPlanner(small.map, RADIUS)  # a fresh live layer
    map_to_odom = Pose2D(1.0, -0.5, 0.3)
    start, goal = (3.0, 5.5), (13.0, 5.5)
    before = planner.plan(start, goal)
    assert before.ok
    assert np.abs(before.route[:, 1] - 5.5).max() < 0.2  # straight down the aisle

    # The live field without new obstacles adds nothing (the shelves are in the map).
    assert not planner.update_live(live_field(world, start, map_to_odom), map_to_odom)
    assert not planner.live.any()

    # A pallet across the aisle at x 5 (gaps of 0.2 m to the shelves either side).
    pallet = Box(5.0, 5.5, 0.6, 1.8, 0.0, 1.2, "live_pallet")
    assert planner.update_live(live_field(world, start, map_to_odom, [pallet]), map_to_odom)
    assert planner.live.any()
    assert planner.is_blocked(before.route)
    assert planner.is_blocked(before.route, from_xy=start)
    assert not planner.is_blocked(before.route, from_xy=(7.0, 5.5))  # already past it
    after = planner.plan(start, goal)
    assert after.ok, after.reason
    assert_clear(planner, world, after.route, extra=[pallet])
    assert not planner.is_blocked(after.route)
    assert after.length > before.length + 2.0

    # A field whose window does not reach the pallet leaves the layer alone.
    far = (17.0, 12.5)
    small_window = live_field(world, far, map_to_odom, size=4.0)
    assert not planner.update_live(small_window, map_to_odom)
    assert planner.is_blocked(before.route)

    # The pallet is gone and the field sees the aisle free: the cells expire.
    assert planner.update_live(live_field(world, start, map_to_odom), map_to_odom)
    assert not planner.live.any()
    assert not planner.is_blocked(before.route)
    again = planner.plan(start, goal)
    assert again.ok and again.length == pytest.approx(before.length, abs=0.05)


def test_live_nan_cells_keep_their_state(small):
    world = load_world("warehouse_small")
    planner = GlobalPlanner(small.map, RADIUS)
    pose = Pose2D(0.0, 0.0, 0.0)
    pallet = Box(5.0, 5.5, 0.6, 1.8, 0.0, 1.2, "live_pallet")
    planner.update_live(live_field(world, (3.0, 5.5), pose, [pallet]), pose)
    marked = planner.live.copy()
    blind = live_field(world, (3.0, 5.5), pose)
    blind.data[:] = np.nan
    assert not planner.update_live(blind, pose)
    np.testing.assert_array_equal(planner.live, marked)


def test_replan_policy():
    p = ReplanPolicy(replan_period=1.0)
    assert p.due(0.0, (1.0, 2.0)) == "no route"
    p.planned(0.0, (1.0, 2.0))
    assert p.due(0.5, (1.0, 2.0)) is None
    assert p.due(0.5, (1.0, 2.0), blocked=True) == "blocked"
    assert p.due(0.5, (1.5, 2.0)) == "goal changed"
    assert p.due(1.0, (1.0, 2.0)) == "period"
    assert p.due(-3.0, (1.0, 2.0)) == "period"  # the clock jumped back (sim reset)
    p.planned(1.0, (1.0, 2.0))
    assert p.due(1.5, (1.0, 2.0)) is None
    p.reset()
    assert p.due(1.5, (1.0, 2.0)) == "no route"
    with pytest.raises(ValueError):
        ReplanPolicy(replan_period=0.0)


def test_densify_keeps_vertices_and_spacing():
    route = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.35]])
    d = densify(route, 0.1)
    assert np.hypot(*np.diff(d, axis=0).T).max() <= 0.1 + 1e-12
    for v in route:
        assert np.hypot(*(d - v).T).min() < 1e-12
