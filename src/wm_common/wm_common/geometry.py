"""SE(2) helpers in the robot's vocabulary: poses are (x, y, yaw) in metres and radians.

Plain numpy, no rclpy, Python 3.8 / numpy 1.21 compatible.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence, Tuple

import numpy as np


class Pose2D(NamedTuple):
    x: float
    y: float
    yaw: float


def wrap_angle(a):
    """Wrap an angle (scalar or array) to [-pi, pi)."""
    return (np.asarray(a) + math.pi) % (2.0 * math.pi) - math.pi


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw of a quaternion (rotation about +z), robust to non-unit input."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> Tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by yaw about +z."""
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def compose(a: Pose2D, b: Pose2D) -> Pose2D:
    """a ∘ b: b expressed in a's parent frame (T_parent_child = T_parent_a * T_a_child)."""
    c, s = math.cos(a.yaw), math.sin(a.yaw)
    return Pose2D(a.x + c * b.x - s * b.y, a.y + s * b.x + c * b.y,
                  float(wrap_angle(a.yaw + b.yaw)))


def inverse(a: Pose2D) -> Pose2D:
    """Inverse transform: if a is T_parent_child, returns T_child_parent."""
    c, s = math.cos(a.yaw), math.sin(a.yaw)
    return Pose2D(-c * a.x - s * a.y, s * a.x - c * a.y, float(wrap_angle(-a.yaw)))


def transform_points(pose: Pose2D, xy: np.ndarray) -> np.ndarray:
    """Map (..., 2) points from the child frame of `pose` into its parent frame."""
    xy = np.asarray(xy, dtype=np.float64)
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    out = np.empty_like(xy)
    out[..., 0] = pose.x + c * xy[..., 0] - s * xy[..., 1]
    out[..., 1] = pose.y + s * xy[..., 0] + c * xy[..., 1]
    return out


def polygon_from_flat(flat: Sequence[float]) -> np.ndarray:
    """[x1, y1, x2, y2, ...] (the ROS parameter form, like Nav2's footprint) -> (n, 2)."""
    a = np.asarray(list(flat), dtype=np.float64)
    if a.size < 6 or a.size % 2 or not np.all(np.isfinite(a)):
        raise ValueError("a polygon needs at least 3 finite (x, y) vertices, got %r"
                         % (list(flat),))
    return a.reshape(-1, 2)


def densify(route: np.ndarray, spacing: float) -> np.ndarray:
    """(M, 2) points along a polyline, no further apart than `spacing`, vertices kept."""
    route = np.asarray(route, dtype=np.float64).reshape(-1, 2)
    if route.shape[0] < 2:
        return route.copy()
    d = np.diff(route, axis=0)
    lens = np.hypot(d[:, 0], d[:, 1])
    counts = np.maximum(np.ceil(lens / spacing).astype(np.int64), 1)
    seg = np.repeat(np.arange(len(lens)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    t = (np.arange(int(counts.sum())) - start) / counts[seg]
    pts = route[seg] + d[seg] * t[:, None]
    return np.vstack([pts, route[-1:]])
