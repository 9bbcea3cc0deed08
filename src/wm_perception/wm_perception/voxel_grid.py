"""Sparse voxel grids over a fixed box: cropping, voxelisation with counts, 2D occupancy.

A grid is a box of dims (nx, ny, nz) cubes of side `resolution` whose corner is `origin`.
Only occupied voxels are stored, as linear indices ix + nx * (iy + ny * iz) (uint32, sorted)
with their point counts, which is what a node publishes and what occupancy needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Tuple

import numpy as np

# Above this many voxels per point a dense bincount (zeroing and scanning the index space,
# ~0.5 ns a voxel) costs more than sorting the points (~30 ns a point); above
# _DENSE_MAX_VOXELS its int64 counts would take too much memory (64 MiB).
_BINCOUNT_MAX_RATIO = 64
_DENSE_MAX_VOXELS = 2 ** 23
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
    d = np.asarray(dims, dtype=np.int64).reshape(3)
    lin, inside = _linear_or_sentinel(p, np.asarray(origin, dtype=np.float64).reshape(3),
                                      resolution, d, 0)
    return lin[inside].astype(np.int64), inside


def _linear_or_sentinel(p: np.ndarray, o: np.ndarray, resolution: float, d: np.ndarray,
                        sentinel: int) -> Tuple[np.ndarray, np.ndarray]:
    """(linear index per point as an integer array, with `sentinel` for points outside the
    box or non-finite; in-bounds mask).

    Cell k of a point is floor((p_k - origin_k) * (1 / resolution)), computed in float64
    (numpy < 2 would compute float32 input in float32 and lose centimetres at odom coordinates
    of a few hundred metres; the multiplication is 4x cheaper than a division and differs
    from it only for points within an ulp of a voxel face); a point is inside iff
    0 <= cell_k < dims_k for every axis, so a point exactly on the upper face of the box is
    outside (half-open, as spconv; open3d keeps points outside its bounds).
    Column by column into one scratch buffer with elementwise ops and out=: numpy's
    broadcasting over a length-3 axis and strided (N, 3) -> (3, N) copies are several times
    slower, so (N, 3) input in Fortran order (contiguous columns) is read fastest. The
    linear index is assembled in float64 (exact below 2**53) and only cast to
    an integer once the out-of-box values are replaced, because casting NaN or out-of-range
    floats to integers is undefined (x86 and ARM differ).
    """
    n = p.shape[0]
    cell = np.empty(n, dtype=np.float64)
    lin = np.empty(n, dtype=np.float64)
    inside = np.ones(n, dtype=bool)
    scratch = np.empty(n, dtype=bool)
    inv = 1.0 / resolution
    with np.errstate(invalid="ignore"):  # NaN points just fall outside
        for k in (2, 1, 0):  # Horner: lin = ((iz * ny) + iy) * nx + ix
            np.subtract(p[:, k], o[k], out=cell, dtype=np.float64)
            np.multiply(cell, inv, out=cell)
            inside &= np.greater_equal(cell, 0.0, out=scratch)
            inside &= np.less(cell, float(d[k]), out=scratch)
            np.floor(cell, out=cell)
            if k == 2:
                lin, cell = cell, lin
            else:
                lin *= float(d[k])
                lin += cell
    np.logical_not(inside, out=scratch)
    np.copyto(lin, float(sentinel), where=scratch)
    itype = np.int32 if sentinel < 2 ** 31 - 1 and int(np.prod(d)) < 2 ** 31 else np.int64
    return lin.astype(itype), inside


def voxelize(points: np.ndarray, origin: Sequence[float], resolution: float,
             dims: Sequence[int]) -> VoxelGrid:
    """Count points per voxel; points outside the box (or non-finite) are ignored.

    The box is half-open: voxel (i, j, k) holds origin + [i, i+1) * resolution etc., and a
    point is in the box iff every cell index is in [0, dims). Counting is a bincount over the
    dense index space (plus one overflow bin for outside points) when that space is not much
    larger than the cloud, else a sort (np.unique).
    """
    if not resolution > 0.0:
        raise ValueError("resolution must be positive")
    d = np.asarray(dims, dtype=np.int64).reshape(3)
    if (d < 1).any() or int(np.prod(d)) > _MAX_VOXELS:
        raise ValueError("dims %s must be positive with at most 2**32-1 voxels" % (d,))
    o = np.asarray(origin, dtype=np.float64).reshape(3)
    p = np.asarray(points).reshape(-1, 3)
    total = int(np.prod(d))
    if p.shape[0] == 0:
        return VoxelGrid(o, float(resolution), d)
    lin, inside = _linear_or_sentinel(p, o, float(resolution), d, total)
    if total <= _DENSE_MAX_VOXELS and total <= _BINCOUNT_MAX_RATIO * p.shape[0]:
        counts = np.bincount(lin, minlength=total + 1)[:total]
        # flatnonzero on a bool array is several times faster than on int64.
        idx = np.flatnonzero(counts != 0)
        cnt = counts[idx]
    else:
        idx, cnt = np.unique(lin[inside], return_counts=True)
    return VoxelGrid(o, float(resolution), d, idx.astype(np.uint32), cnt.astype(np.float32))


def occupancy_2d(grid: VoxelGrid, min_points: int = 1) -> np.ndarray:
    """(ny, nx) bool: a column is occupied if any voxel in it holds >= min_points points."""
    nx, ny = int(grid.dims[0]), int(grid.dims[1])
    occ = np.zeros((ny, nx), dtype=bool)
    lin = grid.indices[grid.values >= min_points].astype(np.int64)
    occ[(lin // nx) % ny, lin % nx] = True
    return occ
