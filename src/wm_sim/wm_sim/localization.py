"""A stand-in for AMCL: noisy map-frame poses of the true pose at a fixed rate.

What the node publishes from this is a geometry_msgs/PoseWithCovarianceStamped in the map
frame; downstream (map->odom TF, the planner) then sees realistic jitter without running a
particle filter in simulation.

Plain numpy, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional

import numpy as np

from wm_common.geometry import Pose2D, wrap_angle


class PoseEstimate(NamedTuple):
    stamp: float            # s, simulation time of the estimate
    pose: Pose2D            # map frame
    covariance: List[float]  # row-major 6x6 (x, y, z, roll, pitch, yaw), 36 floats


class Localization:
    """Emits `true pose + noise` every 1/rate_hz seconds.

    Noise is zero-mean Gaussian with sigma_xy per axis and sigma_yaw. With
    `correlation_time` > 0 it is a first-order Gauss-Markov process instead of white noise
    (same stationary sigma): AMCL's error wanders slowly rather than jumping each update,
    which matters for controllers that differentiate the pose.
    """

    def __init__(self, rate_hz: float = 10.0, sigma_xy: float = 0.02, sigma_yaw: float = 0.01,
                 seed: Optional[int] = None, correlation_time: float = 0.0,
                 unused_variance: float = 1e6):
        if rate_hz <= 0.0:
            raise ValueError("rate_hz must be positive")
        if sigma_xy < 0.0 or sigma_yaw < 0.0 or correlation_time < 0.0:
            raise ValueError("sigmas and correlation_time must be >= 0")
        self.period = 1.0 / float(rate_hz)
        self.sigma = np.array([sigma_xy, sigma_xy, sigma_yaw], dtype=np.float64)
        self.correlation_time = float(correlation_time)
        self.unused_variance = float(unused_variance)
        self._rng = np.random.default_rng(seed)
        self._err: Optional[np.ndarray] = None
        self._next_t: Optional[float] = None
        self._last_t: Optional[float] = None
        cov = np.zeros((6, 6))
        cov[0, 0] = cov[1, 1] = sigma_xy ** 2
        cov[5, 5] = sigma_yaw ** 2
        cov[2, 2] = cov[3, 3] = cov[4, 4] = self.unused_variance
        self._cov = [float(v) for v in cov.ravel()]

    def reset(self) -> None:
        self._err = None
        self._next_t = None
        self._last_t = None

    def update(self, t: float, true_pose: Pose2D) -> Optional[PoseEstimate]:
        """Call every simulation step; returns an estimate when one is due, else None.

        The schedule advances by whole periods from the first call, so the long-run rate is
        exactly rate_hz whatever the simulation step (no drift from rounding).
        """
        if self._next_t is None:
            self._next_t = float(t)
        if t + 1e-9 < self._next_t:
            return None
        # Skip periods missed by a coarse step rather than emitting a burst.
        n = max(1, int(math.floor((t - self._next_t) / self.period + 1e-9)) + 1)
        self._next_t += n * self.period
        return self.estimate(t, true_pose)

    def estimate(self, t: float, true_pose: Pose2D) -> PoseEstimate:
        """A noisy estimate of true_pose now, regardless of the rate."""
        e = self._rng.standard_normal(3) * self.sigma
        if self.correlation_time > 0.0 and self._err is not None and self._last_t is not None:
            # Exact AR(1) discretisation keeps the stationary sigma for any interval.
            a = math.exp(-max(0.0, t - self._last_t) / self.correlation_time)
            e = a * self._err + math.sqrt(max(0.0, 1.0 - a * a)) * e
        self._err = e
        self._last_t = float(t)
        pose = Pose2D(float(true_pose.x + e[0]), float(true_pose.y + e[1]),
                      float(wrap_angle(true_pose.yaw + e[2])))
        return PoseEstimate(float(t), pose, list(self._cov))

    @property
    def covariance(self) -> List[float]:
        """The 36-float covariance every estimate carries."""
        return list(self._cov)
