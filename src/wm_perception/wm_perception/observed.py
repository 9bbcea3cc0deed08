"""Observed space: which cells of perception's window some LiDAR ray has passed through or
ended in, so a cell nobody has seen is told from one seen free.

A distance field alone says "no obstacle here" both for a cell the sensor saw empty and for
one it never saw (behind a rack, beyond range, under a covered window, before the first
scan). Like Nav2's voxel layer, this clears along the rays of real returns, in the bird's-eye
plane: per azimuth bin of a cloud, the ray from the sensor runs to the nearest return in the
obstacle height band, or, where the bin has none, to its farthest return (the floor seen far
away: everything between was looked through), capped at max_range. Cells on those rays are
observed; the rest stay as they were. The memory rolls with the window (lattice-aligned, like
the field): what was seen stays seen while it is in the window.

Plain numpy (no rclpy).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

RAY_BINS = 720        # azimuth bins per cloud (0.5 deg: rays 7 cm apart 8 m out)


def ray_reach(xyz_sensor: np.ndarray, obstacle: np.ndarray, max_range: float,
              bins: int = RAY_BINS) -> np.ndarray:
    """(bins,) horizontal reach of the rays of one cloud, in the sensor frame: per azimuth
    bin the nearest return flagged `obstacle`, else the farthest return, capped at
    max_range; 0 where the bin has no return. Bin k looks along -pi + (k + 0.5) 2 pi / bins."""
    pts = np.asarray(xyz_sensor)
    reach = np.zeros(bins)
    if pts.shape[0] == 0:
        return reach
    x = pts[:, 0].astype(np.float64)
    y = pts[:, 1].astype(np.float64)
    r = np.minimum(np.hypot(x, y), max_range)
    b = ((np.arctan2(y, x) + math.pi) * (bins / (2.0 * math.pi))).astype(np.int64)
    np.clip(b, 0, bins - 1, out=b)
    np.maximum.at(reach, b, r)                       # farthest return per bin
    obs = np.asarray(obstacle, dtype=bool)
    if obs.any():
        near = np.full(bins, np.inf)
        np.minimum.at(near, b[obs], r[obs])          # nearest obstacle return per bin
        reach = np.where(np.isfinite(near), near, reach)
    return reach


class ObservedWindow:
    """The observed cells of a (ny, nx) window on the global lattice of `resolution`."""

    def __init__(self, resolution: float, nx: int, ny: int):
        self.resolution = float(resolution)
        self.seen = np.zeros((ny, nx), dtype=bool)
        self.corner: Optional[Tuple[int, int]] = None   # lattice index of cell (0, 0)

    def move_to(self, origin_x: float, origin_y: float) -> None:
        """Roll the memory to a window whose cell (0, 0) corner is at (origin_x, origin_y)
        (on the lattice): cells that left are forgotten, new ones are unseen."""
        ix = int(round(origin_x / self.resolution))
        iy = int(round(origin_y / self.resolution))
        if self.corner is None:
            self.corner = (ix, iy)
            return
        dx, dy = ix - self.corner[0], iy - self.corner[1]
        if dx == 0 and dy == 0:
            return
        ny, nx = self.seen.shape
        out = np.zeros_like(self.seen)
        if abs(dx) < nx and abs(dy) < ny:
            src = self.seen[max(dy, 0):ny + min(dy, 0), max(dx, 0):nx + min(dx, 0)]
            out[max(-dy, 0):ny + min(-dy, 0), max(-dx, 0):nx + min(-dx, 0)] = src
        self.seen = out
        self.corner = (ix, iy)

    def clear_rays(self, sensor_xy: Sequence[float], sensor_yaw: float,
                   reach: np.ndarray) -> None:
        """Mark the cells along each ray from the sensor (odom x, y, its yaw in odom) out to
        its reach (ray_reach's bins) as observed."""
        if self.corner is None:
            raise ValueError("move_to the window first")
        reach = np.asarray(reach, dtype=np.float64)
        bins = reach.shape[0]
        step = 0.5 * self.resolution
        n = int(math.ceil(float(reach.max(initial=0.0)) / step)) + 1
        if n <= 1:
            return
        az = sensor_yaw - math.pi + (np.arange(bins) + 0.5) * (2.0 * math.pi / bins)
        s = np.arange(n) * step                                   # (n,)
        use = s[None, :] <= reach[:, None]                        # (bins, n)
        d = np.broadcast_to(s[None, :], use.shape)[use]
        a = np.broadcast_to(az[:, None], use.shape)[use]
        x0 = self.corner[0] * self.resolution
        y0 = self.corner[1] * self.resolution
        ix = np.floor((sensor_xy[0] + d * np.cos(a) - x0) / self.resolution).astype(np.int64)
        iy = np.floor((sensor_xy[1] + d * np.sin(a) - y0) / self.resolution).astype(np.int64)
        ny, nx = self.seen.shape
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        self.seen[iy[ok], ix[ok]] = True

    def mark(self, xy: np.ndarray) -> None:
        """Mark the cells holding these odom points (returns) as observed."""
        if self.corner is None or len(xy) == 0:
            return
        ix = np.floor(xy[:, 0] / self.resolution).astype(np.int64) - self.corner[0]
        iy = np.floor(xy[:, 1] / self.resolution).astype(np.int64) - self.corner[1]
        ny, nx = self.seen.shape
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        self.seen[iy[ok], ix[ok]] = True
