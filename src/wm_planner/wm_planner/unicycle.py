"""Unicycle (differential-drive) motion model: batched rollout and control clamping.

Controls are [v, w] (m/s, rad/s) held constant over each step of `dt` seconds. The
integration is explicit Euler on the heading at the start of the step, the same as the
step-by-step reference in the tests; at dt = 0.1 s and w <= 1.2 rad/s the position error
against exact arcs is a few millimetres per step, well below the grid resolution.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .models import RobotLimits, RobotState


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


def rollout(state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
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
    (motion_model.clamp_rollout, equal to this function bit for bit); this numpy version is
    the reference and the fallback without torch. Its loop works channel-major, on (2, K)
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
