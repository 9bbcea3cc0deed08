"""Motion compensation (deskew) of a LiDAR sweep from per-point time and the base twist.

A spinning LiDAR takes ~0.1 s per sweep; a robot driving at 1.5 m/s moves 15 cm meanwhile,
so a straight wall comes out bent (or, at the seam, split). Assuming the base moves with a
constant planar twist (vx, vy, wz in the body frame, as nav_msgs/Odometry.twist is) during
the sweep, the base pose at time t relative to its pose at the cloud stamp is the SE(2)
exponential of t * twist; every point is mapped from the sensor pose at its own time to the
sensor pose at the stamp:

    p_out = T_bs^-1 * T_0(t) * T_bs * p

with T_bs the (level) sensor mount in the base frame. Heights are unchanged: the motion is
planar and the sensor is mounted level.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import numpy as np

Twist = Union[Tuple[float, float], Tuple[float, float, float], Sequence[float]]


def parse_twist(twist: Twist) -> Tuple[float, float, float]:
    """(vx, vy, wz) from (v, w) (unicycle) or (vx, vy, wz) (holonomic); all finite."""
    vals = [float(v) for v in twist]
    if len(vals) == 2:
        vals = [vals[0], 0.0, vals[1]]
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise ValueError("twist must be 2 or 3 finite numbers (v, w) or (vx, vy, w)")
    return vals[0], vals[1], vals[2]


def base_motion(t: np.ndarray, vx: float, vy: float, wz: float):
    """(dx, dy, dyaw) arrays: base pose at times t relative to the base at t = 0, for a
    constant body twist (the SE(2) exponential, exact on arcs)."""
    t = np.asarray(t, dtype=np.float64)
    th = wz * t
    if abs(wz) < 1e-9:
        a = t                       # sin(w t) / w
        b = 0.5 * wz * t * t        # (1 - cos(w t)) / w
    else:
        a = np.sin(th) / wz
        s = np.sin(0.5 * th)
        b = 2.0 * s * s / wz        # 1 - cos without cancellation
    dx = vx * a - vy * b
    dy = vx * b + vy * a
    return dx, dy, th


def deskew(xyz_sensor: np.ndarray, t_rel: np.ndarray, v: Union[float, Sequence[float]],
           w: float, sensor_in_base: Sequence[float]) -> np.ndarray:
    """Points (N, 3) in the sensor frame at their own capture times -> the sensor frame at
    the cloud stamp.

    t_rel: (N,) seconds of each point relative to the cloud stamp (negative = before it).
    v: forward speed of the base [m/s] or (vx, vy); w: yaw rate [rad/s]; both body frame.
    sensor_in_base: (x, y, z, yaw) of the level sensor on the base.
    Returns float32 for float32 input, else float64. Non-finite times leave points as they
    are (they were measured at an unknown time; better uncorrected than NaN).
    """
    p = np.asarray(xyz_sensor)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError("xyz_sensor must be (N, 3), got %s" % (p.shape,))
    t = np.asarray(t_rel, dtype=np.float64).reshape(-1)
    if t.shape[0] != p.shape[0]:
        raise ValueError("t_rel has %d entries for %d points" % (t.shape[0], p.shape[0]))
    if np.ndim(v) == 0:
        vx, vy, wz = parse_twist((v, w))
    else:
        vx, vy, wz = parse_twist(tuple(v) + (w,))
    sx, sy, _sz, syaw = (float(c) for c in sensor_in_base)
    out_dtype = np.float32 if p.dtype == np.float32 else np.float64
    out = np.array(p, dtype=out_dtype, copy=True)
    if p.shape[0] == 0 or (vx == 0.0 and vy == 0.0 and wz == 0.0):
        return out
    t = np.where(np.isfinite(t), t, 0.0)
    dx, dy, th = base_motion(t, vx, vy, wz)
    cs, ss = math.cos(syaw), math.sin(syaw)
    px = p[:, 0].astype(np.float64)
    py = p[:, 1].astype(np.float64)
    # Sensor at t -> base at t.
    bx = sx + cs * px - ss * py
    by = sy + ss * px + cs * py
    # Base at t -> base at the stamp.
    c, s = np.cos(th), np.sin(th)
    qx = dx + c * bx - s * by - sx
    qy = dy + s * bx + c * by - sy
    # Base at the stamp -> sensor at the stamp.
    out[:, 0] = cs * qx + ss * qy
    out[:, 1] = -ss * qx + cs * qy
    return out
