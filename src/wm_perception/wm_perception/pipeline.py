"""Sensor cloud -> odom-frame voxels and 2D signed distance field for the local planner.

Frames: the sensor is mounted level on the base (extrinsic x, y, z, yaw); the base moves in
the plane of odom with z = 0 on the floor, so base z and odom z are the same height above the
floor. The output window is a square aligned to the odom axes, centred on the robot and
snapped to a global lattice of `resolution` cells: successive windows share cell
boundaries, so the field does not shimmer as the robot moves by fractions of a cell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_perception.distance_field import signed_distance
from wm_perception.voxel_grid import VoxelGrid, crop_mask, occupancy_2d, voxelize


@dataclass(frozen=True)
class PerceptionConfig:
    resolution: float = 0.1
    size_xy: float = 16.0            # side of the square odom-aligned window, metres
    z_min: float = 0.05              # above the floor in base frame: drops the floor
    z_max: float = 1.8               # above this the robot passes underneath
    max_range: float = 15.0          # horizontal range from the sensor
    min_range: float = 0.35          # horizontal range from the sensor: the robot's own body
    min_points_per_voxel: int = 1
    max_distance: float = 3.0        # distance field saturation, metres
    max_points: int = 2_000_000
    frame_id: str = "odom"

    def validate(self) -> None:
        if not (self.resolution > 0.0 and self.size_xy >= 2 * self.resolution):
            raise ValueError("need resolution > 0 and a window of at least 2x2 cells")
        if not self.z_max > self.z_min:
            raise ValueError("z_max must exceed z_min")
        if not (0.0 <= self.min_range < self.max_range):
            raise ValueError("need 0 <= min_range < max_range")
        if not self.max_distance > 0.0:
            raise ValueError("max_distance must be positive")


@dataclass
class PerceptionOutput:
    voxels: VoxelGrid           # odom frame
    distance_field: Grid2D      # odom frame, outside = max_distance
    n_points_in: int
    n_points_used: int          # points that landed in a voxel of the window


class Perception:
    def __init__(self, config: PerceptionConfig = PerceptionConfig()):
        config.validate()
        self.config = config
        res = config.resolution
        n_xy = max(int(round(config.size_xy / res)), 2)
        n_z = max(int(math.ceil((config.z_max - config.z_min) / res - 1e-9)), 1)
        self._dims = np.array([n_xy, n_xy, n_z], dtype=np.int64)

    def window_origin(self, base_in_odom: Pose2D) -> np.ndarray:
        """(3,) odom corner of the window around the robot, on the global cell lattice."""
        res = self.config.resolution
        half = 0.5 * int(self._dims[0])
        ix = math.floor(base_in_odom.x / res - half + 0.5)
        iy = math.floor(base_in_odom.y / res - half + 0.5)
        return np.array([ix * res, iy * res, self.config.z_min], dtype=np.float64)

    def process(self, xyz_sensor: np.ndarray, sensor_in_base: Sequence[float],
                base_in_odom: Pose2D) -> PerceptionOutput:
        cfg = self.config
        pts = np.asarray(xyz_sensor)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError("xyz_sensor must be (N, 3), got %s" % (pts.shape,))
        if pts.shape[0] > cfg.max_points:
            raise ValueError("%d points > max_points %d" % (pts.shape[0], cfg.max_points))
        sx, sy, sz, syaw = (float(v) for v in sensor_in_base)

        # Sensor -> base and base -> odom folded into one planar rotation + translation, in
        # float64: odom coordinates grow large and float32 would lose centimetres.
        yaw = syaw + base_in_odom.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        cb, sb = math.cos(base_in_odom.yaw), math.sin(base_in_odom.yaw)
        tx = base_in_odom.x + cb * sx - sb * sy
        ty = base_in_odom.y + sb * sx + cb * sy
        px = pts[:, 0].astype(np.float64)
        py = pts[:, 1].astype(np.float64)
        odom = np.empty((pts.shape[0], 3), dtype=np.float64)
        odom[:, 0] = tx + c * px - s * py
        odom[:, 1] = ty + s * px + c * py
        odom[:, 2] = pts[:, 2] + sz

        # Range is rotation invariant, so crop with the sensor position expressed in odom.
        keep = crop_mask(odom, cfg.max_range, cfg.min_range, cfg.z_min, cfg.z_max,
                         (tx, ty))
        origin = self.window_origin(base_in_odom)
        grid = voxelize(odom[keep], origin, cfg.resolution, self._dims)
        occ = occupancy_2d(grid, cfg.min_points_per_voxel)
        sdf = signed_distance(occ, cfg.resolution, cfg.max_distance)
        field = Grid2D(origin[0], origin[1], cfg.resolution, sdf, outside=cfg.max_distance,
                       frame_id=cfg.frame_id)
        return PerceptionOutput(grid, field, int(pts.shape[0]), int(grid.values.sum()))
