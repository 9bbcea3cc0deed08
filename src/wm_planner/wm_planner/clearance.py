"""Clearance of the footprint polygon in a distance field, standing and turning on the spot:
what the turn on the spot and the recoveries check before they move (the MPC's collision
critic scores whole sampled trajectories itself: wm_planner.critic_data).

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from wm_common.footprint import Footprint
from wm_common.grid import Grid2D

# the yaw step at which a turn's footprint is checked [rad]: a 0.445 m corner moves 2.2 cm
TURN_STEP = 0.05


def point_clearance(field: Grid2D, x: float, y: float) -> float:
    """The distance field's value at (x, y): the centre of the circle a turn sweeps."""
    return float(field.sample(np.array([x, y]))[()])


def footprint_clearance(field: Optional[Grid2D], footprint: Footprint, x: float, y: float,
                        yaw: float) -> float:
    """The smallest distance-field value on the footprint's boundary at (x, y, yaw); +inf
    with no field (then nothing is known to be in the way; the safety gate still is)."""
    if field is None:
        return math.inf
    pts = footprint.boundary_at(np.array([x, y, yaw]))
    return float(np.min(field.sample(pts)))


def turn_clearance(field: Optional[Grid2D], footprint: Footprint, x: float, y: float,
                   yaw: float, angle: float) -> float:
    """The smallest clearance of the footprint polygon while it turns on the spot from yaw
    by `angle` (signed, radians), checked every TURN_STEP (the end pose included). A
    rectangle wedged between two obstacles often turns where the circle round its corners
    is not clear."""
    if field is None:
        return math.inf
    n = max(1, int(math.ceil(abs(angle) / TURN_STEP)))
    yaws = yaw + np.linspace(angle / n, angle, n)
    poses = np.stack([np.full(n, x), np.full(n, y), yaws], axis=1)
    pts = footprint.boundary_at(poses)                       # (n, P, 2)
    return float(np.min(field.sample(pts.reshape(-1, 2))))
