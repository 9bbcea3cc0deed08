"""ObstacleCritic: collisions and clearance from the signed distance field."""
from __future__ import annotations

import numpy as np

from .base import Critic


class ObstacleCritic(Critic):
    """Clearance cost along every future trajectory point.

    d = esdf at the point (metres to the nearest obstacle, negative inside).
    * d < robot_radius at any future point: the sample collides. It costs the constant
      `collision_cost` (added unweighted, so tuning `weight` never weakens the hard
      constraint) and is flagged in data.in_collision.
    * d < robot_radius + inflation_radius: soft cost ((robot_radius + inflation_radius - d)
      / inflation_radius)^power per point, summed over the horizon and scaled by `weight`.
      It keeps growing past 1 inside the robot radius, so when every sample collides they
      are still ranked by how deep they go.
    Points outside the grid are free (the grid covers what the sensors know; unknown space
    inside it is the provider's job, which gives it the `outside` distance). The current
    pose (index 0) is excluded: it is the same for every sample and cannot be changed, and
    counting it would flag every sample, stop included, as soon as the robot is a hair
    inside its radius.
    """

    name = "obstacle"
    PARAMS = dict(Critic.PARAMS, weight=2.0, collision_cost=10000.0, inflation_radius=0.3,
                  power=2.0)

    def validate(self) -> None:
        if self.inflation_radius <= 0.0 or self.power <= 0.0 or self.collision_cost < 0.0:
            raise ValueError("obstacle: inflation_radius > 0, power > 0, collision_cost >= 0")

    def _distances(self, data) -> np.ndarray:
        esdf = data.esdf
        xy = data.trajectories[:, 1:, :2]
        d = esdf.sample(xy)
        # Explicit bounds test so "outside = free" does not depend on the provider's
        # `outside` value (a grid built with the default outside=0 would read as contact).
        fx = (xy[..., 0] - esdf.origin_x) / esdf.resolution
        fy = (xy[..., 1] - esdf.origin_y) / esdf.resolution
        out = (fx < 0.0) | (fx > esdf.width) | (fy < 0.0) | (fy > esdf.height)
        return np.where(out, np.inf, d)

    def _soft(self, d: np.ndarray, robot_radius: float) -> np.ndarray:
        pen = np.maximum(robot_radius + self.inflation_radius - d, 0.0) / self.inflation_radius
        return (pen ** self.power).sum(axis=1)

    def cost(self, data):
        # Unweighted view for callers that want the raw clearance term (tests, tuning).
        if data.esdf is None:
            return np.zeros(data.num_samples)
        return self._soft(self._distances(data), data.robot_radius)

    def score(self, data):
        k = data.num_samples
        if not self.enabled or data.esdf is None:
            return np.zeros(k)
        d = self._distances(data)
        collided = (d < data.robot_radius).any(axis=1)
        # NaN distances propagate into the cost on purpose: the optimizer reports 'failed'
        # rather than trusting a corrupt distance field.
        data.in_collision = collided
        return self.weight * self._soft(d, data.robot_radius) + self.collision_cost * collided
