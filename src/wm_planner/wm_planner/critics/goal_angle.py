"""GoalAngleCritic: final heading versus the goal's yaw, near the goal only."""
from __future__ import annotations

import math

import numpy as np

from wm_common.geometry import wrap_angle

from .base import Critic
from .smooth import smooth_abs_angle


class GoalAngleCritic(Critic):
    """|heading error|^power at the end of the horizon.

    Only active while the robot is within `activation_radius` of the goal position: far
    away, the heading that matters is the one that makes progress, and a goal-yaw term
    would fight the goal critic (Nav2's threshold_to_consider does the same). Also
    inactive when the goal's yaw_tolerance is >= pi: the heading is then free, and turning
    to an arbitrary yaw would only waste time. Smooth form: |err| as the chord
    2|sin(err/2)| rounded off at 0.
    """

    name = "goal_angle"
    nmpc_form = "smooth"
    goal_gated = True
    PARAMS = dict(Critic.PARAMS, weight=2.0, activation_radius=1.0, power=1.0)

    def validate(self) -> None:
        if self.activation_radius < 0.0 or self.power <= 0.0:
            raise ValueError("goal_angle: activation_radius >= 0 and power > 0 required")

    def active(self, distance, goal):
        return goal.yaw_tolerance < math.pi and distance <= self.activation_radius

    def cost(self, data):
        s, g = data.state, data.goal
        if not self.active(math.hypot(s.x - g.x, s.y - g.y), g):
            return np.zeros(data.num_samples)
        err = np.abs(wrap_angle(data.trajectories[:, -1, 2] - g.yaw))
        return err ** self.power

    def smooth_cost(self, nlp):
        err = smooth_abs_angle(nlp.states[-1][2] - nlp.goal[2])
        return nlp.active * err ** self.power
