"""The fused rollout and the CasADi form are read from whatever network `WorldModel` defines,
not from a copy of its shape: for residual networks of other depths and widths than the
shipped one (random weights, a calibration far from the identity) both still equal the torch
model step for step."""
import casadi as ca
import numpy as np
import pytest
import torch

from wm_world_model.casadi_form import CasadiWorldModel
from wm_world_model.fused import FusedWorldModel, compile_rollout
from wm_world_model.model import WorldModelConfig

SHAPES = [(1, 16), (3, 32), (4, 8)]   # (layers, hidden); the shipped model is (2, 64)


@pytest.mark.parametrize("layers,hidden", SHAPES)
def test_fused_rollout_follows_the_network(trained_like, layers, hidden):
    model = trained_like(WorldModelConfig(layers=layers, hidden=hidden), seed=layers)
    fused = FusedWorldModel(model)
    fused.set_context(80.0)
    rng = np.random.default_rng(layers)
    k, h = 32, model.config.horizon
    u = np.stack([rng.uniform(-0.3, 1.0, (k, h)), rng.uniform(-1.5, 1.5, (k, h))], axis=2)
    yaw0, v0, w0 = -0.7, 0.3, 0.4
    got = compile_rollout().world_model_rollout(
        torch.from_numpy(u.transpose(1, 2, 0).copy()), torch.tensor([[v0], [w0]]), yaw0,
        *fused.args())
    ctx = torch.zeros(k, model.config.context_dim)
    ctx[:, 0], ctx[:, 1] = 80.0, 1.0
    s0 = torch.tensor([[0.0, 0.0, yaw0, v0, w0]]).expand(k, 5)
    with torch.no_grad():
        ref = model.rollout(s0, torch.tensor(u, dtype=torch.float32), ctx)[:, :, :3]
    assert (got.permute(2, 1, 0) - ref).abs().max() < 1e-4


@pytest.mark.parametrize("layers,hidden", SHAPES)
def test_casadi_form_follows_the_network(trained_like, layers, hidden):
    model = trained_like(WorldModelConfig(layers=layers, hidden=hidden), seed=layers)
    cm = CasadiWorldModel(model, "test")
    rng = np.random.default_rng(layers)
    b = 100
    state = np.c_[rng.uniform(-5, 5, (b, 2)), rng.uniform(-3, 3, b),
                  rng.uniform(-0.5, 1.0, b), rng.uniform(-1.0, 1.0, b)]
    action = np.c_[rng.uniform(-0.3, 1.0, b), rng.uniform(-1.5, 1.5, b)]
    context = np.c_[rng.uniform(0, 150, b), rng.integers(0, 2, b)].astype(np.float64)
    with torch.no_grad():
        ref = model.next(torch.tensor(state, dtype=torch.float32),
                         torch.tensor(action, dtype=torch.float32),
                         torch.tensor(context, dtype=torch.float32)).numpy()
        residual = model.correction(torch.tensor(state, dtype=torch.float32),
                                    torch.tensor(action, dtype=torch.float32),
                                    torch.tensor(context, dtype=torch.float32)).numpy()
    out = np.asarray(cm.step_function(ca.MX).map(b)(state.T, action.T, context.T)).T
    assert np.abs(out - ref).max() < 1e-5
    assert np.abs(residual).max() > 1e-3   # the network's part is not negligible here
