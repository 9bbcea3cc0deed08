"""The world model's fused scripted rollout: WorldModel.rollout written for few operations per
step, as the planner's MPPI runs it thousands of times a second.

The residual MLP's input normalisation and the constant context (payload) are folded into the
first layer, the calibrated kinematics' gains and scales come from the model's own
`kinematics.calibration_gains`, and the rollout works channel-major (K samples along the last
axis) on float32. `ROLLOUT_SOURCE` is TorchScript source: the planner compiles it together with
its command clamp into one CompilationUnit (motion_model), so that clamp and rollout
are one scripted call; `compile_rollout()` compiles it alone (the parity tests).
`FusedWorldModel(model)` holds the tensors it takes (`args()`), and raises ValueError for a
network that is not the Linear/SiLU stack it folds.

Python 3.8, torch >= 1.13 (TorchScript).
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import torch
from torch import nn

from wm_world_model.kinematics import calibration_gains

ROLLOUT_SOURCE = '''
def world_model_rollout(u: Tensor, v0w0: Tensor, yaw0: float, w_in: Tensor, b_in: Tensor,
                        hidden_w: List[Tensor], hidden_b: List[Tensor], w_out: Tensor,
                        b_out: Tensor, bound: Tensor, gain: Tensor, kscale: Tensor,
                        vlim: Tensor) -> Tensor:
    """WorldModel.rollout from (0, 0, yaw0) with the fused weights; float32 poses.
    Written for few operations per step: at small K each costs about a microsecond."""
    k = u.shape[2]
    u32 = u.to(torch.float32)
    vw = v0w0.to(torch.float32).expand(2, k)
    neg_vlim = -vlim
    x = torch.zeros(k, dtype=torch.float32)
    y = torch.zeros(k, dtype=torch.float32)
    yaw = torch.full((k,), yaw0, dtype=torch.float32)
    xs = [x]
    ys = [y]
    yaws = [yaw]
    for ut in u32.unbind(0):
        # residual MLP on [v, w, v_cmd, w_cmd] (normalisation and context in w_in, b_in)
        a = torch.nn.functional.linear(torch.cat([vw, ut], 0).t(), w_in, b_in)
        for i in range(len(hidden_w)):
            a = torch.nn.functional.linear(torch.nn.functional.silu(a), hidden_w[i],
                                           hidden_b[i])
        r = torch.tanh(torch.addmm(b_out, w_out, torch.nn.functional.silu(a).t())) * bound
        r0 = r[0]
        r1 = r[1]
        # calibrated kinematic step (kinematics.calibrated_step)
        vw1 = torch.lerp(vw, ut, gain)
        d = (vw + vw1) * kscale
        ds = d[0]
        dyaw = d[1]
        mid = torch.add(yaw, dyaw, alpha=0.5)
        # body-frame residual rotated into the world (WorldModel.next)
        c = torch.cos(yaw)
        s = torch.sin(yaw)
        x = x + ds * torch.cos(mid) + c * r0 - s * r1
        y = y + ds * torch.sin(mid) + s * r0 + c * r1
        yaw = yaw + dyaw + r[2]
        vw = torch.clamp(vw1 + r[3:5], neg_vlim, vlim)
        xs.append(x)
        ys.append(y)
        yaws.append(yaw)
    return torch.stack([torch.stack(xs), torch.stack(ys), torch.stack(yaws)])
'''


def compile_rollout() -> Any:
    """ROLLOUT_SOURCE compiled on its own: `.world_model_rollout(u, v0w0, yaw0, *args)`."""
    # torch >= 2.10 deprecates TorchScript; the robot's torch 2.0 has no usable alternative
    # for a Python-free loop (as in wm_world_model.artifact.to_torchscript).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.CompilationUnit(ROLLOUT_SOURCE)


class FusedWorldModel:
    """The world model's residual MLP and calibrated kinematics as the plain tensors the
    `world_model_rollout` kernel takes. Raises ValueError for a network that is not the
    Linear/SiLU stack it folds (the caller then uses the model's own rollout)."""

    def __init__(self, model):
        mods = list(model.residual)
        linear = mods[0::2]
        if (len(mods) < 3 or len(mods) % 2 == 0
                or not all(type(m) is nn.Linear for m in linear)
                or not all(type(m) is nn.SiLU for m in mods[1::2])
                or linear[0].in_features != 6 + model.latent_dim
                or linear[-1].out_features != 5):
            raise ValueError("not a Linear/SiLU residual network")
        with torch.no_grad():
            # W (f - mean) / std + b == (W / std) f + (b - (W / std) mean), in float64.
            mean = model.feature_mean.double()
            std = model.feature_std.double()
            w1 = linear[0].weight.double() / std
            cal = model.calibration
            dt = float(model.dt)
            self.w_in = w1[:, :4].float().contiguous()   # columns [v, w, v_cmd, w_cmd]
            self.w_context = w1[:, 4:].clone()          # [payload, known, latent...]
            self.b_fixed = linear[0].bias.double() - w1 @ mean
            self.b_in = self.b_fixed.float()
            self.hidden_w = [m.weight.detach().clone() for m in linear[1:-1]]
            self.hidden_b = [m.bias.detach().clone() for m in linear[1:-1]]
            self.w_out = linear[-1].weight.detach().clone()              # (5, hidden)
            self.b_out = linear[-1].bias.detach().clone().reshape(5, 1)  # channel-major
            self.bound = model.residual_bound.clone().reshape(5, 1)
            # kinematics.calibrated_step's own gains, in float32
            self.gain = calibration_gains(cal, dt).reshape(2, 1)
            self.kscale = (torch.stack([cal[0], cal[1]]).double() * (0.5 * dt)).float() \
                .reshape(2, 1)
            self.vlim = model.velocity_limit.clone().reshape(2, 1)
        self.use_payload = bool(model.use_payload)

    def set_context(self, payload_kg: Optional[float]) -> None:
        """Fold the constant context features [payload, known, latent (zeros)] into b_in."""
        known = 1.0 if (payload_kg is not None and self.use_payload) else 0.0
        tail = torch.zeros(self.w_context.shape[1], dtype=torch.float64)
        tail[0] = (payload_kg or 0.0) * known
        tail[1] = known
        self.b_in = (self.b_fixed + self.w_context @ tail).float()

    def args(self):
        return (self.w_in, self.b_in, self.hidden_w, self.hidden_b, self.w_out, self.b_out,
                self.bound, self.gain, self.kscale, self.vlim)
