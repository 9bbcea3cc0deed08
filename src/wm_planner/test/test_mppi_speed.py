"""MPPI's fast paths equal their references: the scripted clamp + rollout kernels, the fused
world model, the batch-shared critic helpers, the cost-to-go cache; and the sample-count
controller adapts to the plan time."""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wm_planner.optimizer as optimizer_module
from wm_common.grid import Grid2D
from wm_planner.critic_data import CriticData
from wm_planner.critics import FleetCritic, GoalCritic, ObstacleCritic
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.navigation_function import cost_to_go
from wm_planner.neighbours import NeighbourPlan
from wm_planner.optimizer import MPPI, retain_freed_memory
from wm_world_model import motion_model
from wm_world_model.kinematics import clamp_controls, unicycle_rollout
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "wm_world_model", "models",
                       "worldmodel-1.0.0")
DT = 0.1


@pytest.fixture(scope="module")
def learned():
    return LearnedMotionModel(SHIPPED, dt=DT)


def _requests(k, h, seed, scale=1.0):
    """(K, H, 2) requests as MPPI makes them: a (K, H, 2) view of an (H, 2, K) array,
    far outside the limits in places (saturation)."""
    rng = np.random.default_rng(seed)
    cm = rng.normal([[0.3], [0.0]], [[scale], [2.0 * scale]], size=(h, 2, k))
    return cm.transpose(2, 0, 1)


# -- the scripted clamp + rollout kernels -------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.floats(-0.6, 1.2), st.floats(-2.0, 2.0), st.floats(0.02, 0.3), st.integers(1, 15),
       st.integers(1, 40), st.integers(0, 2 ** 31 - 1))
def test_kernel_clamp_equals_clamp_controls(v0, w0, dt, h, k, seed):
    # Measured velocities up to 50% outside the limits, requests saturating both the box
    # and the rate limit: the kernel must reproduce clamp_controls bit for bit.
    lim = RobotLimits()
    state = RobotState(3.0, -2.0, 0.4, v0, w0)
    req = _requests(k, h, seed, scale=2.0)
    controls, traj = KinematicMotionModel().clamp_rollout(state, req, lim, dt)
    ref = clamp_controls(req, lim, v0, w0, dt)
    assert controls.shape == (k, h, 2) and traj.shape == (k, h + 1, 3)
    np.testing.assert_array_equal(controls, ref)
    np.testing.assert_allclose(traj, unicycle_rollout(state, ref, dt), rtol=0, atol=1e-12)


def test_kernel_single_sequence_and_numpy_fallback():
    lim = RobotLimits()
    state = RobotState(5000.0, -3000.0, 1.0, 0.2, -0.3)
    req = _requests(64, 10, 1)
    fast = KinematicMotionModel().clamp_rollout(state, req, lim, DT)
    slow = KinematicMotionModel(use_torch=False).clamp_rollout(state, req, lim, DT)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_allclose(fast[1], slow[1], rtol=0, atol=1e-9)
    one_u, one_traj = KinematicMotionModel().clamp_rollout(state, req[5], lim, DT)
    assert one_u.shape == (10, 2) and one_traj.shape == (11, 3)
    np.testing.assert_array_equal(one_u, fast[0][5])
    np.testing.assert_allclose(one_traj, fast[1][5], rtol=0, atol=1e-9)


def test_numpy_clamp_is_still_the_documented_recursion():
    # clamp_controls' channel-major loop against the textbook per-sample recursion.
    lim = RobotLimits()
    req = _requests(16, 12, 2, scale=2.0)
    v0, w0 = 1.1, -1.6   # outside the box: the first step is pulled into it
    out = clamp_controls(req, lim, v0, w0, DT)
    lo, hi = np.array([lim.v_min, -lim.w_max]), np.array([lim.v_max, lim.w_max])
    d = np.array([lim.a_max, lim.alpha_max]) * DT
    for k in range(16):
        prev = np.array([v0, w0])
        for t in range(12):
            cur = np.clip(np.clip(np.clip(req[k, t], lo, hi), prev - d, prev + d), lo, hi)
            np.testing.assert_array_equal(out[k, t], cur)
            prev = cur


# -- the fused world model ----------------------------------------------------------------

@pytest.mark.parametrize("payload", [None, 0.0, 150.0])
def test_fused_world_model_equals_the_model(learned, payload):
    lim = RobotLimits()
    state = RobotState(12.0, -4.0, 2.5, 0.4, -0.2)
    req = _requests(256, 10, 3)
    learned.set_payload(payload)
    try:
        controls, traj = learned.clamp_rollout(state, req, lim, DT)
        ref_u = clamp_controls(req, lim, state.v, state.w, DT)
        np.testing.assert_array_equal(controls, ref_u)
        # float32 model either way; the fused one folds the normalisation into the weights
        np.testing.assert_allclose(traj, learned.rollout(state, ref_u, DT), atol=2e-5)
        u1, t1 = learned.clamp_rollout(state, req[7], lim, DT)
        np.testing.assert_array_equal(u1, ref_u[7])
        np.testing.assert_allclose(t1, traj[7], atol=2e-5)
    finally:
        learned.set_payload(None)
    assert learned.failures == 0


def test_fused_world_model_in_chunks(learned, monkeypatch):
    lim = RobotLimits()
    state = RobotState(-2.0, 1.0, -0.4, 0.3, 0.2)
    req = _requests(250, 10, 8)
    whole = learned.clamp_rollout(state, req, lim, DT)
    monkeypatch.setattr(motion_model, "WORLD_MODEL_CHUNK", 64)   # 64, 64, 64, 58
    chunked = learned.clamp_rollout(state, req, lim, DT)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_allclose(chunked[1], whole[1], rtol=0, atol=1e-6)


def test_world_model_without_fusion_uses_its_own_rollout():
    model = LearnedMotionModel(SHIPPED, dt=DT)
    lim = RobotLimits()
    state = RobotState(1.0, 2.0, 0.3, 0.5, 0.0)
    req = _requests(32, 10, 4)
    fused = model.clamp_rollout(state, req, lim, DT)
    model._fused = None   # what a network the fusion does not know gets
    plain = model.clamp_rollout(state, req, lim, DT)
    np.testing.assert_array_equal(fused[0], plain[0])
    np.testing.assert_allclose(fused[1], plain[1], atol=2e-5)


def test_fused_world_model_bad_prediction_falls_back_to_kinematics():
    import torch

    model = LearnedMotionModel(SHIPPED, dt=DT)
    model._fused.hidden_w[0] = torch.full_like(model._fused.hidden_w[0], float("nan"))
    lim = RobotLimits()
    state = RobotState(3.0, 1.0, 0.2, 0.4, 0.1)
    req = _requests(16, 10, 5)
    controls, traj = model.clamp_rollout(state, req, lim, DT)
    ref_u = clamp_controls(req, lim, state.v, state.w, DT)
    np.testing.assert_array_equal(controls, ref_u)
    np.testing.assert_allclose(traj, unicycle_rollout(state, ref_u, DT), atol=1e-12)
    assert model.failures == 1 and "non-finite" in model.last_error


# -- critic helpers shared by the batch ---------------------------------------------------

def _batch(footprint=None, k=64, seed=6):
    # A 3 m window: the fast samples leave it (read as "outside"), the ones turning left
    # hit the box, the rest pass.
    world = BoxWorld([(1.2, 1.45, -0.3, 0.6)])
    esdf = world.window(0.0, 0.0, size_m=3.0)
    state = RobotState(0.9, -0.7, 0.0, 0.5, 0.0)
    controls = clamp_controls(_requests(k, 10, seed, scale=1.5), RobotLimits(), 0.5, 0.0, DT)
    traj = unicycle_rollout(state, controls, DT)
    ctg = cost_to_go(esdf, (1.0, 1.2), 0.3, 0.3)
    return CriticData(state=state, goal=Goal(1.0, 1.2), controls=controls, trajectories=traj,
                      dt=DT, limits=RobotLimits(), robot_radius=0.3, esdf=esdf,
                      cost_to_go=ctg, footprint=footprint)


FOOTPRINT = np.array([[0.18, 0.0, 0.33], [0.0, 0.0, 0.33], [-0.18, 0.05, 0.25]])


@pytest.mark.parametrize("footprint", [None, FOOTPRINT])
def test_shared_samples_equal_grid_sample(footprint):
    data = _batch(footprint)
    xy = data.trajectories[:, 1:, :2]
    np.testing.assert_array_equal(data.sample_positions(data.cost_to_go),
                                  data.cost_to_go.sample(xy))
    np.testing.assert_array_equal(data.sample_positions(data.esdf), data.esdf.sample(xy))
    circles = data.footprint_circles
    traj = data.trajectories[:, 1:]
    c, s = np.cos(traj[..., 2]), np.sin(traj[..., 2])
    cx = traj[..., 0, None] + c[..., None] * circles[:, 0] - s[..., None] * circles[:, 1]
    cy = traj[..., 1, None] + s[..., None] * circles[:, 0] + c[..., None] * circles[:, 1]
    centres = np.stack([cx, cy], axis=-1)
    np.testing.assert_array_equal(data.circle_centres, centres)
    values, inside = data.sample_footprint(data.esdf)
    np.testing.assert_array_equal(values, data.esdf.sample(centres))
    fx = (cx - data.esdf.origin_x) / data.esdf.resolution
    fy = (cy - data.esdf.origin_y) / data.esdf.resolution
    np.testing.assert_array_equal(inside, (fx >= 0) & (fx <= data.esdf.width)
                                  & (fy >= 0) & (fy <= data.esdf.height))
    assert not inside.all() and inside.any()
    # a different grid object with the same geometry reuses the stencil, not the values
    other = Grid2D(data.esdf.origin_x, data.esdf.origin_y, data.esdf.resolution,
                   data.esdf.data + 1.0, outside=-7.0)
    np.testing.assert_array_equal(data.sample_positions(other), other.sample(xy))


@pytest.mark.parametrize("footprint", [None, FOOTPRINT])
def test_obstacle_and_goal_critics_equal_their_reference_formulas(footprint):
    data = _batch(footprint)
    # The obstacle critic as it was before the shared helpers (clearance per circle).
    esdf, circles = data.esdf, data.footprint_circles
    centres = data.circle_centres
    d = esdf.sample(centres)
    fx = (centres[..., 0] - esdf.origin_x) / esdf.resolution
    fy = (centres[..., 1] - esdf.origin_y) / esdf.resolution
    out = (fx < 0.0) | (fx > esdf.width) | (fy < 0.0) | (fy > esdf.height)
    clearance = np.where(out, np.inf, d - circles[:, 2]).min(axis=-1)
    critic = ObstacleCritic()
    pen = np.maximum(critic.inflation_radius - clearance, 0.0) / critic.inflation_radius
    collided = (clearance < 0.0).any(axis=1)
    expected = critic.weight * (pen ** critic.power).sum(axis=1) \
        + critic.collision_cost * collided
    np.testing.assert_allclose(critic.score(data), expected, rtol=1e-12)
    np.testing.assert_array_equal(data.in_collision, collided)
    assert collided.any() and not collided.all()
    goal = GoalCritic()
    w = np.arange(1, 11) / np.arange(1, 11).sum()
    np.testing.assert_allclose(goal.cost(data),
                               data.cost_to_go.sample(data.trajectories[:, 1:, :2]) @ w,
                               rtol=1e-12)


def test_non_finite_points_read_nan():
    data = _batch()
    data.trajectories[3, 4, 0] = np.nan
    values = data.sample_positions(data.esdf)
    assert np.isnan(values[3, 3]) and np.isfinite(np.delete(values.ravel(), 3 * 10 + 3)).all()


def test_fleet_critic_reads_the_shared_centres():
    data = _batch(FOOTPRINT)
    t = np.arange(0, 11) * DT
    other = np.stack([1.6 - 0.5 * t, -0.7 + 0.0 * t], axis=1)   # head-on
    data.neighbours = [NeighbourPlan("r2", t, other, radius=0.3)]
    critic = FleetCritic()
    # the gaps as computed before the shared centres (explicit circle formula)
    traj, circles = data.trajectories[:, 1:], FOOTPRINT
    c, s = np.cos(traj[..., 2]), np.sin(traj[..., 2])
    cx = traj[..., 0, None] + c[..., None] * circles[:, 0] - s[..., None] * circles[:, 1]
    cy = traj[..., 1, None] + s[..., None] * circles[:, 0] + c[..., None] * circles[:, 1]
    dx = cx - (1.6 - 0.5 * t[1:])[None, :, None]
    dy = cy + 0.7
    gap = (np.hypot(dx, dy) - circles[:, 2] - 0.3).min(axis=2)
    soft = (np.maximum(critic.safety_margin - gap, 0.0) / critic.safety_margin) ** 2
    expected = critic.weight * soft.sum(axis=1) + critic.overlap_cost * (gap < 0).sum(axis=1)
    score = critic.score(data)
    np.testing.assert_allclose(score, expected, rtol=1e-12)
    assert np.any(score > 0.0)


# -- the optimizer: kernels end to end, cost-to-go cache, sample-count control ---------

def test_plan_with_kernels_equals_plan_with_numpy():
    world = BoxWorld([(2.0, 2.6, -0.8, 0.8)])
    state, goal = RobotState(0.0, 0.0, 0.0, 0.3, 0.0), Goal(4.0, 0.5)
    fast = MPPI(OptimizerSettings(seed=11, num_samples=256), robot_radius=0.3)
    slow = MPPI(OptimizerSettings(seed=11, num_samples=256), robot_radius=0.3,
                motion_model=KinematicMotionModel(use_torch=False))
    for _ in range(3):
        esdf = world.window(state.x, state.y)
        a, b = fast.plan(state, goal, esdf), slow.plan(state, goal, esdf)
        np.testing.assert_allclose(a.controls, b.controls, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=0, atol=1e-9)
        v, w = a.command
        state = RobotState(*a.trajectory[1], v, w)


def test_cost_to_go_is_cached_per_field_object_and_goal_cell(monkeypatch):
    calls = []
    real = optimizer_module.cost_to_go

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(optimizer_module, "cost_to_go", counting)
    world = BoxWorld([(2.0, 2.6, -0.8, 0.8)])
    esdf = world.window(0.0, 0.0)
    planner = MPPI(OptimizerSettings(seed=12, num_samples=64), robot_radius=0.3)
    state = RobotState(0.0, 0.0, 0.0)
    planner.plan(state, Goal(4.03, 0.02), esdf)
    first = planner.last_cost_to_go
    planner.plan(state, Goal(4.03, 0.02), esdf)
    planner.plan(state, Goal(4.07, 0.08), esdf)     # same 0.1 m cell: reused
    assert len(calls) == 1 and planner.last_cost_to_go is first
    planner.plan(state, Goal(4.13, 0.02), esdf)     # next cell: rebuilt
    assert len(calls) == 2 and calls[-1] == (4.13, 0.02)
    same_values = Grid2D(esdf.origin_x, esdf.origin_y, esdf.resolution, esdf.data.copy(),
                         outside=esdf.outside)
    planner.plan(state, Goal(4.13, 0.02), same_values)   # a new field object: rebuilt
    assert len(calls) == 3 and planner.last_cost_to_go is not first
    planner.plan(state, Goal(4.13, 0.02), same_values)
    assert len(calls) == 3
    planner.reset()
    planner.plan(state, Goal(4.13, 0.02), same_values)
    assert len(calls) == 4


class _SlowModel(KinematicMotionModel):
    """Kinematics that take `per_sample_ms` per sample of a batch (the single final mean
    is free): a stand-in for a model too slow for its budget."""

    def __init__(self, per_sample_ms):
        self.per_sample_ms = per_sample_ms
        super().__init__()

    def clamp_rollout(self, state, requests, limits, dt):
        if np.ndim(requests) == 3:
            end = time.perf_counter() + self.per_sample_ms * 1e-3 * len(requests)
            while time.perf_counter() < end:
                pass
        return super().clamp_rollout(state, requests, limits, dt)


def test_adaptive_sample_count_follows_the_budget():
    model = _SlowModel(per_sample_ms=0.05)     # 1024 samples: ~51 ms, budget 20 ms
    s = OptimizerSettings(seed=13, num_samples=1024, time_budget_ms=20.0,
                          adaptive_samples=True, min_samples=32)
    planner = MPPI(s, motion_model=model)
    state, goal = RobotState(0.0, 0.0, 0.0), Goal(3.0, 0.0)
    ks = []
    for _ in range(8):
        ks.append(planner.num_samples)
        planner.plan(state, goal)
    assert ks[0] == 1024 and ks[1] <= 512            # at most halved per plan
    assert 32 <= planner.num_samples <= 0.9 * 20.0 / 0.05   # under budget now
    assert planner.plan(state, goal).solve_time_ms < 20.0
    # Slack: back up to the ceiling. A generous budget, so that a loaded test machine
    # cannot push a plan into the dead band.
    model.per_sample_ms = 0.0
    planner.settings.time_budget_ms = 1000.0
    for _ in range(60):
        planner.plan(state, goal)
    assert planner.num_samples == 1024
    # The controller itself, on given plan times: dead band, growth, proportional cut.
    planner.settings.time_budget_ms = 20.0
    planner._num_samples = 500
    planner._adapt_samples(15.0)
    assert planner.num_samples == 500                 # 70..100% of the budget: hold
    planner._adapt_samples(10.0)
    assert planner.num_samples == 550                 # slack: +10%
    planner._adapt_samples(30.0)
    assert planner.num_samples == int(550 * 0.9 * 20.0 / 30.0)
    planner._adapt_samples(1000.0)
    assert planner.num_samples == int(330 * 0.5)      # at most halved
    # Off (the default): K never changes, however slow the model.
    fixed = MPPI(OptimizerSettings(seed=13, num_samples=256, time_budget_ms=1.0),
                 motion_model=_SlowModel(per_sample_ms=0.01))
    for _ in range(3):
        fixed.plan(state, goal)
    assert fixed.num_samples == 256


def test_adaptive_sample_count_floor_and_settings():
    planner = MPPI(OptimizerSettings(seed=14, num_samples=256, time_budget_ms=1.0,
                                     adaptive_samples=True, min_samples=100),
                   motion_model=_SlowModel(per_sample_ms=0.05))
    for _ in range(6):
        planner.plan(RobotState(), Goal(3.0, 0.0))
    assert planner.num_samples == 100
    with pytest.raises(ValueError):
        OptimizerSettings(min_samples=2)
    s = OptimizerSettings.from_dict({"adaptive_samples": True, "min_samples": 128.0})
    assert s.adaptive_samples is True and s.min_samples == 128
    assert not OptimizerSettings().adaptive_samples


def test_retain_freed_memory():
    assert OptimizerSettings().retain_freed_memory
    # glibc (the robot's Ubuntu): applied; any other C library: a no-op.
    assert retain_freed_memory() is (platform.libc_ver()[0] == "glibc")
