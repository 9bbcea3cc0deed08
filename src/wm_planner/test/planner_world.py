"""Synthetic worlds for the planner tests: occupancy -> signed distance windows."""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt

from wm_common.grid import Grid2D

RES = 0.1


def signed_distance(occupied: np.ndarray, res: float = RES) -> np.ndarray:
    """Metres from each cell centre to the nearest obstacle boundary; negative inside.

    EDT measures centre-to-centre; the obstacle's boundary is half a cell closer, so half
    a cell is taken off (conservative, as a real esdf provider should be).
    """
    if not occupied.any():
        return np.full(occupied.shape, 1e3, dtype=np.float64)
    outside = distance_transform_edt(~occupied) * res
    inside = distance_transform_edt(occupied) * res
    return np.where(occupied, -inside + 0.5 * res, outside - 0.5 * res)


class BoxWorld:
    """A big occupancy grid with axis-aligned boxes (xmin, xmax, ymin, ymax) in metres."""

    def __init__(self, boxes, xmin=-10.0, ymin=-10.0, size=(300, 300), res=RES):
        self.boxes = list(boxes)
        self.res = res
        self.xmin, self.ymin = xmin, ymin
        h, w = size
        xs = xmin + (np.arange(w) + 0.5) * res
        ys = ymin + (np.arange(h) + 0.5) * res
        occ = np.zeros((h, w), dtype=bool)
        for (x0, x1, y0, y1) in self.boxes:
            occ |= ((xs[None, :] >= x0) & (xs[None, :] <= x1)
                    & (ys[:, None] >= y0) & (ys[:, None] <= y1))
        self.occupied = occ

    def window(self, cx: float, cy: float, size_m: float = 16.0) -> Grid2D:
        """A size_m x size_m esdf window centred (to the cell) on (cx, cy), rebuilt from
        occupancy like the real provider does; beyond it is unknown = free."""
        n = int(round(size_m / self.res))
        ix0 = int(math.floor((cx - self.xmin) / self.res)) - n // 2
        iy0 = int(math.floor((cy - self.ymin) / self.res)) - n // 2
        h, w = self.occupied.shape
        occ = np.zeros((n, n), dtype=bool)
        sx0, sy0 = max(ix0, 0), max(iy0, 0)
        sx1, sy1 = min(ix0 + n, w), min(iy0 + n, h)
        if sx1 > sx0 and sy1 > sy0:
            occ[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = self.occupied[sy0:sy1, sx0:sx1]
        esdf = signed_distance(occ, self.res)
        max_d = float(esdf.max())
        return Grid2D(self.xmin + ix0 * self.res, self.ymin + iy0 * self.res, self.res,
                      esdf, outside=max_d, frame_id="odom")

    def true_clearance(self, x: float, y: float) -> float:
        """Exact distance from a point to the nearest box (negative inside one)."""
        best = math.inf
        for (x0, x1, y0, y1) in self.boxes:
            dx = max(x0 - x, 0.0, x - x1)
            dy = max(y0 - y, 0.0, y - y1)
            if dx == 0.0 and dy == 0.0:
                d = -min(x - x0, x1 - x, y - y0, y1 - y)
            else:
                d = math.hypot(dx, dy)
            best = min(best, d)
        return best


def step_unicycle(x, y, yaw, v, w, dt, substeps=10):
    """Integrate the real robot finer than the planner's model (exact-ish motion)."""
    h = dt / substeps
    for _ in range(substeps):
        x += v * math.cos(yaw + 0.5 * w * h) * h
        y += v * math.sin(yaw + 0.5 * w * h) * h
        yaw += w * h
    return x, y, yaw
