"""Kinematic motion models, batched: the naive unicycle and the calibrated baseline.

unicycle_rollout, clamp_controls (numpy, float64): the naive unicycle the planner rolls out
    without a world model, and the robot's velocity and acceleration limits applied to
    control sequences. Controls are [v, w] (m/s, rad/s) held constant over each step of `dt`
    seconds; explicit Euler on the heading at the start of the step: at dt = 0.1 s and
    w <= 1.2 rad/s the position error against exact arcs is a few millimetres per step, well
    below the grid resolution.
naive_rollout: the same unicycle in torch, on the world model's 5-d states:
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

import numpy as np
import torch
from torch import Tensor

from .state import RobotLimits, RobotState

CALIBRATION_NAMES = ("scale_v", "scale_w", "tau_v", "tau_w")


def unicycle_terms(x, y, yaw, v_cmd, w_cmd, dt: float, cos, sin):
    """The naive unicycle's step: (x, y, yaw) after `dt` at the commanded (v, w), Euler on
    the heading at the step's start (unicycle_rollout is its batched prefix-sum form)."""
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


def as_batch(controls: np.ndarray) -> Tuple[np.ndarray, bool]:
    """(K, H, 2) float64 view of (K, H, 2) or (H, 2) controls, and whether it was a single
    sequence (callers return the single result unbatched)."""
    u = np.asarray(controls, dtype=np.float64)
    single = u.ndim == 2
    if single:
        u = u[None]
    if u.ndim != 3 or u.shape[2] != 2:
        raise ValueError("controls must be (K, H, 2) or (H, 2), got %s" % (u.shape,))
    return u, single


def unicycle_rollout(state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
    """Integrate (K, H, 2) control sequences from `state`; returns (K, H+1, 3) [x, y, yaw].

    Index 0 of every trajectory is the current pose. A single (H, 2) sequence gives a
    single (H+1, 3) trajectory. Yaw is left unwrapped (continuous along the trajectory) so
    differences along it stay meaningful; critics wrap where they compare to a goal.
    """
    u, single = as_batch(controls)
    k, h = u.shape[0], u.shape[1]
    out = np.empty((k, h + 1, 3), dtype=np.float64)
    # Heading after each step is a prefix sum of the turn increments; no per-step loop.
    yaw = out[:, :, 2]
    yaw[:, 0] = state.yaw
    np.cumsum(u[:, :, 1] * dt, axis=1, out=yaw[:, 1:])
    yaw[:, 1:] += state.yaw
    # Each translation step uses the heading at the start of that step (yaw[:, :-1]), so
    # positions are again prefix sums once the headings are known.
    step = u[:, :, 0] * dt
    out[:, 0, 0] = state.x
    out[:, 0, 1] = state.y
    np.cumsum(step * np.cos(yaw[:, :-1]), axis=1, out=out[:, 1:, 0])
    np.cumsum(step * np.sin(yaw[:, :-1]), axis=1, out=out[:, 1:, 1])
    out[:, 1:, 0] += state.x
    out[:, 1:, 1] += state.y
    return out[0] if single else out


def clamp_controls(controls: np.ndarray, limits: RobotLimits, v0: float, w0: float,
                   dt: float) -> np.ndarray:
    """Make (K, H, 2) (or (H, 2)) control sequences feasible; returns a new array.

    Velocity limits: v in [v_min, v_max], |w| <= w_max. Acceleration limits: each step may
    change v by at most a_max*dt and w by at most alpha_max*dt from the previous step,
    starting from the current velocities (v0, w0). This is the rate limiter a velocity-
    controlled base applies: every step moves toward the requested value as fast as the
    limits allow, so a saturated request is still tracked on the following steps.

    Why a loop over H: the rate limiter y_k = clip(u_k, y_{k-1} - d, y_{k-1} + d) is a
    nonlinear recursion; composing clip maps does not give a clip map again, so there is no
    prefix-sum / ufunc.accumulate form. The vectorisable alternative (clip the increments
    u_k - u_{k-1}, then cumsum) forgets every saturated step: a request of [2, 2, 2] from
    rest would yield [0.1, 0.1, 0.1] forever, biasing all samples toward the current speed.
    MPPI's hot path runs the same recursion inside a TorchScript kernel
    (motion_model's clamp_rollout, equal to this function bit for bit); this numpy version is
    the reference. Its loop works channel-major, on (2, K)
    rows per step, both channels at once: per-channel bounds broadcast along K instead of
    along an inner axis of 2 (0.09 ms instead of 0.6 ms at K = 1024, H = 10). A batch comes
    back as a (K, H, 2) view of that (H, 2, K) array.

    The result satisfies both limit sets whenever (v0, w0) is itself within the velocity
    limits; otherwise the velocity limit wins on the first step (a command outside the
    limits is never sent, even if the measured velocity is).
    """
    u, single = as_batch(controls)
    lo = np.array([[limits.v_min], [-limits.w_max]])
    hi = np.array([[limits.v_max], [limits.w_max]])
    step = np.array([[limits.a_max * dt], [limits.alpha_max * dt]])
    # (H, 2, K), C order. Clipping to the velocity box first is 1-Lipschitz, so it cannot
    # make a later rate limit easier or harder to meet; doing it up front saves one clip per
    # step.
    req = np.maximum(u.transpose(1, 2, 0), lo, order="C")
    np.minimum(req, hi, out=req)
    out = np.empty_like(req)
    prev = np.array([[v0], [w0]], dtype=np.float64)
    for t in range(req.shape[0]):
        cur = out[t]
        np.maximum(req[t], prev - step, out=cur)
        np.minimum(cur, prev + step, out=cur)
        if t == 0:
            # Re-clip to the box: only matters when (v0, w0) lies outside the velocity
            # limits. Later steps lie between a boxed request and a boxed previous step.
            np.minimum(np.maximum(cur, lo, out=cur), hi, out=cur)
        prev = cur
    # A (K, H, 2) view of the (H, 2, K) result: each channel's (K, H) block contiguous.
    out = out.transpose(2, 0, 1)
    return out[0].copy() if single else out
