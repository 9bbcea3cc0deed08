"""PathFollowCritic: stay on the global route and make progress along it."""
from __future__ import annotations

import numpy as np

from wm_common.geometry import densify
from .base import Critic, time_weights


class PathFollowCritic(Critic):
    """Offset from, and progress along, the global route in the odom frame.

    The route comes in data.route ((N, 2), transformed from the map frame by the node).

    Per future trajectory point, with the route densified to `spacing`:
      * offset: the distance to the route polyline;
      * remaining: the route's length left after the point's projection onto it (so the
        route's end, where the goal is, costs 0 and overshooting it gains nothing).
    cost = offset_weight * sum_t w_t offset_t + progress_weight * sum_t w_t remaining_t,
    with time weights w_t growing toward the end of the horizon (`time_power`), as in the
    goal critic: the end point says how far along the route the sample gets, the earlier
    points favour getting there sooner. Both terms are metres, so progress_weight 1 trades
    a metre of progress for a metre of offset.

    Only the stretch of the route from `window_behind` metres behind the robot's nearest
    route point to `window_ahead` beyond the farthest sampled point is searched, so a
    route that doubles back on the other side of a shelf cannot capture the samples, and
    the cost is O(K H x window) rather than x route length. No route (None or empty):
    zeros. The densified route is cached per route object (identity), so pass the same
    array to every iteration of a plan.
    """

    name = "path_follow"
    nmpc_form = ("sampler only: the route's points are not parameters of the "
                 "NLP (its cost-to-go, seeded along the route, is)")
    PARAMS = dict(Critic.PARAMS, weight=4.0, offset_weight=1.0, progress_weight=1.0,
                  time_power=1.0, spacing=0.1, window_behind=0.5, window_ahead=1.0)

    def __init__(self, **params):
        super().__init__(**params)
        self._route_ref = None
        self._dense = np.zeros((0, 2))
        self._arc = np.zeros(0)

    def validate(self) -> None:
        if (self.offset_weight < 0.0 or self.progress_weight < 0.0 or self.time_power < 0.0
                or not self.spacing > 0.0 or self.window_behind < 0.0
                or self.window_ahead < 0.0):
            raise ValueError("path_follow: weights, time_power, windows >= 0 and "
                             "spacing > 0 required")

    def _densified(self, route):
        """(M, 2) points at most `spacing` apart and their arc lengths, cached."""
        if route is not self._route_ref:
            dense = densify(np.asarray(route, dtype=np.float64).reshape(-1, 2), self.spacing)
            if dense.shape[0] == 1:
                dense = np.vstack([dense, dense])
            seg = np.hypot(*np.diff(dense, axis=0).T)
            self._dense = dense
            self._arc = np.concatenate([[0.0], np.cumsum(seg)])
            self._route_ref = route
        return self._dense, self._arc

    def cost(self, data):
        route = data.route
        k = data.num_samples
        if route is None or len(route) == 0:
            return np.zeros(k)
        dense, arc = self._densified(route)
        xy = data.trajectories[:, 1:, :2]                                  # (K, H, 2)
        robot = np.array([data.state.x, data.state.y])
        s0 = arc[int(np.argmin(np.hypot(*(dense - robot).T)))]
        reach = float(np.hypot(*(xy - robot).reshape(-1, 2).T).max())
        lo = int(np.searchsorted(arc, s0 - self.window_behind, side="left"))
        hi = int(np.searchsorted(arc, s0 + reach + self.window_ahead, side="right"))
        lo = max(min(lo, len(arc) - 2), 0)
        hi = min(max(hi, lo + 2), len(arc))
        # Nearest window vertex per point (vertices are at most `spacing` apart), then the
        # exact projection onto the two segments either side of it. Only the vertex search
        # is O(K H M): |p - v|^2 - |p|^2 = [p, 1] . [-2 v, |v|^2], one float32 matrix
        # product (relative to the robot, so float32 keeps millimetres) and an argmin; the
        # float64 broadcast of the squared distances took 10x longer at K = 512.
        n_pts = xy.shape[0] * xy.shape[1]
        p_aug = np.ones((n_pts, 3), dtype=np.float32)
        p_aug[:, :2] = (xy - robot).reshape(-1, 2)
        v = dense[lo:hi] - robot
        v_aug = np.empty((3, hi - lo), dtype=np.float32)
        v_aug[:2] = -2.0 * v.T
        v_aug[2] = (v * v).sum(axis=1)
        m = lo + np.argmin(p_aug @ v_aug, axis=1).reshape(xy.shape[:2])    # (K, H)
        offset = np.full(m.shape, np.inf)
        s = np.zeros(m.shape)
        for a_idx in (np.maximum(m - 1, lo), np.minimum(m, hi - 2)):
            a, b = dense[a_idx], dense[a_idx + 1]
            ab = b - a
            len2 = ab[..., 0] ** 2 + ab[..., 1] ** 2
            rel = xy - a
            t = (rel[..., 0] * ab[..., 0] + rel[..., 1] * ab[..., 1]) \
                / np.where(len2 > 0.0, len2, 1.0)
            t = np.clip(t, 0.0, 1.0)
            d = np.hypot(rel[..., 0] - t * ab[..., 0], rel[..., 1] - t * ab[..., 1])
            closer = d < offset
            offset = np.where(closer, d, offset)
            s = np.where(closer, arc[a_idx] + t * np.sqrt(len2), s)
        remaining = arc[-1] - s
        w = time_weights(xy.shape[1], self.time_power)
        return self.offset_weight * (offset @ w) + self.progress_weight * (remaining @ w)
