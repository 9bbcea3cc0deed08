"""Ground-truth clearance checks for simulated runs (the closed-loop KPIs, from the physics
engine's contacts and ground truth, are computed in wm_eval.runner.kpis).

Everything here uses TRUE poses (from the dynamics), never the robot's own estimate: the
point is to score what physically happened.

Plain numpy, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations


import numpy as np

from wm_common.geometry import Pose2D
from .world import World


def clearance(world: World, pose: Pose2D, footprint_radius: float) -> float:
    """Gap (m) between a circular footprint and the nearest box; negative = penetration."""
    return float(world.signed_distance(np.array([pose.x, pose.y]))) - footprint_radius


def collision(world: World, pose: Pose2D, footprint_radius: float) -> bool:
    """True when the footprint circle at `pose` touches or overlaps any box."""
    return clearance(world, pose, footprint_radius) <= 0.0
