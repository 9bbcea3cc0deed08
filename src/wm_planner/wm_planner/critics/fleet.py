"""FleetCritic: other robots' shared predicted trajectories as moving obstacles, time-aligned."""
from __future__ import annotations

import numpy as np

from .base import Critic


class FleetCritic(Critic):
    """Keep the footprint away from where each neighbour intends to be at the same time.

    For every horizon step t_k = k * dt (k = 1..H) each neighbour is at
    NeighbourPlan.positions_at(t_k); the gap between one of our footprint circles and the
    neighbour's disc is d - r_circle - r_neighbour. Per step and neighbour the smallest gap
    over our circles gives
      * (safety_margin - gap) / safety_margin, squared, when gap < safety_margin (soft), and
      * `overlap_cost` (unweighted) when gap < 0: the plans intersect.
    A soft cost, never `in_collision`: a neighbour's prediction is its intention, not a fact,
    and the LiDAR-based obstacle critic still sees the robot itself. Neighbours come from the
    fleet client in data.neighbours; without any the critic costs nothing.
    """

    name = "fleet"
    nmpc_form = ("sampler only: the neighbours' plans are not parameters of the "
                 "NLP")
    PARAMS = dict(Critic.PARAMS, weight=2.0, safety_margin=0.3, overlap_cost=500.0)

    def validate(self) -> None:
        if self.safety_margin <= 0.0 or self.overlap_cost < 0.0:
            raise ValueError("fleet: safety_margin > 0 and overlap_cost >= 0")

    def _gaps(self, data) -> np.ndarray:
        """(K, H, N) smallest gap between our footprint and each neighbour's disc."""
        neighbours = data.neighbours
        h = data.horizon
        t = np.arange(1, h + 1) * data.dt
        other = np.stack([n.positions_at(t) for n in neighbours])          # (N, H, 2)
        radii = np.array([n.radius for n in neighbours])                   # (N,)
        circles = data.footprint_circles                                   # (C, 3)
        centres = data.circle_centres                                      # (K, H, C, 2)
        cx, cy = centres[..., 0], centres[..., 1]
        # (K, H, C, N) centre distances -> gaps; smallest over our circles -> (K, H, N)
        dx = cx[..., None] - other[:, :, 0].T[None, :, None, :]
        dy = cy[..., None] - other[:, :, 1].T[None, :, None, :]
        return (np.hypot(dx, dy) - circles[:, 2][None, None, :, None]
                - radii[None, None, None, :]).min(axis=2)

    def _soft(self, gap: np.ndarray) -> np.ndarray:
        soft = np.maximum(self.safety_margin - gap, 0.0) / self.safety_margin
        return (soft ** 2).sum(axis=(1, 2))

    def cost(self, data):
        if not data.neighbours:
            return np.zeros(data.num_samples)
        return self._soft(self._gaps(data))

    def score(self, data):
        if not self.enabled or not data.neighbours:
            return np.zeros(data.num_samples)
        gap = self._gaps(data)
        # overlap_cost is unweighted (like obstacle's collision_cost): tuning `weight` must
        # not make driving through another robot's plan acceptable.
        overlap = (gap < 0.0).sum(axis=(1, 2))
        return self.weight * self._soft(gap) + self.overlap_cost * overlap
