"""The step formulas written once (kinematics.unicycle_terms, calibrated_increments,
calibration_gains) give the same numbers on every backend that uses them: floats, torch
(scripted with the model) and CasADi expressions (the NMPC)."""
import math

import casadi as ca
import numpy as np
import torch

from wm_world_model.kinematics import (calibrated_increments, calibrated_step,
                                       calibration_gains, naive_rollout, unicycle_terms)


def test_calibrated_step_is_the_same_on_floats_torch_and_casadi():
    cal = torch.tensor([0.97, 1.04, 0.12, 0.08], dtype=torch.float64)
    state = torch.tensor([[1.0, -2.0, 0.7, 0.4, -0.3]], dtype=torch.float64)
    action = torch.tensor([[0.8, 0.5]], dtype=torch.float64)
    ref = calibrated_step(state, action, cal, 0.1)[0].numpy()
    gv, gw = (float(g) for g in calibration_gains(cal, 0.1))
    assert math.isclose(gv, 1.0 - math.exp(-0.1 / 0.12)) and math.isclose(
        gw, 1.0 - math.exp(-0.1 / 0.08))
    # floats
    ds, dyaw, v1, w1 = calibrated_increments(0.4, -0.3, 0.8, 0.5, gv, gw, 0.97, 1.04, 0.1)
    mid = 0.7 + 0.5 * dyaw
    floats = [1.0 + ds * math.cos(mid), -2.0 + ds * math.sin(mid), 0.7 + dyaw, v1, w1]
    np.testing.assert_allclose(floats, ref, atol=1e-12)
    # CasADi: the same function over symbols, evaluated
    x, u = ca.SX.sym("x", 5), ca.SX.sym("u", 2)
    ds, dyaw, v1, w1 = calibrated_increments(x[3], x[4], u[0], u[1], gv, gw, 0.97, 1.04, 0.1)
    mid = x[2] + 0.5 * dyaw
    f = ca.Function("f", [x, u], [ca.vertcat(x[0] + ds * ca.cos(mid), x[1] + ds * ca.sin(mid),
                                             x[2] + dyaw, v1, w1)])
    np.testing.assert_allclose(np.array(f(state[0].numpy(), action[0].numpy())).ravel(), ref,
                               atol=1e-12)


def test_the_unicycle_is_the_same_on_floats_and_torch():
    rng = np.random.default_rng(1)
    u = rng.uniform([-0.2, -1.2], [0.8, 1.2], size=(10, 2))
    x, y, yaw = 0.5, 1.5, -0.4
    poses = [(x, y, yaw)]
    for v, w in u:
        x, y, yaw = unicycle_terms(x, y, yaw, v, w, 0.1, math.cos, math.sin)
        poses.append((x, y, yaw))
    s0 = torch.tensor([[0.5, 1.5, -0.4, 0.0, 0.0]], dtype=torch.float64)
    traj = naive_rollout(s0, torch.from_numpy(u)[None], 0.1)[0, :, :3].numpy()
    np.testing.assert_allclose(traj, np.array(poses), atol=1e-12)
