"""How the local planner treats space no sensor has observed.

Perception's distance field reads "free" in a cell nobody has seen (behind a rack, under a
covered window, beyond range); its `unknown` mask (wm_perception.observed) tells those cells
apart. Within `radius` of the robot, never-observed cells are taken as obstacles for the
MPC: the robot does not drive into space it has not seen within its stopping distance.
Beyond it they stay free, so the plan may still look past a corner it has not turned yet.
The route (global planner) keeps the plain field: its live layer is about obstacles.

Plain numpy (no rclpy).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy.ndimage import distance_transform_edt

from wm_common.grid import Grid2D


def unknown_as_obstacles(field: Grid2D, xy: Tuple[float, float], radius: float) -> Grid2D:
    """The field with its never-observed cells within `radius` of xy counted as obstacles
    (a new Grid2D; the same one when there are none, or radius <= 0, or no mask)."""
    unknown = getattr(field, "unknown", None)
    if unknown is None or radius <= 0.0 or not unknown.any():
        return field
    xs, ys = field.cell_centers()
    near = (xs[None, :] - xy[0]) ** 2 + (ys[:, None] - xy[1]) ** 2 <= radius * radius
    block = unknown & near
    if not block.any():
        return field
    # metres to the nearest blocked cell's edge (as perception's field measures), negative
    # inside; saturated like the field
    res = field.resolution
    d = distance_transform_edt(~block) * res - 0.5 * res
    d[block] = -0.5 * res
    d = np.minimum(d, field.outside).astype(np.float32)
    return Grid2D(field.origin_x, field.origin_y, field.resolution,
                  np.minimum(field.data, d), outside=field.outside, frame_id=field.frame_id,
                  unknown=unknown)
