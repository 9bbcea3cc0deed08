"""PreferForwardCritic: penalty on driving backwards."""
from __future__ import annotations

import math

import numpy as np

from .base import Critic


class PreferForwardCritic(Critic):
    """Metres driven in reverse over the horizon (sum of max(-v, 0) * dt).

    Reversing stays possible (v_min < 0) to back out of a dead end, but the warehouse
    robot's sensors face forward, so it should not be the casual choice. Inactive within
    deactivation_radius of the goal: backing up a few centimetres after an overshoot
    beats driving a loop around the goal (Nav2's threshold_to_consider does the same).
    """

    name = "prefer_forward"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=5.0, deactivation_radius=0.5)

    def validate(self) -> None:
        if self.deactivation_radius < 0.0:
            raise ValueError("prefer_forward.deactivation_radius must be >= 0")

    def cost(self, data):
        s, g = data.state, data.goal
        if math.hypot(s.x - g.x, s.y - g.y) <= self.deactivation_radius:
            return np.zeros(data.num_samples)
        return np.minimum(data.controls[..., 0], 0.0).sum(axis=1) * -data.dt
