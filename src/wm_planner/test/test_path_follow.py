"""path_follow critic: ranks trajectories by the global route; MPPI follows a route around
a corner that the 1 s horizon alone cannot see past."""
import math

import numpy as np
import pytest

from wm_common.map_io import OccupancyMap
from wm_planner.critic_data import CriticData
from wm_planner.critics import CRITIC_REGISTRY, DEFAULT_CRITICS, PathFollowCritic, make_critics
from wm_planner.global_planner import GlobalPlanner
from wm_planner.goal_checker import goal_reached
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.optimizer import MPPI
from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld, step_unicycle

H, DT = 10, 0.1
ROBOT_RADIUS = 0.3
# An L-shaped route: 3 m east, then 3 m north.
L_ROUTE = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 3.0]])


def make_data(controls, route=None, state=None):
    state = state or RobotState(0.0, 0.0, 0.0)
    controls = np.asarray(controls, dtype=np.float64)
    return CriticData(state=state, goal=Goal(3.0, 3.0, 0.0), controls=controls,
                      trajectories=unicycle_rollout(state, controls, DT),
                      dt=DT, limits=RobotLimits(),
                      robot_radius=ROBOT_RADIUS, route=route)


def const(*pairs):
    return np.array([np.tile(p, (H, 1)) for p in pairs])


def test_registered_but_not_a_default():
    assert CRITIC_REGISTRY["path_follow"] is PathFollowCritic
    assert "path_follow" not in DEFAULT_CRITICS
    (critic,) = make_critics({"path_follow": {"weight": 2.0, "progress_weight": 0.5}})
    assert isinstance(critic, PathFollowCritic) and critic.progress_weight == 0.5
    with pytest.raises(ValueError):
        PathFollowCritic(spacing=0.0)
    with pytest.raises(ValueError):
        PathFollowCritic(lookahead=1.0)


def test_no_route_costs_nothing():
    data = make_data(const([0.8, 0.0], [0.3, 1.0]))
    np.testing.assert_array_equal(PathFollowCritic().score(data), 0.0)
    data.route = np.zeros((0, 2))
    np.testing.assert_array_equal(PathFollowCritic().score(data), 0.0)


def test_prefers_following_the_route_over_deviating():
    # Straight along the route, versus veering left or right at the same speed.
    data = make_data(const([0.8, 0.0], [0.8, 0.6], [0.8, -0.6]), route=L_ROUTE)
    c = PathFollowCritic().score(data)
    assert np.all(np.isfinite(c)) and c.shape == (3,)
    assert c[0] < c[1] and c[0] < c[2]


def test_prefers_progress_along_the_route():
    data = make_data(const([0.8, 0.0], [0.4, 0.0], [0.0, 0.0], [-0.2, 0.0]), route=L_ROUTE)
    c = PathFollowCritic().score(data)
    assert c[0] < c[1] < c[2] < c[3]


def test_turns_the_corner_with_the_route():
    # At the corner facing east: turning north (with the route) beats going on east.
    state = RobotState(2.6, 0.0, 0.0, 0.5, 0.0)
    data = make_data(const([0.5, 1.6], [0.8, 0.0]), route=L_ROUTE, state=state)
    c = PathFollowCritic().score(data)
    assert c[0] < c[1]


def test_route_that_doubles_back_does_not_capture_the_samples():
    # A U-turn route: out along y = 0, back along y = 1.0. The robot is at the start;
    # a sample that jumps onto the return leg is close to the route but makes no progress.
    route = np.array([[0.0, 0.0], [6.0, 0.0], [6.0, 1.0], [0.0, 1.0]])
    data = make_data(const([0.8, 0.0], [0.8, 1.0]), route=route)
    c = PathFollowCritic().score(data)
    assert c[0] < c[1]


def test_densified_once_per_route_object():
    critic = PathFollowCritic()
    route = L_ROUTE.copy()
    data = make_data(const([0.8, 0.0]), route=route)
    critic.score(data)
    dense = critic._dense
    assert np.hypot(*np.diff(dense, axis=0).T).max() <= critic.spacing + 1e-12
    critic.score(data)
    assert critic._dense is dense
    data.route = route.copy()
    critic.score(data)
    assert critic._dense is not dense


def test_single_point_route():
    data = make_data(const([0.8, 0.0], [-0.8, 0.0]), route=np.array([[3.0, 0.0]]))
    c = PathFollowCritic().score(data)
    assert np.all(np.isfinite(c)) and c[0] < c[1]


def closed_loop(world, goal, critics, route, start, max_time, seed=0):
    planner = MPPI(OptimizerSettings(seed=seed), RobotLimits(), critics=critics,
                   robot_radius=ROBOT_RADIUS, use_navigation_function=False)
    state, dt = start, planner.settings.dt
    min_clearance = world.true_clearance(state.x, state.y)
    for i in range(int(round(max_time / dt))):
        if goal_reached(state, goal):
            return i * dt, min_clearance, state
        result = planner.plan(state, goal, world.window(state.x, state.y), route=route)
        assert result.status == "ok"
        v, w = result.command
        x, y, yaw = step_unicycle(state.x, state.y, state.yaw, v, w, dt)
        state = RobotState(x, y, yaw, v, w)
        min_clearance = min(min_clearance, world.true_clearance(x, y))
    return None, min_clearance, state


def test_mppi_follows_a_route_around_a_corner():
    # A 9 m wall between the robot and a goal 4 m north of it. The goal critic without
    # the navigation function (straight-line distance) drives into the wall and stops;
    # with the global route (map == odom here) MPPI goes round the wall's east end.
    world = BoxWorld([(-6.0, 3.0, 1.5, 2.1)])
    occ_map = OccupancyMap.from_occupied(world.occupied, world.res, world.xmin, world.ymin)
    plan = GlobalPlanner(occ_map, ROBOT_RADIUS, inflation=0.5).plan((0.0, 0.0), (0.0, 4.0))
    assert plan.ok, plan.reason
    assert plan.route[:, 0].max() > 3.0 + ROBOT_RADIUS  # round the east end
    goal = Goal(0.0, 4.0, math.pi, xy_tolerance=0.3, yaw_tolerance=math.pi)
    start = RobotState(0.0, 0.0, 0.0)

    with_route = make_critics({"path_follow": {}, "obstacle": {}, "control_effort": {}})
    t, clearance, state = closed_loop(world, goal, with_route, plan.route, start, 30.0)
    assert t is not None, "goal not reached with the route; ended at %s" % (state,)
    assert clearance > ROBOT_RADIUS

    # The control: the same MPPI on the straight-line goal critic is trapped.
    no_route = make_critics({"goal": {}, "obstacle": {}, "control_effort": {}})
    t, clearance, state = closed_loop(world, goal, no_route, None, start, 15.0)
    assert t is None and state.y < 1.5
