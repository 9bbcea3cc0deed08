"""The hybrid world model: calibrated unicycle kinematics plus a bounded residual MLP.

State  (B, 5) [x, y, yaw, v, w]: pose in any fixed frame (odom on the robot, map in training),
       v, w the body velocities the robot measures (wheel odometry's twist), which is what the
       planner has at run time.
Action (B, 2) [v_cmd, w_cmd], held for one step of `dt` seconds (the planner's zero-order hold).
Context (B, 2 + latent_dim) [payload_kg, payload_known, latent...]: payload_known is 1 when the
       payload mass is known and 0 otherwise (then payload_kg is ignored: the model was trained
       with the payload randomly hidden so it has a sensible "unknown" mode). The latent is the
       perception encoder's pooled scene code, used only when the config switches it on.

One step (`next`), in the style of TD-MPC2's world model (small methods, batched):
  1. the calibrated kinematic step (`kinematics.calibrated_step`): first-order actuator lag
     on v, w and wheel radius / track scales on the motion they produce;
  2. a residual MLP over body-frame quantities only (velocities, commands, payload, latent),
     never the pose, whose output [dx, dy, dyaw, dv, dw] is expressed in the robot's body frame
     at the start of the step and rotated into the world: a prediction therefore rotates and
     shifts with the robot (SE(2) equivariance, tested);
  3. the residual is squashed by tanh into per-channel bounds (`residual_bound`), and the
     velocities are clamped to the physical limits: a bad network cannot produce a physically
     absurd step, only a bounded correction of the kinematics.
The last layer starts at zero, so an untrained model is exactly the calibrated baseline.

`rollout(state, actions, context)` applies `next` over the horizon; it is what the planner calls
(TorchScript on CPU/CUDA, or the same graph exported to ONNX for TensorRT). Python 3.8,
torch >= 1.13 APIs only (JetPack 5 ships torch 2.0 / 2.1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from .kinematics import CALIBRATION_NAMES, calibrated_step

STATE_NAMES = ("x", "y", "yaw", "v", "w")
ACTION_NAMES = ("v_cmd", "w_cmd")
RESIDUAL_NAMES = ("dx_body", "dy_body", "dyaw", "dv", "dw")
STATE_DIM = len(STATE_NAMES)
ACTION_DIM = len(ACTION_NAMES)
# Context columns before the optional latent.
PAYLOAD, PAYLOAD_KNOWN = 0, 1
BASE_CONTEXT_DIM = 2
FEATURE_NAMES = ("v", "w", "v_cmd", "w_cmd", "payload_kg", "payload_known")


@dataclass
class WorldModelConfig:
    """Architecture and physical bounds; stored in every artifact (config.json)."""

    dt: float = 0.1
    horizon: int = 10
    hidden: int = 64
    layers: int = 2
    use_payload: bool = True
    latent_dim: int = 0
    # Largest correction per step [dx_body m, dy_body m, dyaw rad, dv m/s, dw rad/s]. At
    # dt = 0.1 s, 0.06 m is 0.6 m/s of unexplained motion: far more than slip or lag produce
    # on a warehouse base, far less than a diverging network would.
    residual_bound: Tuple[float, ...] = (0.06, 0.04, 0.1, 0.4, 0.8)
    # Physical limits of the predicted velocities (|v| m/s, |w| rad/s).
    v_abs_max: float = 2.0
    w_abs_max: float = 3.0

    def __post_init__(self) -> None:
        self.residual_bound = tuple(float(b) for b in self.residual_bound)
        if len(self.residual_bound) != len(RESIDUAL_NAMES):
            raise ValueError("residual_bound needs %d values" % len(RESIDUAL_NAMES))
        if any(not (b > 0.0) for b in self.residual_bound):
            raise ValueError("residual_bound values must be positive")
        if not (self.dt > 0.0) or self.horizon < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("dt, horizon, hidden and layers must be positive")
        if self.latent_dim < 0:
            raise ValueError("latent_dim must be >= 0")
        if not (self.v_abs_max > 0.0 and self.w_abs_max > 0.0):
            raise ValueError("v_abs_max and w_abs_max must be positive")

    @property
    def context_dim(self) -> int:
        return BASE_CONTEXT_DIM + self.latent_dim

    @property
    def feature_dim(self) -> int:
        return len(FEATURE_NAMES) + self.latent_dim

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["residual_bound"] = list(self.residual_bound)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WorldModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError("unknown world model config key(s) %s" % unknown)
        return cls(**dict(d))


def _mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    mods: List[nn.Module] = []
    width = n_in
    for _ in range(layers):
        # SiLU exports to ONNX as Sigmoid * x, which every TensorRT version parses.
        mods += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    last = nn.Linear(width, n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    mods.append(last)
    return nn.Sequential(*mods)


class WorldModel(nn.Module):
    """Calibrated kinematics + bounded body-frame residual. See the module docstring."""

    def __init__(self, config: Optional[WorldModelConfig] = None,
                 calibration: Optional[Mapping[str, float]] = None):
        super().__init__()
        cfg = config if config is not None else WorldModelConfig()
        self.config = cfg
        self.dt = float(cfg.dt)
        self.use_payload = bool(cfg.use_payload)
        self.latent_dim = int(cfg.latent_dim)
        cal = dict(calibration or {})
        self.register_buffer("calibration", torch.tensor(
            [float(cal.get(n, d)) for n, d in zip(CALIBRATION_NAMES, (1.0, 1.0, 1e-3, 1e-3))],
            dtype=torch.float32))
        self.register_buffer("residual_bound", torch.tensor(cfg.residual_bound,
                                                            dtype=torch.float32))
        self.register_buffer("velocity_limit", torch.tensor([cfg.v_abs_max, cfg.w_abs_max],
                                                            dtype=torch.float32))
        # Input normalisation, fitted on the training data (`set_normalisation`).
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feature_std", torch.ones(cfg.feature_dim))
        self.residual = _mlp(cfg.feature_dim, cfg.hidden, cfg.layers, len(RESIDUAL_NAMES))

    # -- pieces -------------------------------------------------------------------------

    def features(self, state: Tensor, action: Tensor, context: Tensor) -> Tensor:
        """(B, F) normalised residual inputs: body-frame quantities only, never the pose."""
        # Literal indices: TorchScript cannot read module-level constants (PAYLOAD = 0,
        # PAYLOAD_KNOWN = 1, BASE_CONTEXT_DIM = 2).
        known = context[:, 1:2]
        if not self.use_payload:
            known = torch.zeros_like(known)
        payload = context[:, 0:1] * known
        parts = [state[:, 3:5], action, payload, known]
        if self.latent_dim > 0:
            parts.append(context[:, 2:2 + self.latent_dim])
        f = torch.cat(parts, dim=1)
        return (f - self.feature_mean) / self.feature_std

    def kinematic_next(self, state: Tensor, action: Tensor) -> Tensor:
        """The calibrated unicycle step alone (the baseline the residual corrects)."""
        return calibrated_step(state, action, self.calibration, self.dt)

    def correction(self, state: Tensor, action: Tensor, context: Tensor) -> Tensor:
        """(B, 5) bounded residual [dx_body, dy_body, dyaw, dv, dw]."""
        raw = self.residual(self.features(state, action, context))
        return self.residual_bound * torch.tanh(raw)

    # -- the model's interface ------------------------------------------------------------

    def next(self, state: Tensor, action: Tensor, context: Tensor) -> Tensor:
        """(B, 5) state one step of dt later."""
        base = self.kinematic_next(state, action)
        r = self.correction(state, action, context)
        # Body frame at the start of the step -> world.
        c = torch.cos(state[:, 2])
        s = torch.sin(state[:, 2])
        x = base[:, 0] + c * r[:, 0] - s * r[:, 1]
        y = base[:, 1] + s * r[:, 0] + c * r[:, 1]
        yaw = base[:, 2] + r[:, 2]
        v = torch.clamp(base[:, 3] + r[:, 3], -self.velocity_limit[0], self.velocity_limit[0])
        w = torch.clamp(base[:, 4] + r[:, 4], -self.velocity_limit[1], self.velocity_limit[1])
        return torch.stack([x, y, yaw, v, w], dim=1)

    def rollout(self, state: Tensor, actions: Tensor, context: Tensor) -> Tensor:
        """(B, H+1, 5) states from `state` (index 0) under (B, H, 2) actions."""
        states = [state]
        for t in range(actions.shape[1]):
            state = self.next(state, actions[:, t], context)
            states.append(state)
        return torch.stack(states, dim=1)

    def forward(self, state: Tensor, actions: Tensor, context: Tensor) -> Tensor:
        return self.rollout(state, actions, context)

    # -- set-up -------------------------------------------------------------------------

    @torch.jit.ignore
    def set_normalisation(self, mean: Tensor, std: Tensor) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean.numel() != self.feature_mean.numel() or std.numel() != mean.numel():
            raise ValueError("normalisation needs %d values" % self.feature_mean.numel())
        # A constant feature (payload never known, say) must not divide by zero.
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(torch.clamp(std, min=1e-3))

    @torch.jit.ignore
    def calibration_dict(self) -> Dict[str, float]:
        return {n: float(v) for n, v in zip(CALIBRATION_NAMES, self.calibration.tolist())}


def make_context(batch: int, payload_kg: Optional[float] = None,
                 latent: Optional[Tensor] = None, latent_dim: int = 0) -> Tensor:
    """(batch, 2 + latent_dim) context rows for one robot: the same payload for all samples."""
    ctx = torch.zeros(batch, BASE_CONTEXT_DIM + latent_dim)
    if payload_kg is not None:
        ctx[:, PAYLOAD] = float(payload_kg)
        ctx[:, PAYLOAD_KNOWN] = 1.0
    if latent_dim > 0 and latent is not None:
        ctx[:, BASE_CONTEXT_DIM:] = torch.as_tensor(latent, dtype=torch.float32).reshape(
            1, latent_dim)
    return ctx


__all__ = ["WorldModel", "WorldModelConfig", "make_context", "STATE_NAMES", "ACTION_NAMES",
           "RESIDUAL_NAMES", "STATE_DIM", "ACTION_DIM", "FEATURE_NAMES"]
