"""Let the tests run straight from a source checkout, without colcon having installed
wm_world_model and the packages it reads data through; plus the shared `trained_like` model
factory."""
from __future__ import annotations

import os
import sys

import pytest

_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _pkg in ("wm_world_model", "wm_sim", "wm_common"):
    _path = os.path.join(_SRC, _pkg)
    if _path not in sys.path:
        sys.path.insert(0, _path)


def randomise(model, std: float = 0.5, seed: int = 0):
    """Give the residual MLP random weights (the last layer included), so the correction is
    far from zero like a trained model's; returns the model."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.residual.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


# A calibration far from the identity (slow, mis-scaled wheels).
CALIBRATION = {"scale_v": 0.9, "scale_w": 1.15, "tau_v": 0.25, "tau_w": 0.12}
NORM_MEAN = (0.4, 0.0, 0.4, 0.0, 50.0, 0.8)
NORM_STD = (0.3, 0.6, 0.3, 0.6, 50.0, 0.4)


@pytest.fixture
def calibration():
    """A calibration far from the identity (a dict by CALIBRATION_NAMES)."""
    return dict(CALIBRATION)


@pytest.fixture
def trained_like():
    """factory(config=None, std=0.5, seed=0) -> a WorldModel with a non-trivial calibration,
    normalisation and random residual weights, in eval mode."""
    import torch

    from wm_world_model.model import WorldModel, WorldModelConfig

    def make(config=None, std=0.5, seed=0):
        m = WorldModel(config or WorldModelConfig(), CALIBRATION)
        # Normalisation like the training data's (v, w, v_cmd, w_cmd, payload_kg, known),
        # then latent features as they come.
        n_latent = m.feature_mean.numel() - len(NORM_MEAN)
        m.set_normalisation(torch.tensor(NORM_MEAN + (0.0,) * n_latent),
                            torch.tensor(NORM_STD + (1.0,) * n_latent))
        return randomise(m, std, seed).eval()

    return make
