"""The fused scripted rollout (wm_world_model.fused) is the model's own rollout: the shipped
artifact, payload known and unknown, poses far from the origin."""
import os

import numpy as np
import pytest
import torch
from torch import nn

from wm_world_model.artifact import load_artifact
from wm_world_model.fused import FusedWorldModel, compile_rollout
from wm_world_model.model import WorldModel, WorldModelConfig

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                       "worldmodel-1.0.0")


@pytest.mark.parametrize("payload", [None, 120.0])
def test_fused_rollout_equals_the_models_rollout(payload):
    model, _ = load_artifact(SHIPPED)
    fused = FusedWorldModel(model)
    fused.set_context(payload)
    rng = np.random.default_rng(3)
    k, h = 64, model.config.horizon
    u = np.stack([rng.uniform(-0.3, 1.0, (k, h)), rng.uniform(-1.5, 1.5, (k, h))], axis=2)
    yaw0, v0, w0 = 2.1, 0.4, -0.2
    got = compile_rollout().world_model_rollout(
        torch.from_numpy(u.transpose(1, 2, 0).copy()), torch.tensor([[v0], [w0]]), yaw0,
        *fused.args())                                  # (3, H+1, K), from (0, 0, yaw0)
    ctx = torch.zeros(k, model.config.context_dim)
    if payload is not None:
        ctx[:, 0], ctx[:, 1] = payload, 1.0
    s0 = torch.tensor([[0.0, 0.0, yaw0, v0, w0]]).expand(k, 5)
    with torch.no_grad():
        ref = model.rollout(s0, torch.tensor(u, dtype=torch.float32), ctx)[:, :, :3]
    assert got.shape == (3, h + 1, k)
    assert (got.permute(2, 1, 0) - ref).abs().max() < 1e-4


def test_a_network_it_cannot_fold_is_refused():
    model = WorldModel(WorldModelConfig())
    model.residual[1] = nn.ReLU()
    with pytest.raises(ValueError, match="Linear/SiLU"):
        FusedWorldModel(model)
