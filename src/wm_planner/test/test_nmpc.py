"""CasADi NMPC: the world model as CasADi expressions, closed loops, the NLP's build-once
cache, warm starts, failure paths and the hybrid refine step against MPPI."""
import math
import os

import casadi as ca
import numpy as np
import pytest

from wm_common.grid import Grid2D
from wm_planner.critic_data import CriticData
from wm_planner.critics import make_critics
from wm_planner.critics.base import Critic
from wm_planner.goal_checker import goal_reached
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.navigation_function import cost_to_go
from wm_planner.nmpc import NMPC
from wm_planner.optimizer import MPPI
from wm_world_model.casadi_form import casadi_form
from wm_world_model.kinematics import clamp_controls, unicycle_rollout
from wm_world_model.motion_model import LearnedMotionModel
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld, step_unicycle

ROBOT_RADIUS = 0.3
ARTIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "wm_world_model", "models", "worldmodel-1.0.0")


@pytest.fixture(scope="module")
def world_model():
    from wm_world_model.artifact import load_artifact
    return load_artifact(ARTIFACT)


# (the world model's CasADi form against torch: src/wm_world_model/test/test_casadi_form.py)


# -- closed loops ---------------------------------------------------------------------------

def assert_within_limits(controls, state, limits, dt):
    assert np.all(controls[:, 0] >= limits.v_min - 1e-9)
    assert np.all(controls[:, 0] <= limits.v_max + 1e-9)
    assert np.all(np.abs(controls[:, 1]) <= limits.w_max + 1e-9)
    prev = np.concatenate([[[state.v, state.w]], controls[:-1]])
    du = np.abs(controls - prev)
    assert np.all(du[:, 0] <= limits.a_max * dt + 1e-9)
    assert np.all(du[:, 1] <= limits.alpha_max * dt + 1e-9)


def closed_loop(planner, world, goal, start=RobotState(0.0, 0.0, 0.0), max_time=15.0):
    """Plan, send the first command, integrate the real robot, repeat at 10 Hz.

    Returns (time to goal or None, minimum true clearance, final state)."""
    state, dt = start, planner.settings.dt
    min_clearance = world.true_clearance(state.x, state.y)
    for i in range(int(round(max_time / dt))):
        if goal_reached(state, goal):
            return i * dt, min_clearance, state
        result = planner.plan(state, goal, world.window(state.x, state.y))
        assert result.status == "ok", planner.last_stats
        assert result.controls.shape == (10, 2) and result.trajectory.shape == (11, 3)
        assert_within_limits(result.controls, state, planner.limits, dt)
        v, w = result.command
        x, y, yaw = step_unicycle(state.x, state.y, state.yaw, v, w, dt)
        state = RobotState(x, y, yaw, v, w)
        min_clearance = min(min_clearance, world.true_clearance(x, y))
    return None, min_clearance, state


@pytest.mark.parametrize("goal", [Goal(4.0, 0.0, 0.0), Goal(-2.0, 0.0, math.pi),
                                  Goal(1.0, 2.5, 1.57)],
                         ids=["straight", "behind", "beside"])
def test_reaches_goal_in_free_space(goal):
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    t, _, state = closed_loop(planner, BoxWorld([]), goal)
    assert t is not None, "goal not reached; ended at %s" % (state,)


def test_reaches_goal_without_a_distance_field():
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                   solver="sqpmethod")
    state = RobotState(0.0, 0.0, 0.0)
    goal = Goal(3.0, 1.0, 0.0)
    for _ in range(120):
        if goal_reached(state, goal):
            break
        r = planner.plan(state, goal)
        assert r.status == "ok"
        assert_within_limits(r.controls, state, planner.limits, 0.1)
        x, y, yaw = step_unicycle(state.x, state.y, state.yaw, *r.command, 0.1)
        state = RobotState(x, y, yaw, *r.command)
    assert goal_reached(state, goal), state


def test_avoids_a_block_between_robot_and_goal():
    world = BoxWorld([(1.7, 3.3, -0.8, 0.8)])
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    t, clearance, state = closed_loop(planner, world, Goal(5.0, 0.0, 0.0), max_time=20.0)
    assert t is not None, "goal not reached; ended at %s" % (state,)
    assert clearance > ROBOT_RADIUS


@pytest.mark.parametrize("solver", ["ipopt", "sqpmethod"])
def test_single_plan_bends_around_an_obstacle(solver):
    # Heading at 0.6 m/s for a wall 1.2 m ahead: the plan must keep the footprint
    # clear of it (clearance per the same bilinear field MPPI's obstacle critic reads).
    world = BoxWorld([(1.2, 1.6, -0.5, 0.5)])
    esdf = world.window(0.0, 0.0)
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                   solver=solver)
    state = RobotState(0.0, 0.0, 0.0, 0.6, 0.0)
    r = planner.plan(state, Goal(4.0, 0.0, 0.0), esdf)
    assert r.status == "ok"
    d = esdf.sample(r.trajectory[1:, :2])
    assert np.all(d > ROBOT_RADIUS)
    assert_within_limits(r.controls, state, planner.limits, 0.1)


def test_world_model_plan_matches_the_learned_motion_model():
    learned = LearnedMotionModel(ARTIFACT, 0.1)
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                   model=casadi_form(learned.world_model, learned.version, 0.1))
    state = RobotState(0.5, 0.2, 0.3, 0.4, 0.1)
    r = planner.plan(state, Goal(3.0, 1.0, 0.0), BoxWorld([]).window(0.5, 0.2))
    assert r.status == "ok", planner.last_stats
    assert_within_limits(r.controls, state, planner.limits, 0.1)
    # The trajectory is the world model's (torch, float32) rollout of the plan.
    ref = learned.rollout(state, r.controls, 0.1)
    assert np.abs(r.trajectory - ref).max() < 1e-4
    # Progress toward the goal.
    assert math.hypot(r.trajectory[-1, 0] - 3.0, r.trajectory[-1, 1] - 1.0) < \
        math.hypot(state.x - 3.0, state.y - 1.0) - 0.3


# -- the NLP cache and warm starts -----------------------------------------------------------

def test_nlp_is_built_once_per_window_shape():
    world = BoxWorld([(2.0, 2.4, -1.0, 1.0)])
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    goal = Goal(4.0, 0.0, 0.0)
    planner.plan(RobotState(0.0, 0.0, 0.0), goal, world.window(0.0, 0.0))
    planner.plan(RobotState(0.3, 0.1, 0.0, 0.3, 0.0), goal, world.window(0.3, 0.1))
    assert planner.builds == 1 and planner.solver_builds == 1
    # The local window has a fixed number of cells: perception's window size does not
    # matter, its resolution does.
    planner.plan(RobotState(0.3, 0.1, 0.0, 0.3, 0.0), goal, world.window(0.3, 0.1, 12.0))
    assert planner.builds == 1
    coarse = BoxWorld([(2.0, 2.4, -1.0, 1.0)], res=0.2, size=(150, 150))
    planner.plan(RobotState(0.3, 0.1, 0.0, 0.3, 0.0), goal, coarse.window(0.3, 0.1))
    assert planner.builds == 2


def test_whole_field_nlp_is_rebuilt_when_the_field_size_changes():
    world = BoxWorld([(2.0, 2.4, -1.0, 1.0)])
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                   local_window=False)
    goal = Goal(4.0, 0.0, 0.0)
    for x in (0.0, 0.2):      # same size, the window moved with the robot: no rebuild
        r = planner.plan(RobotState(x, 0.0, 0.0, 0.2, 0.0), goal, world.window(x, 0.0, 6.0))
        assert r.status == "ok"
    assert planner.builds == 1
    r = planner.plan(RobotState(0.2, 0.0, 0.0, 0.2, 0.0), goal, world.window(0.2, 0.0, 7.0))
    assert r.status == "ok"
    assert planner.builds == 2
    planner.plan(RobotState(0.2, 0.0, 0.0, 0.2, 0.0), goal, world.window(0.2, 0.0, 6.0))
    assert planner.builds == 2   # both kept


@pytest.mark.parametrize("solver", ["ipopt", "sqpmethod"])
def test_warm_start_reduces_iterations(solver):
    world = BoxWorld([(2.0, 2.4, -1.0, 1.0)])
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                   solver=solver)
    state = RobotState(0.0, 0.3, 0.2, 0.4, 0.0)
    goal = Goal(4.0, 0.0, 0.0)
    esdf = world.window(0.0, 0.0)
    cold = planner.plan(state, goal, esdf)
    assert cold.status == "ok"
    planner.reset()
    warm = planner.plan(state, goal, esdf, warm_start=cold.controls)
    assert warm.status == "ok"
    assert warm.iterations < cold.iterations
    assert warm.cost <= cold.cost + 1e-3


# -- failures -------------------------------------------------------------------------------

def test_nan_in_the_field_fails_with_a_stop():
    data = np.full((160, 160), 5.0)
    data[75:85, 75:85] = np.nan
    planner = NMPC(OptimizerSettings(), RobotLimits())
    r = planner.plan(RobotState(0.0, 0.0, 0.0, 0.3, 0.0), Goal(3.0, 0.0, 0.0),
                     Grid2D(-8.0, -8.0, 0.1, data, outside=5.0))
    assert r.status == "failed" and r.command == (0.0, 0.0) and np.all(r.controls == 0.0)
    r = planner.plan(RobotState(float("nan"), 0.0, 0.0), Goal(3.0, 0.0, 0.0))
    assert r.status == "failed" and np.all(r.controls == 0.0)


def test_impossible_start_stops_without_raising():
    # Every cell is closer than the robot radius: no plan can be collision-free.
    esdf = Grid2D(-8.0, -8.0, 0.1, np.full((160, 160), 0.1), outside=0.1)
    planner = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    r = planner.plan(RobotState(0.0, 0.0, 0.0, 0.5, 0.2), Goal(3.0, 0.0, 0.0), esdf)
    assert r.status in ("collision", "failed")
    assert r.command == (0.0, 0.0) and np.all(r.controls == 0.0)
    # The warm start was dropped, and the next cycle still answers.
    r = planner.plan(RobotState(0.0, 0.0, 0.0, 0.0, 0.0), Goal(3.0, 0.0, 0.0), esdf)
    assert r.status in ("collision", "failed")


def test_solver_exception_fails_with_a_stop(monkeypatch):
    planner = NMPC(OptimizerSettings(), RobotLimits())

    def broken(*args, **kwargs):
        raise RuntimeError("simulated casadi evaluation error")

    monkeypatch.setattr(planner, "_solve", broken)
    r = planner.plan(RobotState(0.0, 0.0, 0.0), Goal(3.0, 0.0, 0.0))
    assert r.status == "failed" and np.all(r.controls == 0.0)


# -- the hybrid mode ------------------------------------------------------------------------

def critic_cost(state, goal, controls, esdf, ctg, prev):
    """MPPI's default critics on one kinematic rollout, independently of the NMPC."""
    traj = unicycle_rollout(state, controls, 0.1)
    data = CriticData(state=state, goal=goal, controls=controls[None],
                      trajectories=traj[None], dt=0.1, limits=RobotLimits(),
                      robot_radius=ROBOT_RADIUS, esdf=esdf, cost_to_go=ctg,
                      prev_controls=prev)
    cost = sum(float(c.score(data)[0]) for c in make_critics())
    return cost, bool(data.in_collision[0])


def test_refine_never_returns_something_worse_or_infeasible():
    world = BoxWorld([(2.0, 3.0, -1.5, 0.6), (-1.0, 0.0, 1.5, 2.5)])
    rng = np.random.default_rng(5)
    limits = RobotLimits()
    accepted = 0
    for seed in range(8):
        start = RobotState(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)),
                           float(rng.uniform(-math.pi, math.pi)), float(rng.uniform(0, 0.6)),
                           0.0)
        goal = Goal(float(rng.uniform(3.5, 5.0)), float(rng.uniform(-2.0, 2.0)), 0.0)
        esdf = world.window(start.x, start.y)
        mppi = MPPI(OptimizerSettings(seed=seed, num_samples=256), limits,
                    robot_radius=ROBOT_RADIUS)
        nmpc = NMPC(OptimizerSettings(), limits, robot_radius=ROBOT_RADIUS)
        m = mppi.plan(start, goal, esdf)
        assert m.status == "ok"
        r = nmpc.refine(start, goal, esdf, m, cost_to_go=mppi.last_cost_to_go)
        ctg = cost_to_go(esdf, (goal.x, goal.y), ROBOT_RADIUS, 0.3)
        base, _ = critic_cost(start, goal, m.controls, esdf, ctg, None)
        if r is m:
            assert not nmpc.last_refine.accepted
            continue
        accepted += 1
        assert nmpc.last_refine.accepted and r.status == "ok"
        cost, collides = critic_cost(start, goal, r.controls, esdf, ctg, None)
        assert not collides
        assert cost < base
        assert np.allclose(clamp_controls(r.controls, limits, start.v, start.w, 0.1),
                           r.controls)
        assert_within_limits(r.controls, start, limits, 0.1)
        assert r.solve_time_ms >= m.solve_time_ms
    assert accepted >= 1   # otherwise the check above proved nothing


def test_refine_keeps_a_stop_and_a_failed_solver_unchanged(monkeypatch):
    esdf = BoxWorld([]).window(0.0, 0.0)
    nmpc = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    mppi = MPPI(OptimizerSettings(seed=0, num_samples=64), RobotLimits(),
                robot_radius=ROBOT_RADIUS)
    state, goal = RobotState(0.0, 0.0, 0.0, 0.3, 0.0), Goal(3.0, 0.0, 0.0)
    m = mppi.plan(state, goal, esdf)
    m.status = "collision"
    assert nmpc.refine(state, goal, esdf, m) is m
    m.status = "ok"

    def broken(*args, **kwargs):
        raise RuntimeError("simulated casadi evaluation error")

    monkeypatch.setattr(nmpc, "_solve", broken)
    assert nmpc.refine(state, goal, esdf, m) is m
    assert "solver error" in nmpc.last_refine.reason


def test_multiple_shooting_finds_the_same_plan():
    world = BoxWorld([(2.0, 2.4, -1.0, 1.0)])
    state, goal = RobotState(0.0, 0.3, 0.2, 0.4, 0.0), Goal(4.0, 0.0, 0.0)
    esdf = world.window(0.0, 0.0)
    single = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS)
    multiple = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS,
                    multiple_shooting=True)
    a, b = single.plan(state, goal, esdf), multiple.plan(state, goal, esdf)
    assert a.status == b.status == "ok"
    assert abs(a.cost - b.cost) < 1e-2 * max(1.0, abs(a.cost))
    assert np.abs(a.controls - b.controls).max() < 0.05


def test_a_critic_without_an_nmpc_form_is_refused_by_name():
    """A new critic is never silently left out of the NMPC's objective: undeclared, the
    NMPC refuses it at construction; declared sampler-only, it is listed as ignored."""
    class NewCritic(Critic):
        name = "new_term"

        def cost(self, data):
            return np.zeros(data.num_samples)

    with pytest.raises(ValueError, match="'new_term' has no form in the NMPC"):
        NMPC(critics=make_critics(None) + [NewCritic()])
    NewCritic.nmpc_form = "sampler only: a test"
    nmpc = NMPC(critics=make_critics(None) + [NewCritic()])
    assert nmpc.ignored_critics == ["predicted_occupancy", "new_term"]
    # every shipped critic declares how the NMPC treats it
    from wm_planner.critics import CRITIC_REGISTRY
    assert all(c.nmpc_form == "smooth" or c.nmpc_form.startswith("sampler only: ")
               for c in CRITIC_REGISTRY.values())


def test_a_new_smooth_critic_enters_the_objective_through_its_own_form():
    """The NMPC's objective is its critics' own smooth forms: a critic class nmpc.py has
    never heard of, declared 'smooth', adds exactly weight * its smooth_cost, gets its own
    per-solve switch from its `active`, and steers the plan; one that declares 'smooth'
    without writing a smooth_cost is refused by name."""
    class CruiseCritic(Critic):
        """(v - cruise)^2, mean over the horizon, farther than 2 m from the goal only."""

        name = "cruise"
        nmpc_form = "smooth"
        goal_gated = True
        PARAMS = dict(Critic.PARAMS, weight=20.0, cruise=0.3)

        def active(self, distance, goal):
            return distance > 2.0

        def cost(self, data):
            return ((data.controls[..., 0] - self.cruise) ** 2).mean(axis=1)

        def smooth_cost(self, nlp):
            v = nlp.controls[0, :]
            return nlp.active * ca.sum2((v - self.cruise) ** 2) / nlp.horizon

    base = NMPC(critics=make_critics(None))
    cruise = NMPC(critics=make_critics(None) + [CruiseCritic()])
    state = RobotState(0.0, 0.0, 0.0, 0.3, 0.0)
    u = np.random.default_rng(0).uniform([-0.2, -1.2], [0.8, 1.2], size=(10, 2))
    for goal, active in ((Goal(5.0, 0.0, 0.0), True), (Goal(1.5, 0.0, 0.0), False)):
        f = [float(n._problem(("free",)).f_fn(u.ravel(), n._params(state, goal, None, [])))
             for n in (base, cruise)]
        extra = 20.0 * np.mean((u[:, 0] - 0.3) ** 2) if active else 0.0
        assert f[1] - f[0] == pytest.approx(extra, rel=1e-9, abs=1e-9)
    goal = Goal(8.0, 0.0, 0.0)
    fast, slow = base.plan(state, goal), cruise.plan(state, goal)
    assert fast.status == slow.status == "ok"
    assert fast.controls[-1, 0] > 0.75 and slow.controls[:, 0].max() < 0.45

    class Unwritten(Critic):
        name = "unwritten"
        nmpc_form = "smooth"

        def cost(self, data):
            return np.zeros(data.num_samples)

    with pytest.raises(ValueError, match="'unwritten' has no form in the NMPC"):
        NMPC(critics=make_critics(None) + [Unwritten()])
