"""Sparse voxel grids over a fixed box: cropping, voxelisation with counts, 2D occupancy.

A grid is a box of dims (nx, ny, nz) cubes of side `resolution` whose corner is `origin`.
Only occupied voxels are stored, as linear indices ix + nx * (iy + ny * iz) (uint32, sorted)
with their point counts, which is what a node publishes and what occupancy needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Tuple

import numpy as np

# Above this many voxels per point a dense bincount costs more than sorting the points.
_BINCOUNT_MAX_RATIO = 8
_MAX_VOXELS = 2 ** 32 - 1


@dataclass(frozen=True)
class VoxelGridSpec:
    resolution: float = 0.1
    size_x: float = 16.0
    size_y: float = 16.0
    size_z: float = 2.0
    origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def dims(self) -> np.ndarray:
        # round, not ceil: 16.0 / 0.1 is 160.00000000000003 in floating point.
        sizes = np.array([self.size_x, self.size_y, self.size_z], dtype=np.float64)
        return np.maximum(np.round(sizes / self.resolution), 1).astype(np.int64)


@dataclass
class VoxelGrid:
    origin: np.ndarray       # (3,) float64, corner of voxel (0, 0, 0)
    resolution: float
    dims: np.ndarray         # (3,) int64 (nx, ny, nz)
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # (M,) uint32
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # (M,) float32

    @property
    def n_voxels(self) -> int:
        return int(self.indices.shape[0])

    def ijk(self) -> np.ndarray:
        """(M, 3) int64 voxel coordinates of the stored voxels."""
        nx, ny = int(self.dims[0]), int(self.dims[1])
        lin = self.indices.astype(np.int64)
        return np.stack([lin % nx, (lin // nx) % ny, lin // (nx * ny)], axis=1)

    def centers(self) -> np.ndarray:
        """(M, 3) float64 centres of the stored voxels, in the grid's frame."""
        return self.origin + (self.ijk() + 0.5) * self.resolution


def crop_mask(points: np.ndarray, max_range: float, min_range: float, z_min: float,
              z_max: float, origin_xy: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Mask of points with min_range <= xy-distance from origin_xy <= max_range and
    z_min <= z <= z_max. Horizontal range, because a tall shelf near the sensor is as much
    an obstacle at its top as at its foot."""
    p = np.asarray(points)
    dx = p[:, 0] - origin_xy[0]
    dy = p[:, 1] - origin_xy[1]
    r2 = dx * dx + dy * dy
    z = p[:, 2]
    return ((r2 >= min_range * min_range) & (r2 <= max_range * max_range)
            & (z >= z_min) & (z <= z_max))


def crop(points: np.ndarray, max_range: float, min_range: float, z_min: float, z_max: float,
         origin_xy: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Points (base frame) inside the range ring around origin_xy (the sensor) and the z
    band: z_min drops the floor, min_range the robot's own body, z_max what we drive under."""
    p = np.asarray(points)
    return p[crop_mask(p, max_range, min_range, z_min, z_max, origin_xy)]


def voxel_indices(points: np.ndarray, origin: Sequence[float], resolution: float,
                  dims: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(linear int64 index per in-bounds point, in-bounds mask) for (N, 3) points."""
    p = np.asarray(points)
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(dims, dtype=np.int64)
    # Column by column with elementwise &: reductions over a length-3 axis are slow in
    # numpy. The linear index is assembled in float64, exact for anything below 2**53.
    inside = np.ones(p.shape[0], dtype=bool)
    cells = []
    with np.errstate(invalid="ignore"):  # NaN points just fall outside
        for k in range(3):
            # dtype pinned: numpy < 2 would compute float32 input in float32 and lose
            # centimetres at odom coordinates of a few hundred metres.
            c = np.floor(np.subtract(p[:, k], o[k], dtype=np.float64) / resolution)
            inside &= c >= 0
            inside &= c < d[k]
            cells.append(c)
    lin = cells[0] + float(d[0]) * (cells[1] + float(d[1]) * cells[2])
    return lin[inside].astype(np.int64), inside


def voxelize(points: np.ndarray, origin: Sequence[float], resolution: float,
             dims: Sequence[int]) -> VoxelGrid:
    """Count points per voxel; points outside the box (or non-finite) are ignored."""
    if not resolution > 0.0:
        raise ValueError("resolution must be positive")
    d = np.asarray(dims, dtype=np.int64).reshape(3)
    if (d < 1).any() or int(np.prod(d)) > _MAX_VOXELS:
        raise ValueError("dims %s must be positive with at most 2**32-1 voxels" % (d,))
    o = np.asarray(origin, dtype=np.float64).reshape(3)
    lin, _ = voxel_indices(np.asarray(points).reshape(-1, 3), o, resolution, d)
    total = int(np.prod(d))
    if lin.size and total <= _BINCOUNT_MAX_RATIO * lin.size:
        counts = np.bincount(lin, minlength=total)
        idx = np.flatnonzero(counts)
        cnt = counts[idx]
    else:
        idx, cnt = np.unique(lin, return_counts=True)
    return VoxelGrid(o, float(resolution), d, idx.astype(np.uint32), cnt.astype(np.float32))


def occupancy_2d(grid: VoxelGrid, min_points: int = 1) -> np.ndarray:
    """(ny, nx) bool: a column is occupied if any voxel in it holds >= min_points points."""
    nx, ny = int(grid.dims[0]), int(grid.dims[1])
    occ = np.zeros((ny, nx), dtype=bool)
    lin = grid.indices[grid.values >= min_points].astype(np.int64)
    occ[(lin // nx) % ny, lin % nx] = True
    return occ
