"""SmoothnessCritic: penalty on control changes, including versus the last command."""
from __future__ import annotations

import numpy as np

from .base import Critic
from .smooth import ca


class SmoothnessCritic(Critic):
    """Mean over the horizon of squared control changes, in units of the acceleration limit.

    Step 0 is compared with the command sent last cycle (data.previous_command), so the
    new plan does not jerk away from what the base is already executing. Normalising by
    a_max*dt and alpha_max*dt makes each term at most 1 per step for clamped controls,
    independent of dt and of the robot's limits.
    """

    name = "smoothness"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=1.0, v_weight=1.0, w_weight=0.5)

    def cost(self, data):
        u = data.controls
        prev = data.previous_command
        total = np.zeros(u.shape[0])
        # Per channel, on (K, H) slices (one contiguous block each in the kernels' layout).
        for ch, weight, limit in ((0, self.v_weight, data.limits.a_max),
                                  (1, self.w_weight, data.limits.alpha_max)):
            c = u[..., ch]
            d = np.empty_like(c)
            np.subtract(c[:, 0], prev[ch], out=d[:, 0])
            np.subtract(c[:, 1:], c[:, :-1], out=d[:, 1:])
            d /= limit * data.dt
            total += weight * np.square(d, out=d).mean(axis=1)
        return total

    def smooth_cost(self, nlp):
        u, lim, dt = nlp.controls, nlp.limits, nlp.dt
        du = ca.horzcat(u[:, 0] - nlp.previous, u[:, 1:] - u[:, :-1])
        return ca.sum2(self.v_weight * (du[0, :] / (lim.a_max * dt)) ** 2
                       + self.w_weight * (du[1, :] / (lim.alpha_max * dt)) ** 2) / nlp.horizon
