"""PreferForwardCritic: penalty on driving backwards."""
from __future__ import annotations

import math

import numpy as np

from .base import Critic
from .smooth import ca

EPS_REVERSE = 0.01   # m/s: smoothing of max(-v, 0)


class PreferForwardCritic(Critic):
    """Metres driven in reverse over the horizon (sum of max(-v, 0) * dt).

    Reversing stays possible (v_min < 0) to back out of a dead end, but the warehouse
    robot's sensors face forward, so it should not be the casual choice. Inactive within
    deactivation_radius of the goal: backing up a few centimetres after an overshoot
    beats driving a loop around the goal (Nav2's threshold_to_consider does the same).
    Smooth form: max(-v, 0) rounded off over |v| < EPS_REVERSE.
    """

    name = "prefer_forward"
    nmpc_form = "smooth"
    goal_gated = True
    PARAMS = dict(Critic.PARAMS, weight=5.0, deactivation_radius=0.5)

    def validate(self) -> None:
        if self.deactivation_radius < 0.0:
            raise ValueError("prefer_forward.deactivation_radius must be >= 0")

    def active(self, distance, goal):
        return distance > self.deactivation_radius

    def cost(self, data):
        s, g = data.state, data.goal
        if not self.active(math.hypot(s.x - g.x, s.y - g.y), g):
            return np.zeros(data.num_samples)
        return np.minimum(data.controls[..., 0], 0.0).sum(axis=1) * -data.dt

    def smooth_cost(self, nlp):
        vs = nlp.controls[0, :]
        rev = 0.5 * (ca.sqrt(vs ** 2 + EPS_REVERSE ** 2) - vs)
        return nlp.active * ca.sum2(rev) * nlp.dt
