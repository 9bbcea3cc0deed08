"""Wheel odometry from encoder angles, with a covariance that grows with distance.

Integrates only what a real robot measures (left/right wheel angles), so when the wheels
slip the odom pose drifts away from the truth, exactly as on hardware. Output layout
matches nav_msgs/Odometry: pose in the odom frame, twist in base_link, 6x6 covariances
(x, y, z, roll, pitch, yaw) as row-major lists of 36 floats.

Plain numpy/math, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D, wrap_angle

# Indices of x, y, yaw inside the 6x6 (x, y, z, roll, pitch, yaw) covariance.
_IDX = (0, 1, 5)


def _embed6(cov3: np.ndarray, unused_variance: float) -> List[float]:
    """3x3 (x, y, yaw) covariance -> row-major 36-list for a planar robot message."""
    m = np.zeros((6, 6))
    m[2, 2] = m[3, 3] = m[4, 4] = unused_variance
    ix = np.ix_(_IDX, _IDX)
    m[ix] = cov3
    return [float(v) for v in m.ravel()]


class WheelOdometry:
    """Dead reckoning from (left, right) wheel angles in rad.

    Error model (the classic one for differential drives): each wheel's travelled distance
    d has an independent variance k * |d| (k = `wheel_variance_per_m`, m^2 per m), propagated
    through the motion Jacobians, so the pose covariance grows with distance travelled and
    faster in yaw during turns; it never shrinks since nothing here observes the map.

    z / roll / pitch are not estimated; they get `unused_variance` (large, as ROS 2D drivers
    do, so a fusing filter does not trust them).
    """

    def __init__(self, wheel_radius: float, track: float,
                 wheel_variance_per_m: float = 1e-3, twist_variance_floor: float = 1e-6,
                 unused_variance: float = 1e6, pose: Pose2D = Pose2D(0.0, 0.0, 0.0)):
        if wheel_radius <= 0.0 or track <= 0.0:
            raise ValueError("wheel_radius and track must be positive")
        self.wheel_radius = float(wheel_radius)
        self.track = float(track)
        self.k = float(wheel_variance_per_m)
        self.twist_variance_floor = float(twist_variance_floor)
        self.unused_variance = float(unused_variance)
        self.reset(pose)

    def reset(self, pose: Pose2D = Pose2D(0.0, 0.0, 0.0)) -> None:
        """Restart at `pose` (odom frame) with zero covariance; the next update() only
        latches the encoder angles, since a delta needs two readings."""
        self._x, self._y, self._yaw = float(pose.x), float(pose.y), float(wrap_angle(pose.yaw))
        self._last: Optional[Tuple[float, float]] = None
        self._v = 0.0
        self._w = 0.0
        self._var_v = self.twist_variance_floor
        self._var_w = self.twist_variance_floor
        self._P = np.zeros((3, 3))
        self.distance_travelled = 0.0

    def update(self, left_angle: float, right_angle: float, dt: float) -> Pose2D:
        """Fold in a new encoder reading taken dt seconds after the previous one."""
        if self._last is None:
            self._last = (float(left_angle), float(right_angle))
            return self.pose
        dl = (float(left_angle) - self._last[0]) * self.wheel_radius
        dr = (float(right_angle) - self._last[1]) * self.wheel_radius
        self._last = (float(left_angle), float(right_angle))
        b = self.track
        ds = 0.5 * (dl + dr)
        dth = (dr - dl) / b
        # Midpoint heading: second-order accurate for an arc and the usual odometry Jacobian.
        thm = self._yaw + 0.5 * dth
        c, s = math.cos(thm), math.sin(thm)
        self._x += ds * c
        self._y += ds * s
        self._yaw = float(wrap_angle(self._yaw + dth))
        self.distance_travelled += abs(ds)

        F = np.array([[1.0, 0.0, -ds * s], [0.0, 1.0, ds * c], [0.0, 0.0, 1.0]])
        g = ds / (2.0 * b)
        G = np.array([[0.5 * c + g * s, 0.5 * c - g * s],   # columns: d/d(dl), d/d(dr)
                      [0.5 * s - g * c, 0.5 * s + g * c],
                      [-1.0 / b, 1.0 / b]])
        Q = np.diag([self.k * abs(dl), self.k * abs(dr)])
        self._P = F @ self._P @ F.T + G @ Q @ G.T

        if dt > 0.0:
            self._v = ds / dt
            self._w = dth / dt
            # Same wheel-distance noise seen as a rate over this interval.
            var_ds = 0.25 * self.k * (abs(dl) + abs(dr))
            var_dth = self.k * (abs(dl) + abs(dr)) / (b * b)
            self._var_v = var_ds / (dt * dt) + self.twist_variance_floor
            self._var_w = var_dth / (dt * dt) + self.twist_variance_floor
        return self.pose

    @property
    def pose(self) -> Pose2D:
        """Odom-frame pose of base_link."""
        return Pose2D(self._x, self._y, self._yaw)

    @property
    def twist(self) -> Tuple[float, float]:
        """(v, w) in base_link from the last encoder delta."""
        return (self._v, self._w)

    @property
    def pose_covariance3(self) -> np.ndarray:
        """3x3 covariance of (x, y, yaw)."""
        return self._P.copy()

    @property
    def pose_covariance(self) -> List[float]:
        """nav_msgs/Odometry pose.covariance: row-major 6x6 as 36 floats."""
        return _embed6(self._P, self.unused_variance)

    @property
    def twist_covariance(self) -> List[float]:
        """nav_msgs/Odometry twist.covariance: row-major 6x6 as 36 floats (vx, ..., wz);
        vy gets the floor since a diff drive cannot command it."""
        cov3 = np.diag([self._var_v, self.twist_variance_floor, self._var_w])
        return _embed6(cov3, self.unused_variance)
