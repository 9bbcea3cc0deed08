import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wm_world_model.kinematics import clamp_controls, unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState


def reference_rollout(state, controls, dt):
    x, y, yaw = state.x, state.y, state.yaw
    out = [(x, y, yaw)]
    for v, w in controls:
        x += v * math.cos(yaw) * dt
        y += v * math.sin(yaw) * dt
        yaw += w * dt
        out.append((x, y, yaw))
    return np.array(out)


def test_rollout_matches_step_by_step_reference():
    rng = np.random.default_rng(0)
    state = RobotState(1.0, -2.0, 0.7, 0.3, 0.1)
    controls = rng.uniform([-0.2, -1.2], [0.8, 1.2], size=(64, 10, 2))
    trajs = unicycle_rollout(state, controls, 0.1)
    assert trajs.shape == (64, 11, 3)
    for k in range(64):
        np.testing.assert_allclose(trajs[k], reference_rollout(state, controls[k], 0.1),
                                   atol=1e-12)


def test_rollout_single_sequence_and_straight_line():
    traj = unicycle_rollout(RobotState(0.0, 0.0, 0.0), np.tile([0.5, 0.0], (10, 1)), 0.1)
    assert traj.shape == (11, 3)
    np.testing.assert_allclose(traj[:, 0], np.arange(11) * 0.05)
    np.testing.assert_allclose(traj[:, 1:], 0.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3), st.floats(-4, 4), st.floats(0.01, 0.5),
       st.integers(1, 12), st.integers(0, 2 ** 31 - 1))
def test_rollout_property(x, y, yaw, dt, h, seed):
    u = np.random.default_rng(seed).uniform(-2, 2, size=(3, h, 2))
    s = RobotState(x, y, yaw)
    trajs = unicycle_rollout(s, u, dt)
    for k in range(3):
        np.testing.assert_allclose(trajs[k], reference_rollout(s, u[k], dt), atol=1e-9)


def _check_limits(c, lim, v0, w0, dt):
    tol = 1e-9
    assert np.all(c[..., 0] <= lim.v_max + tol) and np.all(c[..., 0] >= lim.v_min - tol)
    assert np.all(np.abs(c[..., 1]) <= lim.w_max + tol)
    prev = np.broadcast_to([v0, w0], c[..., :1, :].shape)
    d = np.diff(np.concatenate([prev, c], axis=-2), axis=-2)
    assert np.all(np.abs(d[..., 0]) <= lim.a_max * dt + tol)
    assert np.all(np.abs(d[..., 1]) <= lim.alpha_max * dt + tol)


@settings(max_examples=80, deadline=None)
@given(st.floats(-0.2, 0.8), st.floats(-1.2, 1.2), st.floats(0.02, 0.3),
       st.integers(1, 15), st.integers(0, 2 ** 31 - 1))
def test_clamp_respects_limits(v0, w0, dt, h, seed):
    lim = RobotLimits()
    raw = np.random.default_rng(seed).normal(0.0, 2.0, size=(32, h, 2))
    c = clamp_controls(raw, lim, v0, w0, dt)
    assert c.shape == raw.shape
    _check_limits(c, lim, v0, w0, dt)
    # Feasible input is left alone (the clamp is a projection onto the feasible set's
    # rate-limited tracking, so it is idempotent).
    np.testing.assert_allclose(clamp_controls(c, lim, v0, w0, dt), c, atol=1e-12)


def test_clamp_tracks_saturated_requests():
    lim = RobotLimits()
    c = clamp_controls(np.tile([2.0, -5.0], (10, 1)), lim, 0.0, 0.0, 0.1)
    np.testing.assert_allclose(c[:, 0], np.minimum(0.1 * np.arange(1, 11), 0.8))
    np.testing.assert_allclose(c[:, 1], np.maximum(-0.25 * np.arange(1, 11), -1.2))


def test_clamp_stop_is_hardest_braking():
    c = clamp_controls(np.zeros((1, 10, 2)), RobotLimits(), 0.8, 1.0, 0.1)[0]
    np.testing.assert_allclose(c[:, 0], np.maximum(0.8 - 0.1 * np.arange(1, 11), 0.0), atol=1e-12)
    np.testing.assert_allclose(c[:, 1], np.maximum(1.0 - 0.25 * np.arange(1, 11), 0.0), atol=1e-12)


def test_clamp_measured_velocity_outside_limits():
    lim = RobotLimits()
    c = clamp_controls(np.full((4, 2), 5.0), lim, 1.5, 0.0, 0.1)
    assert np.all(c[:, 0] <= lim.v_max)
