"""Kinematic motion models in torch, batched: the naive unicycle and the calibrated baseline.

naive_rollout: what the planner assumed before the world model existed (wm_planner.unicycle):
    the commanded (v, w) is the body velocity at once, Euler step on the heading at the start
    of the step; the predicted velocity is the command.
calibrated_step: the honest baseline. A differential-drive base tracks its command through
    its speed loop with a lag; its wheel odometry reports the wheel speeds, and the wheels' true
    effective radius and track differ from the nominal ones (wear, tyre load, payload). So:
        v' = v + a_v (v_cmd - v),   a_v = 1 - exp(-dt / tau_v)   (same for w with tau_w)
        the body moves with scale_v * (v + v') / 2 and turns with scale_w * (w + w') / 2
        over the step (trapezoid), along the heading at the middle of the step.
    Four parameters, CALIBRATION_NAMES, fitted on the training data (wm_world_model.train).
Python 3.8, torch >= 1.13.
"""
from __future__ import annotations

import torch
from torch import Tensor

CALIBRATION_NAMES = ("scale_v", "scale_w", "tau_v", "tau_w")


def naive_rollout(state: Tensor, actions: Tensor, dt: float) -> Tensor:
    """(B, H+1, 5) naive unicycle rollout of (B, H, 2) commands from (B, 5) states."""
    states = [state]
    for t in range(actions.shape[1]):
        u = actions[:, t]
        yaw = state[:, 2]
        nxt = torch.stack([state[:, 0] + u[:, 0] * dt * torch.cos(yaw),
                           state[:, 1] + u[:, 0] * dt * torch.sin(yaw),
                           yaw + u[:, 1] * dt, u[:, 0], u[:, 1]], dim=1)
        states.append(nxt)
        state = nxt
    return torch.stack(states, dim=1)


def calibrated_step(state: Tensor, action: Tensor, calibration: Tensor, dt: float) -> Tensor:
    """(B, 5) next state of the calibrated unicycle; calibration = [scale_v, scale_w, tau_v,
    tau_w] (a (4,) tensor, so it can be a buffer or a parameter being fitted)."""
    gain_v = 1.0 - torch.exp(-dt / torch.clamp(calibration[2], min=1e-3))
    gain_w = 1.0 - torch.exp(-dt / torch.clamp(calibration[3], min=1e-3))
    v0, w0 = state[:, 3], state[:, 4]
    v1 = v0 + gain_v * (action[:, 0] - v0)
    w1 = w0 + gain_w * (action[:, 1] - w0)
    dyaw = calibration[1] * 0.5 * (w0 + w1) * dt
    ds = calibration[0] * 0.5 * (v0 + v1) * dt
    mid = state[:, 2] + 0.5 * dyaw
    return torch.stack([state[:, 0] + ds * torch.cos(mid), state[:, 1] + ds * torch.sin(mid),
                        state[:, 2] + dyaw, v1, w1], dim=1)


def calibrated_rollout(state: Tensor, actions: Tensor, calibration: Tensor, dt: float
                       ) -> Tensor:
    """(B, H+1, 5) rollout of the calibrated baseline."""
    states = [state]
    for t in range(actions.shape[1]):
        state = calibrated_step(state, actions[:, t], calibration, dt)
        states.append(state)
    return torch.stack(states, dim=1)
