"""The world model's CasADi form (what the NMPC optimises over) against the torch model."""
import os

import casadi as ca
import numpy as np
import pytest
import torch

from wm_world_model.artifact import load_artifact
from wm_world_model.casadi_form import CasadiKinematics, CasadiWorldModel
from wm_world_model.kinematics import naive_rollout

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                       "worldmodel-1.0.0")


@pytest.fixture(scope="module")
def world_model():
    return load_artifact(SHIPPED)


def test_casadi_world_model_step_equals_torch(world_model):
    model, meta = world_model
    cm = CasadiWorldModel(model, meta["version"])
    rng = np.random.default_rng(0)
    b = 300
    # Poses far from the origin, velocities beyond the limits (the clamp), payload known
    # and unknown.
    state = np.c_[rng.uniform(-50, 50, (b, 2)), rng.uniform(-4, 4, b),
                  rng.uniform(-2.5, 2.5, b), rng.uniform(-3.5, 3.5, b)]
    action = np.c_[rng.uniform(-1.0, 1.5, b), rng.uniform(-2.0, 2.0, b)]
    context = np.c_[rng.uniform(0, 150, b), rng.integers(0, 2, b)].astype(np.float64)
    with torch.no_grad():
        ref = model.next(torch.tensor(state, dtype=torch.float32),
                         torch.tensor(action, dtype=torch.float32),
                         torch.tensor(context, dtype=torch.float32)).numpy()
    out = np.asarray(cm.step_function().map(b)(state.T, action.T, context.T)).T
    assert np.abs(out - ref).max() < 1e-5
    # The clamp is hit on some samples, so the check covers it.
    assert np.any(np.abs(out[:, 3]) >= cm.v_abs_max - 1e-9)
    # The MX form (what the NLP uses) is the same function.
    out_mx = np.asarray(cm.step_function(ca.MX).map(b)(state.T, action.T, context.T)).T
    assert np.abs(out_mx - out).max() < 1e-12


def test_casadi_world_model_rollout_equals_torch_rollout(world_model):
    model, _ = world_model
    cm = CasadiWorldModel(model)
    rng = np.random.default_rng(1)
    x0 = np.array([1.0, -2.0, 0.4, 0.3, 0.1])
    u = np.c_[rng.uniform(-0.2, 0.8, 10), rng.uniform(-1.2, 1.2, 10)]
    ctx = np.array([30.0, 1.0])
    xs = np.asarray(cm.rollout_function(10)(x0, u.T, ctx)).T
    with torch.no_grad():
        ref = model.rollout(torch.tensor(x0[None], dtype=torch.float32),
                            torch.tensor(u[None], dtype=torch.float32),
                            torch.tensor(ctx[None], dtype=torch.float32))[0, 1:].numpy()
    assert np.abs(xs - ref).max() < 1e-5


def test_casadi_kinematics_equals_the_naive_unicycle():
    rng = np.random.default_rng(2)
    u = np.c_[rng.uniform(-0.2, 0.8, 10), rng.uniform(-1.2, 1.2, 10)]
    x0 = [3.0, -1.0, 2.5, 0.2, 0.0]
    xs = np.asarray(CasadiKinematics(0.1).rollout_function(10)(x0, u.T, [0.0, 0.0])).T
    ref = naive_rollout(torch.tensor([x0], dtype=torch.float64),
                        torch.from_numpy(u)[None], 0.1)[0, 1:].numpy()
    assert np.allclose(xs, ref, atol=1e-12)
