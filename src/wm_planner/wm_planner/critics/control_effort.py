"""ControlEffortCritic: a small penalty on commanded velocities."""
from __future__ import annotations

from .base import Critic
from .smooth import ca


class ControlEffortCritic(Critic):
    """Mean over the horizon of v_weight * v^2 + w_weight * w^2 (SI units).

    Keeps the robot from spinning or creeping when nothing else prefers a motion; kept
    small by default so it never competes with progress toward the goal.
    """

    name = "control_effort"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=0.1, v_weight=1.0, w_weight=0.5)

    def cost(self, data):
        u = data.controls
        return (self.v_weight * u[..., 0] ** 2 + self.w_weight * u[..., 1] ** 2).mean(axis=1)

    def smooth_cost(self, nlp):
        u = nlp.controls
        return ca.sum2(self.v_weight * u[0, :] ** 2 + self.w_weight * u[1, :] ** 2) \
            / nlp.horizon
