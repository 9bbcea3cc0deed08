"""MPPI end to end: closed loop around an obstacle, emergency stop, failure modes."""
import math
import os

import numpy as np
import pytest

from wm_common.grid import Grid2D
from wm_planner.goal_checker import goal_reached
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.optimizer import MPPI
from wm_world_model.motion_model import LearnedMotionModel
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld, step_unicycle

ROBOT_RADIUS = 0.3


def closed_loop(world, goal, start=RobotState(0.0, 0.0, 0.0), seed=0, max_time=20.0):
    """Plan, send the first control, integrate the real robot, repeat at 10 Hz.

    Returns (time to goal or None, minimum true clearance, final state)."""
    planner = MPPI(OptimizerSettings(seed=seed), RobotLimits(), robot_radius=ROBOT_RADIUS)
    state, dt = start, planner.settings.dt
    min_clearance = world.true_clearance(state.x, state.y)
    for i in range(int(round(max_time / dt))):
        if goal_reached(state, goal):
            return i * dt, min_clearance, state
        result = planner.plan(state, goal, world.window(state.x, state.y))
        assert result.status == "ok"
        assert result.controls.shape == (10, 2) and result.trajectory.shape == (11, 3)
        v, w = result.command
        x, y, yaw = step_unicycle(state.x, state.y, state.yaw, v, w, dt)
        state = RobotState(x, y, yaw, v, w)
        min_clearance = min(min_clearance, world.true_clearance(x, y))
    return None, min_clearance, state


@pytest.mark.parametrize("depth", [1.6, 0.4])
def test_closed_loop_reaches_goal_around_block(depth):
    # A 1.6 m wide block centred at (2.5, 0), right on the straight line to the goal.
    world = BoxWorld([(2.5 - depth / 2, 2.5 + depth / 2, -0.8, 0.8)])
    t, clearance, state = closed_loop(world, Goal(5.0, 0.0, 0.0))
    assert t is not None, "goal not reached; ended at %s" % (state,)
    assert t <= 20.0
    assert clearance > ROBOT_RADIUS


def test_closed_loop_goal_behind_the_robot():
    # The goal critic alone sees no progress from turning on the spot; the path-angle
    # critic must turn the robot around instead of leaving it parked.
    world = BoxWorld([])
    t, _, state = closed_loop(world, Goal(-2.0, 0.0, math.pi), max_time=12.0)
    assert t is not None, "goal not reached; ended at %s" % (state,)


def test_every_sample_colliding_gives_a_stop():
    esdf = Grid2D(-8.0, -8.0, 0.1, np.full((160, 160), 0.1), outside=0.1)  # all too close
    planner = MPPI(OptimizerSettings(seed=1, num_samples=64), robot_radius=ROBOT_RADIUS)
    r = planner.plan(RobotState(0.0, 0.0, 0.0, 0.5, 0.2), Goal(3.0, 0.0, 0.0), esdf)
    assert r.status == "collision"
    assert r.command == (0.0, 0.0) and np.all(r.controls == 0.0)


def test_too_fast_toward_a_wall_gives_a_stop():
    # 0.8 m/s with the wall 0.5 m ahead: even full braking (0.28 m) ends within 0.3 m.
    world = BoxWorld([(1.0, 1.4, -6.0, 6.0)])
    planner = MPPI(OptimizerSettings(seed=2), robot_radius=ROBOT_RADIUS)
    state = RobotState(0.5, 0.0, 0.0, 0.8, 0.0)
    r = planner.plan(state, Goal(5.0, 0.0, 0.0), world.window(0.5, 0.0))
    assert r.status == "collision" and r.command == (0.0, 0.0)


def test_nan_distance_field_fails_with_a_stop():
    data = np.full((160, 160), 5.0)
    data[70:90, 70:90] = np.nan
    planner = MPPI(OptimizerSettings(seed=3, num_samples=64))
    r = planner.plan(RobotState(0.0, 0.0, 0.0), Goal(3.0, 0.0, 0.0),
                     Grid2D(-8.0, -8.0, 0.1, data, outside=5.0))
    assert r.status == "failed" and r.command == (0.0, 0.0)
    r = planner.plan(RobotState(float("nan"), 0.0, 0.0), Goal(3.0, 0.0, 0.0))
    assert r.status == "failed" and r.command == (0.0, 0.0)


def test_stays_put_at_the_goal():
    planner = MPPI(OptimizerSettings(seed=4))
    esdf = BoxWorld([]).window(1.0, 1.0)
    state = RobotState(1.0, 1.0, 0.3)
    for _ in range(5):
        r = planner.plan(state, Goal(1.0, 1.0, 0.3), esdf)
        assert r.status == "ok"
        assert abs(r.command[0]) < 0.1 and abs(r.command[1]) < 0.3


def test_iterations_time_budget_and_result():
    planner = MPPI(OptimizerSettings(seed=5, iterations=4, time_budget_ms=1e4,
                                     num_samples=128))
    r = planner.plan(RobotState(0.0, 0.0, 0.0), Goal(3.0, 1.0, 0.0))   # no esdf: Euclidean
    assert r.status == "ok" and r.iterations == 4 and r.solve_time_ms > 0.0
    assert r.sampled_trajectories.shape[1:] == (11, 3) and 0 < len(r.sampled_trajectories) <= 8
    assert np.isfinite(r.cost)
    lim = RobotLimits()
    assert abs(r.command[0]) <= lim.a_max * 0.1 + 1e-9   # from rest: acceleration-limited
    tight = MPPI(OptimizerSettings(seed=5, iterations=50, time_budget_ms=0.0))
    assert tight.plan(RobotState(0.0, 0.0, 0.0), Goal(3.0, 1.0, 0.0)).iterations == 1


def test_warm_start_and_reset():
    planner = MPPI(OptimizerSettings(seed=6, num_samples=256))
    state, goal = RobotState(0.0, 0.0, 0.0, 0.5, 0.0), Goal(4.0, 0.0, 0.0)
    first = planner.plan(state, goal)
    assert planner._mean is not None
    np.testing.assert_allclose(planner._warm_start(state)[:-1], first.controls[1:])
    planner.reset()
    assert planner._mean is None and planner._prev is None
    np.testing.assert_allclose(planner._warm_start(state), np.tile([0.5, 0.0], (10, 1)))


def test_mppi_plans_with_the_world_model():
    learned = LearnedMotionModel(os.path.join(os.path.dirname(__file__), "..", "..",
                                              "wm_world_model", "models", "worldmodel-1.0.0"),
                                 dt=0.1)
    opt = MPPI(OptimizerSettings(num_samples=256, seed=3), motion_model=learned)
    state = RobotState(x=0.0, y=0.0, yaw=0.0)
    goal = Goal(x=2.0, y=0.5)
    for _ in range(30):
        res = opt.plan(state, goal)
        assert res.status == "ok"
        v, w = res.controls[0]
        # drive the plan's own prediction one step (the model's first predicted pose)
        x, y, yaw = res.trajectory[1]
        state = RobotState(x=x, y=y, yaw=yaw, v=v, w=w)
    assert math.hypot(goal.x - state.x, goal.y - state.y) < 0.8   # from 2.06 m
