"""PathAngleCritic: keep the heading aligned with the navigation function's descent."""
from __future__ import annotations

import math

import numpy as np

from wm_common.geometry import wrap_angle

from ..critic_data import sample_grid
from .base import Critic
from .smooth import ca, smooth_chord, smooth_relu


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

    Smooth form: hinge(chord(err) - chord(max_angle)) ** power with a smoothed hinge and
    chord 2|sin(err/2)|, the descent from central differences on the cost-to-go's spline,
    faded out (instead of cut) where the slope is below min_slope.
    """

    name = "path_angle"
    nmpc_form = "smooth"
    goal_gated = True
    PARAMS = dict(Critic.PARAMS, weight=2.0, max_angle=0.5, power=1.0,
                  deactivation_radius=1.0, min_slope=0.2)

    def validate(self) -> None:
        if self.max_angle < 0.0 or self.power <= 0.0 or self.deactivation_radius < 0.0:
            raise ValueError("path_angle: max_angle >= 0, power > 0, "
                             "deactivation_radius >= 0 required")

    def active(self, distance, goal):
        return distance > self.deactivation_radius

    def cost(self, data):
        s, g = data.state, data.goal
        k = data.num_samples
        if not self.active(math.hypot(s.x - g.x, s.y - g.y), g):
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

    def smooth_cost(self, nlp):
        end, goal, ctg = nlp.states[-1], nlp.goal, nlp.cost_to_go
        if ctg is not None:
            h = nlp.resolution
            dx = -(ctg(end[0] + h, end[1]) - ctg(end[0] - h, end[1])) / (2.0 * h)
            dy = -(ctg(end[0], end[1] + h) - ctg(end[0], end[1] - h)) / (2.0 * h)
            slope2 = dx ** 2 + dy ** 2
            gate = slope2 / (slope2 + self.min_slope ** 2)
        else:
            dx, dy = goal[0] - end[0], goal[1] - end[1]
            slope2 = dx ** 2 + dy ** 2
            gate = 1.0
        cos_err = (ca.cos(end[2]) * dx + ca.sin(end[2]) * dy) / ca.sqrt(slope2 + 1e-6)
        free = math.sqrt(2.0 - 2.0 * math.cos(self.max_angle))
        return nlp.active * gate * smooth_relu(smooth_chord(cos_err) - free) ** self.power
