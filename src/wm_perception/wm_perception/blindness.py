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

Plain Python (no rclpy). Per-sector blindness (a half-covered sensor) is not modelled yet.
"""
from __future__ import annotations

from typing import List, Optional, Tuple


class ReturnMonitor:
    def __init__(self, min_ratio: float = 0.25, min_fraction: float = 0.02,
                 blind_time: float = 0.3, learn_clouds: int = 10, expected: float = 0.0):
        if not 0.0 < min_ratio <= 1.0 or not 0.0 <= min_fraction < 1.0:
            raise ValueError("min_ratio in (0, 1], min_fraction in [0, 1)")
        self.min_ratio = float(min_ratio)
        self.min_fraction = float(min_fraction)
        self.blind_time = float(blind_time)
        self.learn_clouds = int(learn_clouds)
        self.expected = float(expected) if expected > 0.0 else None
        self._learning: List[float] = []
        self.dark_since: Optional[float] = None
        self.blind = False
        self.fraction = float("nan")

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

    def update(self, t: float, n_valid: int, n_points: int) -> Tuple[bool, str]:
        """One cloud at time t: (blind, why) after it."""
        self.fraction = n_valid / float(n_points) if n_points > 0 else 0.0
        dark = self.fraction < self.threshold()
        if not dark:
            if self.expected is None and len(self._learning) < self.learn_clouds \
                    and self.fraction > 0.0:
                self._learning.append(self.fraction)
            self.dark_since, self.blind = None, False
            return False, ""
        if self.dark_since is None:
            self.dark_since = float(t)
        self.blind = t - self.dark_since >= self.blind_time
        why = "%.1f %% valid returns for %.2f s (normal %s, threshold %.1f %%)" % (
            100.0 * self.fraction, t - self.dark_since,
            "unknown" if self.normal is None else "%.1f %%" % (100.0 * self.normal),
            100.0 * self.threshold())
        return self.blind, why
