"""PredictedOccupancy: one learned forecast of the bird's-eye occupancy, as the critics read it.

Perception's scene encoder publishes where things will be 0.5 s and 1 s ahead as a
robot-aligned grid in odom (nav_msgs/OccupancyGrid in percent). This is the plain-numpy form
the planner uses: probabilities 0..1, the grid's pose in odom, and the time the forecast is
for relative to the state being planned from. No rclpy here; the node converts messages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PredictedOccupancy:
    """Occupancy probabilities (ny, nx) on a grid rotated by origin_yaw in odom.

    Cell (i, j) (column i, row j) covers [i, i+1) x [j, j+1) * resolution in the grid's own
    frame, whose origin is (origin_x, origin_y, origin_yaw) in odom: its centre in odom is
    origin ∘ ((i + 0.5) * res, (j + 0.5) * res). time_offset: seconds from the planned
    state's time to the time the forecast is for (negative: a forecast of the past).
    """

    time_offset: float
    probability: np.ndarray
    resolution: float
    origin_x: float
    origin_y: float
    origin_yaw: float

    def __post_init__(self) -> None:
        p = np.asarray(self.probability, dtype=np.float32)
        if p.ndim != 2 or p.size == 0:
            raise ValueError("predicted occupancy must be a non-empty 2D grid")
        if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
            raise ValueError("predicted occupancy probabilities must be in [0, 1]")
        if not (math.isfinite(self.resolution) and self.resolution > 0.0):
            raise ValueError("predicted occupancy resolution must be positive and finite")
        if not all(math.isfinite(v) for v in (self.time_offset, self.origin_x, self.origin_y,
                                              self.origin_yaw)):
            raise ValueError("predicted occupancy time offset and origin must be finite")
        object.__setattr__(self, "probability", p)

    @classmethod
    def from_percent(cls, values, width: int, height: int, resolution: float,
                     origin_x: float, origin_y: float, origin_yaw: float,
                     time_offset: float = 0.0) -> "PredictedOccupancy":
        """From OccupancyGrid data (row-major, percent 0..100, -1 unknown = 0); ValueError
        if the sizes disagree or a value is out of range."""
        data = np.asarray(values).astype(np.int16).ravel()
        if width <= 0 or height <= 0 or data.size != width * height:
            raise ValueError("occupancy data has %d values for %dx%d cells" % (
                data.size, width, height))
        if data.min() < -1 or data.max() > 100:
            raise ValueError("occupancy values outside -1..100")
        prob = np.maximum(data, 0).astype(np.float32).reshape(height, width) / 100.0
        return cls(float(time_offset), prob, float(resolution), float(origin_x),
                   float(origin_y), float(origin_yaw))

    @property
    def height(self) -> int:
        return int(self.probability.shape[0])

    @property
    def width(self) -> int:
        return int(self.probability.shape[1])

    def probability_at(self, xy: np.ndarray) -> np.ndarray:
        """Probability of the cell containing each (..., 2) odom point; 0 outside the grid."""
        xy = np.asarray(xy, dtype=np.float64)
        dx = xy[..., 0] - self.origin_x
        dy = xy[..., 1] - self.origin_y
        c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
        # Into the grid frame: R(-yaw) applied to the offset from the origin.
        fx = (c * dx + s * dy) / self.resolution
        fy = (-s * dx + c * dy) / self.resolution
        inside = (fx >= 0.0) & (fx < self.width) & (fy >= 0.0) & (fy < self.height)
        ix = np.clip(np.floor(np.where(inside, fx, 0.0)).astype(np.int64), 0, self.width - 1)
        iy = np.clip(np.floor(np.where(inside, fy, 0.0)).astype(np.int64), 0, self.height - 1)
        return np.where(inside, self.probability[iy, ix], 0.0)

    def cell_centres(self) -> np.ndarray:
        """(ny, nx, 2) odom coordinates of every cell's centre."""
        gx = (np.arange(self.width) + 0.5) * self.resolution
        gy = (np.arange(self.height) + 0.5) * self.resolution
        c, s = math.cos(self.origin_yaw), math.sin(self.origin_yaw)
        x = self.origin_x + c * gx[None, :] - s * gy[:, None]
        y = self.origin_y + s * gx[None, :] + c * gy[:, None]
        return np.stack([x, y], axis=-1)

    def without(self, cells: np.ndarray) -> "PredictedOccupancy":
        """The grid with probability 0 in the (ny, nx) boolean `cells`."""
        return PredictedOccupancy(self.time_offset, np.where(cells, 0.0, self.probability),
                                  self.resolution, self.origin_x, self.origin_y,
                                  self.origin_yaw)

    def dilated(self, radius: float) -> "PredictedOccupancy":
        """The grid where each cell holds the largest probability within `radius` of it, so
        a look-up at a circle's centre covers the whole circle. Cells count when their
        centres are within radius + half a cell (the cell's own extent); radius <= 0 gives
        the grid itself."""
        reach = (radius + 0.5 * self.resolution) / self.resolution
        n = int(math.floor(reach))
        if radius <= 0.0 or n < 1:
            return self
        p = self.probability
        out = p.copy()
        h, w = p.shape
        for dj in range(-n, n + 1):
            for di in range(-n, n + 1):
                if (di == 0 and dj == 0) or math.hypot(di, dj) > reach:
                    continue
                # out[j, i] = max(out[j, i], p[j + dj, i + di]) where both are in the grid
                dst = out[max(0, -dj):h - max(0, dj), max(0, -di):w - max(0, di)]
                src = p[max(0, dj):h - max(0, -dj), max(0, di):w - max(0, -di)]
                np.maximum(dst, src, out=dst)
        return PredictedOccupancy(self.time_offset, out, self.resolution, self.origin_x,
                                  self.origin_y, self.origin_yaw)
