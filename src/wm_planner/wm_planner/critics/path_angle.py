"""PathAngleCritic: keep the heading aligned with the navigation function's descent."""
from __future__ import annotations

import math

import numpy as np

from wm_common.geometry import wrap_angle

from ..critic_data import sample_grid
from .base import Critic


class PathAngleCritic(Critic):
    """Heading error at the end of the horizon versus the direction of steepest descent
    of the cost-to-go (toward the goal when there is no cost-to-go grid).

    Why it exists: the goal critic only looks at positions, and a turn on the spot does
    not change position. A robot facing away from its route (goal behind it, or after
    swinging wide around a shelf corner) then sees no progress from any 1 s trajectory
    and stops for good. This term rewards turning toward the route, like Nav2's
    PathAngleCritic does toward its path.

    cost = max(|err| - max_angle, 0) ** power: headings within max_angle of the descent
    direction are free, so the term never fights the goal critic on a curving route.
    Inactive within deactivation_radius of the goal (the goal-angle critic takes over)
    and where the cost-to-go is flat (slope below min_slope, no direction to follow).
    """

    name = "path_angle"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=2.0, max_angle=0.5, power=1.0,
                  deactivation_radius=1.0, min_slope=0.2)

    def validate(self) -> None:
        if self.max_angle < 0.0 or self.power <= 0.0 or self.deactivation_radius < 0.0:
            raise ValueError("path_angle: max_angle >= 0, power > 0, "
                             "deactivation_radius >= 0 required")

    def cost(self, data):
        s, g = data.state, data.goal
        k = data.num_samples
        if math.hypot(s.x - g.x, s.y - g.y) <= self.deactivation_radius:
            return np.zeros(k)
        end = data.trajectories[:, -1, :]
        ctg = data.cost_to_go
        if ctg is not None:
            # Central differences one cell apart, all K end points in one sample call,
            # as (4, K) arrays (rows +x, -x, +y, -y): K contiguous values per row.
            h = ctg.resolution
            c = sample_grid(ctg, end[:, 0] + np.array([[h], [-h], [0.0], [0.0]]),
                            end[:, 1] + np.array([[0.0], [0.0], [h], [-h]]))
            gx = (c[0] - c[1]) / (2.0 * h)
            gy = (c[2] - c[3]) / (2.0 * h)
            desired = np.arctan2(-gy, -gx)
            valid = np.hypot(gx, gy) >= self.min_slope
        else:
            desired = np.arctan2(g.y - end[:, 1], g.x - end[:, 0])
            valid = np.ones(k, dtype=bool)
        err = np.abs(wrap_angle(end[:, 2] - desired))
        return np.where(valid, np.maximum(err - self.max_angle, 0.0) ** self.power, 0.0)
