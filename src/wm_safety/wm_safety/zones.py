"""Zones around the robot's footprint and what the points inside them allow.

Everything here is in base_link, from raw points (no map, no model): a reviewer can check it
with a ruler. Three zones, as in Nav2's collision monitor:

- stop: the footprint grown by a small margin. Any point inside: the command becomes zero.
- slowdown: the footprint grown by a larger margin, mostly forward. Any point inside: speed is
  scaled by `slowdown_ratio`.
- approach: the footprint swept forward along the *commanded* (v, w) for `time_horizon`
  seconds. If it would touch a point after travelling d metres, the speed is limited so the
  robot can still stop before it: v^2 / (2 a) + v * t_react <= d - stop margin.

The footprint grows with the payload (a pallet overhanging the chassis): `Footprint.for_payload`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from wm_common.footprint import contains as points_in_polygon, grow


def edge_distances(xy: np.ndarray, poly: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(..., 2) points -> distance to each edge of the polygon (..., n) and the nearest point
    of that edge (..., n, 2). Edge i runs from vertex i to vertex i + 1."""
    a = poly
    ab = np.roll(poly, -1, axis=0) - a
    len2 = np.einsum("ij,ij->i", ab, ab)
    rel = xy[..., None, :] - a
    t = np.einsum("...ij,ij->...i", rel, ab) / np.where(len2 > 0.0, len2, 1.0)
    near = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    diff = xy[..., None, :] - near
    return np.hypot(diff[..., 0], diff[..., 1]), near


def polygon_distance(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (...) exact distance to the polygon: to its nearest edge from
    outside, 0 inside."""
    d = edge_distances(xy, poly)[0].min(axis=-1)
    return np.where(points_in_polygon(xy, poly), 0.0, d)


@dataclass(frozen=True)
class Overhang:
    """A payload's overhang beyond the chassis, used from `min_mass` kg upwards."""
    min_mass: float
    front: float
    rear: float
    side: float


def overhangs_from_flat(flat: Sequence[float]) -> Tuple[Overhang, ...]:
    """[min_mass, front, rear, side, ...] groups of four (a ROS parameter) -> Overhangs."""
    a = [float(v) for v in flat]
    if len(a) % 4 or not all(math.isfinite(v) for v in a):
        raise ValueError("payload_overhangs needs groups of 4 finite numbers "
                         "[min_mass, front, rear, side], got %r" % (a,))
    rows = tuple(Overhang(*a[i:i + 4]) for i in range(0, len(a), 4))
    if any(r.front < 0 or r.rear < 0 or r.side < 0 or r.min_mass < 0 for r in rows):
        raise ValueError("payload overhangs and masses must be >= 0")
    return tuple(sorted(rows, key=lambda r: r.min_mass))


@dataclass(frozen=True)
class Margins:
    front: float
    rear: float
    side: float


@dataclass(frozen=True)
class Zones:
    """The polygons in force for one payload (base_link, (n, 2) each)."""
    footprint: np.ndarray
    self_filter: np.ndarray  # points inside are the robot itself (chassis + known payload)
    stop: np.ndarray
    slowdown: np.ndarray
    reach: float  # radius around base_link beyond which no point can matter

    @classmethod
    def build(cls, chassis: np.ndarray, overhangs: Sequence[Overhang], payload_kg: float,
              stop: Margins, slowdown: Margins, max_travel: float) -> "Zones":
        """Zones for `payload_kg` (unknown payload, NaN or < 0: the largest overhang)."""
        hang = None
        for row in overhangs:
            if not (payload_kg >= 0.0) or payload_kg >= row.min_mass:
                hang = row
        foot = chassis if hang is None else grow(chassis, hang.front, hang.rear, hang.side)
        stop_poly = grow(foot, stop.front, stop.rear, stop.side)
        slow_poly = grow(foot, slowdown.front, slowdown.rear, slowdown.side)
        radius = float(np.max(np.hypot(*np.concatenate([stop_poly, slow_poly]).T)))
        # an unknown payload may not be there at all: only the chassis hides points then
        own = foot if payload_kg >= 0.0 else chassis
        return cls(foot, own, stop_poly, slow_poly, radius + max_travel)


def crop(xy: np.ndarray, reach: float) -> np.ndarray:
    """Only the points close enough to matter (clouds have 100k+ points, zones need few)."""
    keep = (np.abs(xy[:, 0]) <= reach) & (np.abs(xy[:, 1]) <= reach)
    return xy[keep]


def unicycle_poses(v: float, w: float, times: np.ndarray) -> np.ndarray:
    """(T, 3) poses [x, y, yaw] reached from the origin at constant (v, w)."""
    yaw = w * times
    if abs(w) < 1e-6:
        x, y = v * times, np.zeros_like(times)
    else:
        x, y = v / w * np.sin(yaw), v / w * (1.0 - np.cos(yaw))
    return np.stack([x, y, yaw], axis=1)


def time_to_collision(xy: np.ndarray, footprint: np.ndarray, v: float, w: float,
                      horizon: float, dt: float) -> Optional[float]:
    """First time in (0, horizon] at which the footprint, driven at constant (v, w), covers
    any of the points; None if it does not within the horizon (or does not move)."""
    if xy.shape[0] == 0 or (abs(v) < 1e-6 and abs(w) < 1e-6):
        return None
    times = np.arange(1, int(math.ceil(horizon / dt)) + 1) * dt
    poses = unicycle_poses(v, w, times)
    # points in each future body frame: p_body = R(-yaw) (p - t)
    c, s = np.cos(poses[:, 2])[:, None], np.sin(poses[:, 2])[:, None]
    dx = xy[None, :, 0] - poses[:, 0:1]
    dy = xy[None, :, 1] - poses[:, 1:2]
    body = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)
    hit = points_in_polygon(body, footprint).any(axis=1)
    idx = np.flatnonzero(hit)
    return None if idx.size == 0 else float(times[idx[0]])


def stoppable_speed(distance: float, decel: float, reaction: float) -> float:
    """Largest speed from which the robot stops within `distance` metres: v * reaction +
    v^2 / (2 decel) = distance."""
    if distance <= 0.0:
        return 0.0
    ar = decel * reaction
    return -ar + math.sqrt(ar * ar + 2.0 * decel * distance)
