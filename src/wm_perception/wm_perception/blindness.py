"""Whether the LiDAR sees: valid returns per cloud against what this sensor normally delivers.

A covered, dirty or failing sensor, or a driver that publishes "no return" for every beam
(ouster-ros sends organized clouds of zeros, others NaN), delivers fresh clouds with nothing in
them. Decoded, such a cloud is "no obstacle anywhere", and a distance field built from it says
everything is free. This monitor tells a blind sensor from an open space: an open warehouse
still returns the floor, racks and walls for most beams, while a blind one returns (almost)
none.

Per cloud, the fraction of valid returns (finite, not (0, 0, 0), within range) of the points
the cloud declares. The sensor's normal fraction is `expected` when configured, else the median
of its first `learn_clouds` clouds that had any returns. A cloud is dark when its fraction is
below `min_ratio` times the normal one, or below `min_fraction` whatever was learned (a sensor
blind from the start learns nothing). The sensor is blind once its clouds have been dark for
`blind_time` seconds (one dark cloud between good ones is noise, dust, a reflection); the first
good cloud ends it.

Per azimuth sector as well (`sectors` > 0): a half-covered or half-dirty sensor still delivers
plenty of returns overall. A sector's fraction is its valid returns against an equal share of the
declared points (points / sectors); its normal fraction is learned with the whole cloud's
(or `expected`). A sector is dark by the same two thresholds and blind after `blind_time`. A
sector that delivered (almost) nothing while learning lies outside the sensor's field of view
(a 70 degree Livox, a 270 degree scanner) and is not monitored: configure `expected` to monitor
every sector from the first cloud. What a blind sector hides is walled off by `sector_wall`
points (`ReturnMonitor.wall`), so planners and the collision monitor treat it as an obstacle,
never as free space.

Perception and the collision monitor each run this check on their own input, with the same
parameters (`blindness_params`, `ReturnMonitor.from_params`).

Plain Python and numpy (no rclpy).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from wm_common.params import Param


SECTOR_SAMPLE = 16384   # returns whose azimuths are binned per cloud, at most
# stamps differ by float rounding (6.5 - 6.2 < 0.3): without it a 0.3 s blind_time at 10 Hz
# took one more cloud, 0.1 s, half the time (seen in the lidar_nan drill)
STAMP_EPS = 1e-6


def blindness_params(when_blind: str) -> list:
    """The blindness parameters of a node whose LiDARs are checked, for one that does
    `when_blind` (e.g. "the robot is held") while a LiDAR is blind."""
    return [
        Param("blind_min_ratio", 0.25,
              "a cloud is dark below this fraction of the sensor's normal share of valid "
              "returns", 0.01, 1.0),
        Param("blind_min_fraction", 0.02,
              "... or below this share of valid returns whatever is normal", 0.0, 0.99),
        Param("blind_time", 0.3,
              "dark clouds for this long make the LiDAR blind: %s until returns come back [s]"
              % when_blind, 0.0, 10.0),
        Param("blind_learn_clouds", 10,
              "the normal share of valid returns: the median of this many first clouds",
              1, 10000),
        Param("expected_valid_fraction", 0.0,
              "the sensor's normal share of valid returns (0: learned)", 0.0, 1.0),
        Param("blind_sectors", 8,
              "azimuth sectors checked on their own (a half-covered sensor; 0: whole cloud "
              "only); a blind sector is walled off at blind_sector_range", 0, 360),
        Param("blind_sector_range", 0.9,
              "what a blind sector hides reads as an obstacle this far from the sensor: the "
              "body's reach plus the stopping distance [m]", 0.1, 10.0),
    ]


class ReturnMonitor:
    def __init__(self, min_ratio: float = 0.25, min_fraction: float = 0.02,
                 blind_time: float = 0.3, learn_clouds: int = 10, expected: float = 0.0,
                 sectors: int = 0):
        if not 0.0 < min_ratio <= 1.0 or not 0.0 <= min_fraction < 1.0:
            raise ValueError("min_ratio in (0, 1], min_fraction in [0, 1)")
        if sectors < 0 or learn_clouds < 1:
            raise ValueError("sectors >= 0 and learn_clouds >= 1")
        self.min_ratio = float(min_ratio)
        self.min_fraction = float(min_fraction)
        self.blind_time = float(blind_time)
        self.learn_clouds = int(learn_clouds)
        self.expected = float(expected) if expected > 0.0 else None
        self._learning: List[float] = []
        self.dark_since: Optional[float] = None
        self.blind = False
        self.fraction = float("nan")
        self.sectors = int(sectors)
        self._sector_learning: List[np.ndarray] = []
        self._sector_dark_since = [None] * self.sectors  # type: List[Optional[float]]
        self.sector_fraction = np.full(self.sectors, np.nan)
        self.blind_sectors: List[int] = []   # blind now, indices (sector k spans azimuths
        # [-pi + k * 2 pi / sectors, -pi + (k + 1) * 2 pi / sectors) in the sensor frame)

    @classmethod
    def from_params(cls, p) -> "ReturnMonitor":
        """One LiDAR's monitor from a node's parameters (blindness_params)."""
        return cls(p["blind_min_ratio"], p["blind_min_fraction"], p["blind_time"],
                   p["blind_learn_clouds"], p["expected_valid_fraction"], p["blind_sectors"])

    @property
    def normal(self) -> Optional[float]:
        """The fraction of valid returns this sensor normally delivers (None: not known yet)."""
        if self.expected is not None:
            return self.expected
        if len(self._learning) >= self.learn_clouds:
            return sorted(self._learning)[len(self._learning) // 2]
        return None

    def threshold(self) -> float:
        normal = self.normal
        return max(self.min_fraction, self.min_ratio * normal if normal is not None else 0.0)

    def sector_normal(self) -> Optional[np.ndarray]:
        """(sectors,) normal fraction per sector (None: not learned yet)."""
        if self.expected is not None:
            return np.full(self.sectors, self.expected)
        if len(self._sector_learning) >= self.learn_clouds:
            return np.median(np.stack(self._sector_learning), axis=0)
        return None

    def sector_thresholds(self) -> np.ndarray:
        """(sectors,) dark below this; -inf where the sector is not monitored."""
        normal = self.sector_normal()
        if normal is None:
            return np.full(self.sectors, self.min_fraction)
        th = np.maximum(self.min_fraction, self.min_ratio * normal)
        return np.where(normal >= self.min_fraction, th, -np.inf)

    def update(self, t: float, n_valid: int, n_points: int,
               azimuth: Optional[np.ndarray] = None) -> Tuple[bool, str]:
        """One cloud at time t: (blind, why) after it. `azimuth` (rad, sensor frame) of the
        valid returns updates the sectors (`blind_sectors`) when sectors > 0."""
        self.fraction = n_valid / float(n_points) if n_points > 0 else 0.0
        dark = self.fraction < self.threshold()
        if self.sectors and azimuth is not None:
            self._update_sectors(t, azimuth, n_points, learn=not dark)
        if not dark:
            if self.expected is None and len(self._learning) < self.learn_clouds \
                    and self.fraction > 0.0:
                self._learning.append(self.fraction)
            self.dark_since, self.blind = None, False
            return False, ""
        if self.dark_since is None:
            self.dark_since = float(t)
        self.blind = t - self.dark_since >= self.blind_time - STAMP_EPS
        why = "%.1f %% valid returns for %.2f s (normal %s, threshold %.1f %%)" % (
            100.0 * self.fraction, t - self.dark_since,
            "unknown" if self.normal is None else "%.1f %%" % (100.0 * self.normal),
            100.0 * self.threshold())
        return self.blind, why

    def update_cloud(self, t: float, xyz_valid: np.ndarray, n_points: int
                     ) -> Tuple[bool, str]:
        """update() from a decoded cloud: its valid returns (N, 3) in the sensor frame and
        the points it declared. The sectors' shares come from a sample of at most
        SECTOR_SAMPLE returns (the azimuths of a 128-beam cloud cost more than they tell)."""
        n_valid = int(xyz_valid.shape[0])
        if not self.sectors:
            return self.update(t, n_valid, n_points)
        stride = max(1, n_valid // SECTOR_SAMPLE)
        xy = xyz_valid[::stride]
        azimuth = np.arctan2(xy[:, 1], xy[:, 0])
        blind, why = self.update(t, len(azimuth), n_points / float(stride), azimuth)
        self.fraction = n_valid / float(n_points) if n_points > 0 else 0.0
        return blind, why

    def _update_sectors(self, t: float, azimuth: np.ndarray, n_points: int,
                        learn: bool) -> None:
        k = self.sectors
        a = np.asarray(azimuth, dtype=np.float64)
        a = a[np.isfinite(a)]
        idx = np.clip(((a + math.pi) * (k / (2.0 * math.pi))).astype(np.int64), 0, k - 1)
        share = n_points / float(k) if n_points > 0 else 1.0
        frac = np.bincount(idx, minlength=k) / share
        self.sector_fraction = frac
        if learn and self.expected is None and len(self._sector_learning) < self.learn_clouds:
            self._sector_learning.append(frac)
        dark = frac < self.sector_thresholds()
        blind = []
        for i in range(k):
            if not dark[i]:
                self._sector_dark_since[i] = None
                continue
            if self._sector_dark_since[i] is None:
                self._sector_dark_since[i] = float(t)
            if t - self._sector_dark_since[i] >= self.blind_time - STAMP_EPS:
                blind.append(i)
        self.blind_sectors = blind

    def dark_intervals(self, yaw: float = 0.0) -> List[Tuple[float, float]]:
        """The blind sectors as azimuth intervals (lo, hi) [rad] in the frame the sensor is
        mounted in at `yaw` (base_link for the sensor's extrinsic yaw)."""
        width = 2.0 * math.pi / max(self.sectors, 1)
        return [(yaw - math.pi + k * width, yaw - math.pi + (k + 1) * width)
                for k in self.blind_sectors]

    def wall(self, radius: float, z_min: float, z_max: float, mount_z: float,
             spacing: float) -> np.ndarray:
        """(M, 3) sensor-frame points walling off the blind sectors (sector_wall): arcs at
        `radius`, a point every `spacing` metres, at three heights from z_min + spacing to
        min(z_max, z_min + 1) in the frame z_min and z_max are given in (base_link; the sensor
        sits `mount_z` above its origin): low enough to count, high enough for a body."""
        heights = [z - mount_z for z in np.linspace(z_min + spacing, min(z_max, z_min + 1.0), 3)]
        return sector_wall(self.blind_sectors, self.sectors, radius, heights, spacing)

    def sectors_why(self) -> str:
        """The blind sectors in words (for the log and /diagnostics)."""
        k = self.sectors
        return ", ".join("%+.0f..%+.0f deg (%.0f %% valid)" % (
            -180.0 + 360.0 * i / k, -180.0 + 360.0 * (i + 1) / k,
            100.0 * self.sector_fraction[i]) for i in self.blind_sectors)


def sector_wall(sectors: Sequence[int], n_sectors: int, radius: float,
                heights: Sequence[float], spacing: float) -> np.ndarray:
    """(M, 3) points in the sensor frame that wall off the given azimuth sectors: an arc at
    `radius` across each sector, every `spacing` metres, at each of `heights` (sensor-frame
    z). Perception and the collision monitor add them to the cloud of a sensor with blind
    sectors, so what it cannot see reads as an obstacle that near, never as free space."""
    if not sectors:
        return np.zeros((0, 3))
    width = 2.0 * math.pi / n_sectors
    n = max(2, int(math.ceil(width * radius / spacing)) + 1)
    arcs = [-math.pi + width * (i + np.linspace(0.0, 1.0, n)) for i in sectors]
    az = np.concatenate(arcs)
    xy = np.stack([radius * np.cos(az), radius * np.sin(az)], axis=1)
    return np.concatenate([np.column_stack([xy, np.full(len(az), z)]) for z in heights])
