"""KeepRightCritic: meeting another robot head on, both pass on their right."""
from __future__ import annotations

import math

import numpy as np

from .base import Critic, time_weights


class KeepRightCritic(Critic):
    """A traffic rule for robots that meet head on (nose to nose in an aisle, two robots
    whose routes run through each other): each keeps `offset` metres to the right of the
    line from itself to the other robot. Applied by every robot to the same shared data, the
    rule puts them on opposite sides of the aisle; without it each went round the other on
    whichever side its own samples found first, and two robots that chose the same side
    blocked each other until one gave up.

    Active for neighbours (data.neighbours, where they are now) within `distance` metres and
    within `bearing` radians either side of straight ahead. Per sample:
    sum_t w_t max(0, y_t + offset)^2, y_t the sample's lateral position at step t in the frame
    of the line robot -> neighbour (left positive), with time weights growing towards the end
    of the horizon. Nothing without such a neighbour.
    """

    name = "keep_right"
    nmpc_form = ("sampler only: the neighbours it keeps right of are not parameters of "
                 "the NLP")
    PARAMS = dict(Critic.PARAMS, weight=3.0, offset=0.35, distance=3.0, bearing=1.0,
                  time_power=1.0)

    def validate(self) -> None:
        if self.offset < 0.0 or self.distance <= 0.0 or not 0.0 < self.bearing <= math.pi:
            raise ValueError("keep_right: offset >= 0, distance > 0, 0 < bearing <= pi")

    def cost(self, data):
        k = data.num_samples
        out = np.zeros(k)
        if not data.neighbours:
            return out
        s = data.state
        xy = data.trajectories[:, 1:, :2]                       # (K, H, 2)
        w = time_weights(data.horizon, self.time_power)
        for n in data.neighbours:
            p = n.positions_at(np.zeros(1))[0]
            dx, dy = p[0] - s.x, p[1] - s.y
            dist = math.hypot(dx, dy)
            if dist > self.distance or dist < 1e-6:
                continue
            ang = math.atan2(dy, dx)
            if abs((ang - s.yaw + math.pi) % (2.0 * math.pi) - math.pi) > self.bearing:
                continue
            c, si = math.cos(ang), math.sin(ang)
            lateral = -si * (xy[..., 0] - s.x) + c * (xy[..., 1] - s.y)   # left positive
            out += (np.maximum(lateral + self.offset, 0.0) ** 2) @ w
        return out
