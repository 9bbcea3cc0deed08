"""Motion models behind MPPI's rollouts: plain kinematics, or the learned world model, guarded.

Both answer `rollout(state, controls, dt) -> (K, H+1, 3)` [x, y, yaw] for (K, H, 2) (or (H, 2))
clamped control sequences, so the optimizer and the critics never know which one ran.

LearnedMotionModel loads a world-model artifact (wm_world_model.artifact: checksums, schema,
optional Ed25519 signature) and scripts it with the robot's own torch (TorchScript; the whole
H-step loop runs inside the scripted module, so there is no per-step Python). It predicts from
the measured velocities and, when known, the payload. Its output is checked every call: a
prediction that is not finite or moves faster than the model's physical limits is reported
(`failures`, `last_error`) and that batch falls back to kinematics, so a bad model degrades the
plan, never the robot's safety. torch is imported only when an artifact is configured.

The model rolls out from the origin with the robot's heading and the pose is added back in
float64: the world model is SE(2)-equivariant, so this is exact, and it keeps float32 from
rounding odom coordinates hundreds of metres from the origin.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .models import RobotState
from .unicycle import rollout as unicycle_rollout


class KinematicMotionModel:
    """The unicycle the planner assumes without a learned model."""

    name = "kinematic"
    version = ""

    def rollout(self, state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
        return unicycle_rollout(state, controls, dt)


class LearnedMotionModel:
    """A world-model artifact as the planner's motion model (see the module docstring)."""

    name = "world_model"

    def __init__(self, artifact: str, dt: float, public_key_file: str = "",
                 require_signature: bool = False, threads: int = 1):
        import torch

        from wm_world_model.artifact import load_artifact, to_torchscript

        key = None
        if public_key_file:
            with open(public_key_file, "rb") as f:
                key = f.read()
        model, meta = load_artifact(artifact, public_key_pem=key,
                                    require_signature=require_signature)
        if abs(model.dt - dt) > 1e-9:
            raise ValueError("world model %s steps %.3f s but the planner's dt is %.3f s"
                             % (meta["version"], model.dt, dt))
        if threads > 0:
            # The planner shares a small CPU with perception: one thread is the fastest
            # for batches of a few thousand (see BENCHMARKS.md) and leaves cores free.
            torch.set_num_threads(int(threads))
        self._torch = torch
        self._script = to_torchscript(model)
        self._latent_dim = int(model.config.latent_dim)
        self._v_limit = float(model.config.v_abs_max)
        self._w_limit = float(model.config.w_abs_max)
        self.version = str(meta["version"])
        self.metadata = meta
        self.payload_kg: Optional[float] = None
        self.failures = 0
        self.last_error = ""
        self._fallback = KinematicMotionModel()

    def set_payload(self, payload_kg: Optional[float]) -> None:
        """The carried mass (kg), or None when unknown (the model then uses its 'unknown'
        mode, which it was trained for)."""
        if payload_kg is not None and not (math.isfinite(payload_kg) and payload_kg >= 0.0):
            raise ValueError("payload must be a finite mass >= 0, got %r" % (payload_kg,))
        self.payload_kg = None if payload_kg is None else float(payload_kg)

    def rollout(self, state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
        torch = self._torch
        u = np.asarray(controls, dtype=np.float64)
        single = u.ndim == 2
        if single:
            u = u[None]
        k = u.shape[0]
        s0 = torch.tensor([[0.0, 0.0, state.yaw, state.v, state.w]],
                          dtype=torch.float32).expand(k, 5)
        ctx = torch.zeros(k, 2 + self._latent_dim)
        if self.payload_kg is not None:
            ctx[:, 0] = self.payload_kg
            ctx[:, 1] = 1.0
        with torch.no_grad():
            pred = self._script.rollout(s0, torch.from_numpy(u.astype(np.float32)), ctx)
        out = pred.numpy().astype(np.float64)
        reason = self._check(out, dt)
        if reason:
            self.failures += 1
            self.last_error = reason
            return self._fallback.rollout(state, controls, dt)
        traj = out[:, :, :3].copy()
        traj[:, :, 0] += state.x
        traj[:, :, 1] += state.y
        return traj[0] if single else traj

    def _check(self, out: np.ndarray, dt: float) -> str:
        if not np.all(np.isfinite(out)):
            return "non-finite prediction"
        # The model clamps its velocities; a step longer than the limit allows means the
        # pose update itself went wrong. 1.5x: the residual may add up to its bound.
        step = np.hypot(np.diff(out[:, :, 0], axis=1), np.diff(out[:, :, 1], axis=1))
        if float(step.max(initial=0.0)) > 1.5 * self._v_limit * dt + 1e-6:
            return "step of %.3f m in %.2f s exceeds the model's speed limit" % (
                float(step.max()), dt)
        turn = np.abs(np.diff(out[:, :, 2], axis=1))
        if float(turn.max(initial=0.0)) > 1.5 * self._w_limit * dt + 1e-6:
            return "turn of %.3f rad in %.2f s exceeds the model's turn-rate limit" % (
                float(turn.max()), dt)
        return ""
