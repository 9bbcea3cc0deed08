"""The collision monitor's decision: raw points + the command that wants to go to the wheels
-> the scale that command may be driven at, and why.

No map, no learned model, no planner state: only the points the sensor saw last and the
geometry of zones.py.

Escape from the stop zone. A point in the stop zone stops the robot, whatever it is asked to
do. Two robots that end up nose to nose, or a robot whose stop zone touches a shelf after a
localization jump, would then be frozen for good: backing away is scaled to zero as well.
Nav2's collision monitor has no way out of this either, and its robots stay stuck until an
operator drives them out. So a command may still pass a stop when it is an *escape*:

- a creep: |v| <= escape_speed and |w| <= escape_angular_speed (a faster command is scaled
  down to those limits first, keeping its (v, w) direction, then checked);
- the footprint (zones.footprint, payload included), driven at that constant (v, w) for
  escape_horizon seconds and sampled every time_step, never has a point inside it, and its
  smallest distance to the points (exact point-to-polygon distance) grows strictly over the
  first step and is never below its value now at any sample, nor between two samples: there
  it is bounded from below by each point's distance to each edge at the sample, its rate of
  change, and how far the point's path (a circle about the turning centre, in base_link)
  bends away from its tangent within one step (`escape_sweep`).

Every point the gate keeps takes part (the stop zone's reach and more); a point farther than
the current clearance plus the footprint's travel over the sweep cannot come closer than the
current clearance and is left out of the sweep. A point on or inside the footprint, or a
motionless command, is never an escape. The gate checks the smoothed command that actually
goes to the base again (gate.py).

What the escape cannot do: it judges the points of the last cloud, so an obstacle that
appears between two clouds is seen one cloud late, as everywhere else in this monitor; and it
is not a certified safety function (README, safety section).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from wm_safety.zones import (Zones, edge_distances, points_in_polygon, polygon_distance,
                             stoppable_speed, time_to_collision, unicycle_poses)

FREE, SLOWDOWN, APPROACH, STOP, ESCAPE = "free", "slowdown", "approach", "stop", "escape"
CLEARANCE_GAIN = 1e-6  # "grows strictly" over the first step: by more than this [m]
CREEP_TOLERANCE = 1e-9  # rounding allowed on the creep limits [m/s, rad/s]


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
    escape: bool = True              # a creep that increases clearance passes a stop
    escape_speed: float = 0.05       # creep limit on |v| [m/s]
    escape_angular_speed: float = 0.15  # creep limit on |w| [rad/s]
    escape_horizon: float = 0.5      # how far ahead an escape is swept [s]


@dataclass(frozen=True)
class Verdict:
    action: str                      # free, slowdown, approach, stop or escape
    scale: float                     # 0..1 applied to (v, w) together (keeps the path)
    points_stop: int
    points_slowdown: int
    time_to_collision: Optional[float]  # of the approach sweep, None when clear
    clearance: Optional[float] = None   # footprint -> nearest point, when a stop was checked


def check(points_xy: np.ndarray, zones: Zones, v: float, w: float,
          cfg: MonitorConfig) -> Verdict:
    """What (v, w) may become given points (M, 2) in base_link (already cropped is fine)."""
    n_stop = int(points_in_polygon(points_xy, zones.stop).sum()) if len(points_xy) else 0
    n_slow = int(points_in_polygon(points_xy, zones.slowdown).sum()) if len(points_xy) else 0
    if n_stop >= cfg.min_points:
        if not cfg.escape:
            return Verdict(STOP, 0.0, n_stop, n_slow, 0.0)
        scale = creep_scale(v, w, cfg)
        ok, clearance, _ = escape_sweep(points_xy, zones.footprint, v * scale, w * scale,
                                        cfg.escape_horizon, cfg.time_step)
        if ok:
            return Verdict(ESCAPE, scale, n_stop, n_slow, 0.0, clearance)
        return Verdict(STOP, 0.0, n_stop, n_slow, 0.0, clearance)
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


def creep_scale(v: float, w: float, cfg: MonitorConfig) -> float:
    """The scale (<= 1) that brings (v, w) within the escape limits, direction kept."""
    k = 1.0
    if abs(v) > cfg.escape_speed:
        k = min(k, cfg.escape_speed / abs(v))
    if abs(w) > cfg.escape_angular_speed:
        k = min(k, cfg.escape_angular_speed / abs(w))
    return k


def is_creep(v: float, w: float, cfg: MonitorConfig) -> bool:
    return (abs(v) <= cfg.escape_speed + CREEP_TOLERANCE
            and abs(w) <= cfg.escape_angular_speed + CREEP_TOLERANCE)


def escape_sweep(points_xy: np.ndarray, footprint: np.ndarray, v: float, w: float,
                 horizon: float, dt: float) -> Tuple[bool, float, str]:
    """May the footprint drive at constant (v, w) for `horizon` s: no point ever inside it,
    its smallest distance to the points growing strictly over the first step of `dt` and
    never below its value now? -> (ok, clearance now [m], why not)."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return False, math.inf, "no points"
    d_now = polygon_distance(xy, footprint)
    d0 = float(d_now.min())
    if d0 <= 0.0:
        return False, d0, "a point on or inside the footprint"
    if abs(v) < 1e-9 and abs(w) < 1e-9:
        return False, d0, "no motion"
    steps = max(1, int(math.ceil(horizon / dt - 1e-9)))
    times = np.arange(steps + 1) * dt
    # the distance from a point to the footprint changes no faster than the footprint's
    # fastest point moves, |v| + |w| r: farther points cannot come closer than d0
    r = float(np.max(np.hypot(footprint[:, 0], footprint[:, 1])))
    travel = (abs(v) + abs(w) * r) * times[-1]
    xy = xy[d_now <= d0 + travel + 1e-9]
    # the points in the footprint's frame at every sample: q = R(-yaw) (p - position)
    poses = unicycle_poses(v, w, times)
    c, s = np.cos(poses[:, 2])[:, None], np.sin(poses[:, 2])[:, None]
    dx = xy[None, :, 0] - poses[:, 0:1]
    dy = xy[None, :, 1] - poses[:, 1:2]
    q = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)          # (T, M, 2)
    if points_in_polygon(q, footprint).any():
        return False, d0, "a point would enter the footprint"
    dist, near = edge_distances(q, footprint)                          # (T, M, E)
    clear = dist.min(axis=(1, 2))
    if not clear[1] > d0 + CLEARANCE_GAIN:
        return False, d0, "clearance does not grow over the first step"
    if (clear < d0).any():
        return False, d0, "clearance would shrink"
    # between two samples: a point moves in this frame at q' = (w q_y - v, -w q_x), on a
    # circle about the turning centre at constant speed |q'|, so it leaves its tangent by at
    # most |w| |q'| tau^2 / 2; its distance to an edge is convex along straight lines and
    # changes at most 1:1 with the point. So tau after a sample that distance is at least
    # d + g tau - |w| |q'| tau^2 / 2 (g: its rate at the sample), lowest at an end of the step
    qdot = np.stack([w * q[..., 1] - v, -w * q[..., 0]], axis=-1)     # (T, M, 2)
    unit = (q[..., None, :] - near) / dist[..., None]                  # dist >= d0 > 0 here
    rate = np.einsum("tmej,tmj->tme", unit, qdot)
    bend = abs(w) * np.hypot(qdot[..., 0], qdot[..., 1]) * dt * dt / 2.0
    low = dist[:-1] + rate[:-1] * dt - bend[:-1, :, None]
    if (low < d0).any():
        return False, d0, "clearance could shrink between two samples"
    return True, d0, ""
