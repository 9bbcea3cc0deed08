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
The step formulas are written once for every backend: `unicycle_terms` (with the backend's
cos and sin) and `calibrated_increments` (plain arithmetic, scripted with the model) serve
torch here, CasADi expressions in wm_world_model.casadi_form and plain floats elsewhere;
`calibration_gains` is the one place the lag becomes a per-step gain. Python 3.8, torch >= 1.13.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

CALIBRATION_NAMES = ("scale_v", "scale_w", "tau_v", "tau_w")


def unicycle_terms(x, y, yaw, v_cmd, w_cmd, dt: float, cos, sin):
    """The naive unicycle's step: (x, y, yaw) after `dt` at the commanded (v, w), Euler on
    the heading at the step's start (wm_planner.unicycle.rollout is its batched prefix-sum
    form)."""
    step = v_cmd * dt
    return x + step * cos(yaw), y + step * sin(yaw), yaw + w_cmd * dt


def calibration_gains(calibration: Tensor, dt: float) -> Tensor:
    """(2,) [gain_v, gain_w] = 1 - exp(-dt / tau) of calibration [scale_v, scale_w, tau_v,
    tau_w] (tau clamped at 1 ms): the lag of the speed loops over one step."""
    return 1.0 - torch.exp(-dt / torch.clamp(calibration[2:4], min=1e-3))


def calibrated_increments(v0: Tensor, w0: Tensor, v_cmd: Tensor, w_cmd: Tensor,
                          gain_v: Tensor, gain_w: Tensor, scale_v: Tensor, scale_w: Tensor,
                          dt: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The calibrated unicycle's step without the pose: (distance along the mid-step heading
    ds, turn dyaw, v', w'). Plain arithmetic, so the same function serves torch (scripted
    with the model), CasADi expressions and floats; the pose then moves by ds along
    yaw + dyaw / 2 and turns by dyaw."""
    v1 = v0 + gain_v * (v_cmd - v0)
    w1 = w0 + gain_w * (w_cmd - w0)
    dyaw = scale_w * 0.5 * (w0 + w1) * dt
    ds = scale_v * 0.5 * (v0 + v1) * dt
    return ds, dyaw, v1, w1


def naive_rollout(state: Tensor, actions: Tensor, dt: float) -> Tensor:
    """(B, H+1, 5) naive unicycle rollout of (B, H, 2) commands from (B, 5) states."""
    states = [state]
    for t in range(actions.shape[1]):
        u = actions[:, t]
        x, y, yaw = unicycle_terms(state[:, 0], state[:, 1], state[:, 2], u[:, 0], u[:, 1],
                                   dt, torch.cos, torch.sin)
        nxt = torch.stack([x, y, yaw, u[:, 0], u[:, 1]], dim=1)
        states.append(nxt)
        state = nxt
    return torch.stack(states, dim=1)


def calibrated_step(state: Tensor, action: Tensor, calibration: Tensor, dt: float) -> Tensor:
    """(B, 5) next state of the calibrated unicycle; calibration = [scale_v, scale_w, tau_v,
    tau_w] (a (4,) tensor, so it can be a buffer or a parameter being fitted)."""
    gain = calibration_gains(calibration, dt)
    ds, dyaw, v1, w1 = calibrated_increments(state[:, 3], state[:, 4], action[:, 0],
                                             action[:, 1], gain[0], gain[1], calibration[0],
                                             calibration[1], dt)
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
