"""SmoothnessCritic: penalty on control changes, including versus the last command."""
from __future__ import annotations

import numpy as np

from .base import Critic


class SmoothnessCritic(Critic):
    """Mean over the horizon of squared control changes, in units of the acceleration limit.

    Step 0 is compared with the command sent last cycle (data.previous_command), so the
    new plan does not jerk away from what the base is already executing. Normalising by
    a_max*dt and alpha_max*dt makes each term at most 1 per step for clamped controls,
    independent of dt and of the robot's limits.
    """

    name = "smoothness"
    PARAMS = dict(Critic.PARAMS, weight=1.0, v_weight=1.0, w_weight=0.5)

    def cost(self, data):
        u = data.controls
        prev = np.broadcast_to(data.previous_command, (u.shape[0], 1, 2))
        du = np.diff(np.concatenate([prev, u], axis=1), axis=1)
        dv = du[..., 0] / (data.limits.a_max * data.dt)
        dw = du[..., 1] / (data.limits.alpha_max * data.dt)
        return (self.v_weight * dv ** 2 + self.w_weight * dw ** 2).mean(axis=1)
