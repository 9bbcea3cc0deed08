"""A 2D metric grid (distance fields, cost-to-go maps, occupancy) with vectorised look-ups.

Row-major: data[iy, ix]; cell (0, 0) has its lower-left corner at (origin_x, origin_y) in
the grid's frame. Plain numpy, no rclpy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


class Grid2D:
    """A float grid over the plane with bilinear sampling.

    Points outside the grid read `outside` (for a distance field: unknown space is treated
    as free up to the grid's own maximum distance, which is what a local planner needs).
    """

    def __init__(self, origin_x: float, origin_y: float, resolution: float,
                 data: np.ndarray, outside: float = 0.0, frame_id: str = "",
                 unknown: Optional[np.ndarray] = None):
        if resolution <= 0.0 or not np.isfinite(resolution):
            raise ValueError("grid resolution must be a positive finite number")
        data = np.asarray(data, dtype=np.float32)
        if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 2:
            raise ValueError("grid data must be 2D with at least 2x2 cells")
        self.origin_x = float(origin_x)
        self.origin_y = float(origin_y)
        self.resolution = float(resolution)
        self.data = data
        self.outside = float(outside)
        self.frame_id = frame_id
        # (H, W) bool, True where no sensor has observed the cell (perception's observed
        # space); None: not tracked (everything counts as observed)
        if unknown is not None:
            unknown = np.asarray(unknown, dtype=bool)
            if unknown.shape != data.shape:
                raise ValueError("grid unknown mask %s does not match the data %s" % (
                    unknown.shape, data.shape))
        self.unknown: Optional[np.ndarray] = unknown

    @property
    def height(self) -> int:
        return self.data.shape[0]

    @property
    def width(self) -> int:
        return self.data.shape[1]

    def cell_centers(self):
        """(xs, ys) 1D arrays of cell-centre coordinates along x and y."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        return xs, ys

    def world_to_cell(self, xy: np.ndarray):
        """Integer (ix, iy) of the cells containing (..., 2) points, and an in-bounds mask."""
        xy = np.asarray(xy, dtype=np.float64)
        ix = np.floor((xy[..., 0] - self.origin_x) / self.resolution).astype(np.int64)
        iy = np.floor((xy[..., 1] - self.origin_y) / self.resolution).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        return ix, iy, inside

    def sample(self, xy: np.ndarray) -> np.ndarray:
        """Bilinear interpolation at (..., 2) points; `outside` beyond the grid."""
        xy = np.asarray(xy, dtype=np.float64)
        fx = (xy[..., 0] - self.origin_x) / self.resolution - 0.5
        fy = (xy[..., 1] - self.origin_y) / self.resolution - 0.5
        inside = (fx >= -0.5) & (fx <= self.width - 0.5) & (fy >= -0.5) & (fy <= self.height - 0.5)
        fx = np.clip(fx, 0.0, self.width - 1.0)
        fy = np.clip(fy, 0.0, self.height - 1.0)
        x0 = np.minimum(np.floor(fx).astype(np.int64), self.width - 2)
        y0 = np.minimum(np.floor(fy).astype(np.int64), self.height - 2)
        tx = fx - x0
        ty = fy - y0
        d = self.data
        v = ((1 - tx) * (1 - ty) * d[y0, x0] + tx * (1 - ty) * d[y0, x0 + 1]
             + (1 - tx) * ty * d[y0 + 1, x0] + tx * ty * d[y0 + 1, x0 + 1])
        return np.where(inside, v, self.outside)
