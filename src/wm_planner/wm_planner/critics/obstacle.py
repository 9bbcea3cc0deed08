"""ObstacleCritic: collisions and clearance from the signed distance field."""
from __future__ import annotations

import numpy as np

from .base import Critic
from .smooth import smooth_relu


class ObstacleCritic(Critic):
    """Clearance cost along every future trajectory point.

    clearance = the smallest distance-field value on the footprint polygon's boundary
    (data.polygon, Nav2's `footprint`; CriticData.polygon_clearance), or with a body given
    as circles, min over them of (esdf at the circle centre - its radius) (one circle of
    robot_radius by default).
    * clearance < 0 at any future point: the sample collides (unless the body already
      reads in contact where it stands and the sample gets it out: never deeper, less
      escape_tolerance, and clearer at the end). It costs the constant
      `collision_cost` (added unweighted, so tuning `weight` never weakens the hard
      constraint) and is flagged in data.in_collision.
    * clearance < inflation_radius: soft cost ((inflation_radius - clearance)
      / inflation_radius)^power per point, summed over the horizon and scaled by `weight`.
      It keeps growing past 1 in contact, so when every sample collides they are still
      ranked by how deep they go.
    Points outside the grid are free (the grid covers what the sensors know; unknown space
    inside it is the provider's job, which gives it the `outside` distance). The current
    pose (index 0) is excluded: it is the same for every sample and cannot be changed, and
    counting it would flag every sample, stop included, as soon as the robot is a hair
    inside its radius.

    Smooth form: the soft cost with a smoothed hinge over every footprint circle and
    future step. The collision itself is no cost there: the NMPC keeps clearance >=
    safety_margin as a constraint and checks its plan with `score`.
    """

    name = "obstacle"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=2.0, collision_cost=10000.0, inflation_radius=0.3,
                  power=2.0, escape_tolerance=0.01)

    def validate(self) -> None:
        if self.inflation_radius <= 0.0 or self.power <= 0.0 or self.collision_cost < 0.0:
            raise ValueError("obstacle: inflation_radius > 0, power > 0, collision_cost >= 0")

    def _clearance(self, data) -> np.ndarray:
        """(K, H) smallest gap between the footprint circles and the nearest obstacle along
        each future point: esdf at each circle centre minus its radius (negative = contact).
        A rectangular robot is covered by a few circles along its length, so it can pass a
        gap narrower than its circumscribed circle."""
        if data.polygon is not None:
            return data.polygon_clearance(data.esdf, self.inflation_radius)
        # Circle centres and the interpolation are computed once per batch (CriticData).
        d, inside = data.sample_footprint(data.esdf)
        radii = data.footprint_circles[:, 2]
        # Explicit bounds mask so "outside = free" does not depend on the provider's
        # `outside` value (a grid built with the default outside=0 would read as contact).
        if d.shape[-1] == 1:  # one circle: no (K, H, 1) temporaries
            return np.where(inside[..., 0], d[..., 0] - radii[0], np.inf)
        return np.where(inside, d - radii, np.inf).min(axis=-1)

    def _current_clearance(self, data) -> float:
        """The clearance of the body where it stands (trajectory index 0)."""
        pose = data.trajectories[0, 0, :]
        if data.polygon is not None:
            pts = data.polygon.boundary_at(pose)
            return float(np.min(data.esdf.sample(pts)))
        c = data.footprint_circles
        cs, sn = np.cos(pose[2]), np.sin(pose[2])
        centres = np.stack([pose[0] + cs * c[:, 0] - sn * c[:, 1],
                            pose[1] + sn * c[:, 0] + cs * c[:, 1]], axis=1)
        return float(np.min(data.esdf.sample(centres) - c[:, 2]))

    def _soft(self, clearance: np.ndarray) -> np.ndarray:
        pen = np.maximum(self.inflation_radius - clearance, 0.0) / self.inflation_radius
        return (pen ** self.power).sum(axis=1)

    def cost(self, data):
        # Unweighted view for callers that want the raw clearance term (tests, tuning).
        if data.esdf is None:
            return np.zeros(data.num_samples)
        return self._soft(self._clearance(data))

    def score(self, data):
        k = data.num_samples
        if not self.enabled or data.esdf is None:
            return np.zeros(k)
        clearance = self._clearance(data)
        collided = (clearance < 0.0).any(axis=1)
        # A robot whose (padded) body already reads in contact (it was pushed, the field
        # moved under it) may still take a sample that gets it out: never deeper than where
        # it stands (less escape_tolerance) and clearer at the end. Otherwise every sample,
        # the stop included, collides and the robot can never leave.
        c0 = self._current_clearance(data)
        if c0 < 0.0:
            tol = self.escape_tolerance
            escaping = (clearance.min(axis=1) >= c0 - tol) & (clearance[:, -1] > c0 + tol)
            collided &= ~escaping
        # NaN distances propagate into the cost on purpose: the optimizer reports 'failed'
        # rather than trusting a corrupt distance field.
        data.in_collision = collided
        return self.weight * self._soft(clearance) + self.collision_cost * collided

    def smooth_cost(self, nlp):
        r = self.inflation_radius
        total = 0
        for clearance in nlp.clearances:
            total += smooth_relu((r - clearance) / r) ** self.power
        return total
