"""Signed Euclidean distance fields over 2D occupancy grids."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def signed_distance(occ: np.ndarray, resolution: float, max_distance: float) -> np.ndarray:
    """(ny, nx) float32 metres to the nearest obstacle boundary; negative inside obstacles.

    Distances are measured to the cell *edge*, not its centre (half a cell less than the
    centre-to-centre EDT): an occupied cell is solid up to its edge, and the planner must
    not be told it has 5 cm it does not have. The sign therefore flips halfway between a
    free and an occupied cell centre, where bilinear sampling crosses zero. Values are
    clipped to [-max_distance, max_distance]; a grid with no obstacles is max_distance
    everywhere (the EDT of an all-background image is undefined).
    """
    occ = np.asarray(occ, dtype=bool)
    if occ.ndim != 2:
        raise ValueError("occupancy must be 2D")
    if not (resolution > 0.0 and max_distance > 0.0):
        raise ValueError("resolution and max_distance must be positive")
    if not occ.any():
        return np.full(occ.shape, max_distance, dtype=np.float32)
    if occ.all():
        return np.full(occ.shape, -max_distance, dtype=np.float32)
    half = 0.5 * resolution
    outside = ndimage.distance_transform_edt(~occ, sampling=resolution)
    inside = ndimage.distance_transform_edt(occ, sampling=resolution)
    # Exactly one of the two is non-zero in every cell.
    sdf = np.where(occ, half - inside, outside - half)
    return np.clip(sdf, -max_distance, max_distance).astype(np.float32)
