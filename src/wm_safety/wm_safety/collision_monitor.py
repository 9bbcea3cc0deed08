"""The collision monitor's decision: raw points + the command that wants to go to the wheels
-> the scale that command may be driven at, and why.

No map, no learned model, no planner state: only the points the sensor saw last and the
geometry of zones.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from wm_safety.zones import Zones, points_in_polygon, stoppable_speed, time_to_collision

FREE, SLOWDOWN, APPROACH, STOP = "free", "slowdown", "approach", "stop"


@dataclass(frozen=True)
class MonitorConfig:
    slowdown_ratio: float = 0.5      # speed scale while points are in the slowdown zone
    time_horizon: float = 1.5        # how far ahead the approach zone sweeps [s]
    time_step: float = 0.05          # sweep resolution [s]
    decel_linear: float = 1.0        # braking the velocity smoother applies [m/s^2]
    decel_angular: float = 2.5       # [rad/s^2]
    reaction: float = 0.15           # one cloud period plus the smoother's jerk ramp [s]
    approach_margin: float = 0.05    # stop this far before contact [m]
    approach_margin_angular: float = 0.05  # [rad]
    min_points: int = 1              # points needed in a zone (1: any return counts)


@dataclass(frozen=True)
class Verdict:
    action: str                      # free, slowdown, approach or stop
    scale: float                     # 0..1 applied to (v, w) together (keeps the path)
    points_stop: int
    points_slowdown: int
    time_to_collision: Optional[float]  # of the approach sweep, None when clear


def check(points_xy: np.ndarray, zones: Zones, v: float, w: float,
          cfg: MonitorConfig) -> Verdict:
    """What (v, w) may become given points (M, 2) in base_link (already cropped is fine)."""
    n_stop = int(points_in_polygon(points_xy, zones.stop).sum()) if len(points_xy) else 0
    n_slow = int(points_in_polygon(points_xy, zones.slowdown).sum()) if len(points_xy) else 0
    if n_stop >= cfg.min_points:
        return Verdict(STOP, 0.0, n_stop, n_slow, 0.0)
    ttc = time_to_collision(points_xy, zones.footprint, v, w, cfg.time_horizon, cfg.time_step)
    scale, action = 1.0, FREE
    if n_slow >= cfg.min_points:
        scale, action = cfg.slowdown_ratio, SLOWDOWN
    if ttc is not None:
        # the sweep is sampled: the contact-free travel is up to the step before the hit
        free_t = max(0.0, ttc - cfg.time_step)
        s = 1.0
        if abs(v) > 1e-6:
            d = abs(v) * free_t - cfg.approach_margin
            s = min(s, stoppable_speed(d, cfg.decel_linear, cfg.reaction) / abs(v))
        if abs(w) > 1e-6:
            a = abs(w) * free_t - cfg.approach_margin_angular
            s = min(s, stoppable_speed(a, cfg.decel_angular, cfg.reaction) / abs(w))
        if s < scale:
            scale, action = s, APPROACH
    return Verdict(action, float(scale), n_stop, n_slow, ttc)
