"""Accumulation of voxel point counts over a few scans, with decay, in the odom frame.

A 16-beam LiDAR leaves gaps between its rings and a noisy one sprinkles single-point voxels;
summing a few scans fills the first and, with min_points_per_voxel > 1, suppresses the
second. Counts live on the global odom lattice (the window origin is snapped to it, see
pipeline.Perception.window_origin), keyed by global cell coordinates, so they survive the
robot-centred window moving; each new scan multiplies the old counts by `decay`, adds its own,
and drops voxels whose count fell below `min_count` or that no scan has hit for `max_scans`
scans. Moving obstacles therefore leave a trail of at most max_scans - 1 scans of decaying
evidence; keep max_scans small (2-5).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from wm_perception.voxel_grid import VoxelGrid

_BITS = 21                 # per horizontal axis: +-2**20 cells (+-104 km at 0.1 m)
_HALF = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


class VoxelAccumulator:
    def __init__(self, decay: float = 0.7, max_scans: int = 3, min_count: float = 0.1):
        if not 0.0 < decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")
        if int(max_scans) < 1:
            raise ValueError("max_scans must be >= 1")
        if not min_count >= 0.0:
            raise ValueError("min_count must be >= 0")
        self.decay = float(decay)
        self.max_scans = int(max_scans)
        self.min_count = float(min_count)
        self.reset()

    def reset(self) -> None:
        """Forget everything (odometry reset, relocalisation, a changed grid)."""
        self._keys = np.zeros(0, np.int64)     # sorted global keys
        self._counts = np.zeros(0, np.float32)
        self._last = np.zeros(0, np.int64)     # scan number that last hit the voxel
        self._scan = 0
        self._lattice: Optional[tuple] = None  # (resolution, z origin, nz)

    @property
    def n_voxels(self) -> int:
        return int(self._keys.shape[0])

    def _cell_offset(self, grid: VoxelGrid) -> np.ndarray:
        off = np.round(np.asarray(grid.origin[:2], dtype=np.float64) / grid.resolution)
        if (np.abs(off + grid.dims[:2]) >= _HALF).any() or (np.abs(off) >= _HALF).any():
            raise ValueError("window too far from the odom origin for the accumulator")
        return off.astype(np.int64)

    def _global_keys(self, grid: VoxelGrid, off: np.ndarray) -> np.ndarray:
        ijk = grid.ijk()
        gx = ijk[:, 0] + (off[0] + _HALF)
        gy = ijk[:, 1] + (off[1] + _HALF)
        # z major, then y, then x: the same order as the grid's linear index, so the keys
        # of one grid come out sorted.
        return (ijk[:, 2] << (2 * _BITS)) | (gy << _BITS) | gx

    def add(self, grid: VoxelGrid) -> VoxelGrid:
        """Fold one scan's grid in; return the accumulated counts inside `grid`'s window
        (same origin, resolution and dims as `grid`)."""
        lattice = (float(grid.resolution), float(grid.origin[2]), int(grid.dims[2]))
        if self._lattice is not None and self._lattice != lattice:
            self.reset()
        self._lattice = lattice
        self._scan += 1
        off = self._cell_offset(grid)
        new_keys = self._global_keys(grid, off)
        order = np.argsort(new_keys, kind="stable")  # already sorted; cheap insurance
        new_keys = new_keys[order]
        new_counts = grid.values[order].astype(np.float32)

        counts = self._counts * np.float32(self.decay)
        keys, last = self._keys, self._last
        if keys.size:
            pos = np.searchsorted(keys, new_keys)
            hit = pos < keys.size
            hit[hit] = keys[pos[hit]] == new_keys[hit]
            counts[pos[hit]] += new_counts[hit]
            last = last.copy()
            last[pos[hit]] = self._scan
            miss = ~hit
            keys = np.insert(keys, pos[miss], new_keys[miss])
            counts = np.insert(counts, pos[miss], new_counts[miss])
            last = np.insert(last, pos[miss], self._scan)
        else:
            keys, counts = new_keys, new_counts
            last = np.full(keys.shape[0], self._scan, np.int64)
        keep = (counts >= self.min_count) & (self._scan - last < self.max_scans)
        self._keys, self._counts, self._last = keys[keep], counts[keep], last[keep]
        return self.window(grid.origin, grid.resolution, grid.dims)

    def window(self, origin, resolution: float, dims) -> VoxelGrid:
        """The accumulated voxels inside a window on the same lattice, as a VoxelGrid."""
        o = np.asarray(origin, dtype=np.float64).reshape(3)
        d = np.asarray(dims, dtype=np.int64).reshape(3)
        empty = VoxelGrid(o, float(resolution), d)
        if not self._keys.size:
            return empty
        off = np.round(o[:2] / resolution).astype(np.int64)
        k = self._keys
        ix = (k & _MASK) - _HALF - off[0]
        iy = ((k >> _BITS) & _MASK) - _HALF - off[1]
        iz = k >> (2 * _BITS)
        inside = (ix >= 0) & (ix < d[0]) & (iy >= 0) & (iy < d[1]) & (iz < d[2])
        lin = ix[inside] + d[0] * (iy[inside] + d[1] * iz[inside])
        vals = self._counts[inside]
        order = np.argsort(lin, kind="stable")
        return VoxelGrid(o, float(resolution), d, lin[order].astype(np.uint32),
                         vals[order].astype(np.float32))
