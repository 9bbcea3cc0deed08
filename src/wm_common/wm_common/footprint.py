"""The robot's body as a polygon in base_link (REP-103: x forward, y left), Nav2's `footprint`.

One definition serves every layer that asks "does the body fit here?":

* the planner's collision critic samples the distance field on the polygon's boundary
  (`boundary`), and only for poses whose centre is closer to an obstacle than the
  circumscribed radius plus its inflation (as Nav2's MPPI checks the full footprint only
  above the "possibly inscribed" cost): in open space the centre alone decides;
* the route and the navigation function keep the inscribed radius (plus a margin) from
  obstacles: the body driving straight along a route fits wherever the route passes, and a
  gap narrower than the body has no route ("no way");
* the turn on the spot needs the circumscribed radius clear (the circle the corners sweep);
* critics that reason with circles (fleet, forecasts) and the NMPC's constraints use
  `circles`, a cover of the polygon by a few circles along its long axis;
* the safety gate's zones are the polygon grown by margins; the simulator's contact check
  and the episodes' chassis test use the same rectangle.

Plain numpy, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from wm_common.geometry import polygon_from_flat

# The default body: 0.7 m long, 0.55 m wide, centred on base_link (config/robot.yaml).
DEFAULT_FOOTPRINT = (0.35, 0.275, 0.35, -0.275, -0.35, -0.275, -0.35, 0.275)


def _edges(poly: np.ndarray):
    a = poly
    b = np.roll(poly, -1, axis=0)
    return a, b


def point_polygon_distance(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (...) distance to the polygon's edges (0 on the boundary; the
    distance to the boundary also for points inside: use `contains` for the side)."""
    xy = np.asarray(xy, dtype=np.float64)
    a, b = _edges(np.asarray(poly, dtype=np.float64))
    ab = b - a                                            # (E, 2)
    len2 = np.maximum((ab * ab).sum(axis=1), 1e-18)
    rel = xy[..., None, :] - a                            # (..., E, 2)
    t = np.clip((rel * ab).sum(axis=-1) / len2, 0.0, 1.0)
    d = rel - t[..., None] * ab
    return np.sqrt((d * d).sum(axis=-1)).min(axis=-1)


def contains(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (...) bool inside the polygon (even-odd rule)."""
    xy = np.asarray(xy, dtype=np.float64)
    x, y = xy[..., 0], xy[..., 1]
    inside = np.zeros(x.shape, dtype=bool)
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for x1, y1, x2, y2 in zip(px, py, qx, qy):
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


def grow(poly: np.ndarray, front: float, rear: float, side: float) -> np.ndarray:
    """The polygon with every vertex pushed out: +front for x > 0, -rear for x < 0, side
    outward in y. Exact for the rectangles robots use; a conservative stretch otherwise.
    (The safety gate's zones and the planner's padded footprint both grow the body so.)"""
    out = np.array(poly, dtype=np.float64, copy=True)
    out[:, 0] += np.where(poly[:, 0] > 0, front, np.where(poly[:, 0] < 0, -rear, 0.0))
    out[:, 1] += np.where(poly[:, 1] > 0, side, np.where(poly[:, 1] < 0, -side, 0.0))
    return out


class Footprint:
    """A simple polygon around base_link.

    polygon: (n, 2) vertices in order (either sense); base_link must lie inside it.
    spacing: the largest gap between boundary samples [m] (the planner's distance field
    has 0.1 m cells: finer sampling reads the same interpolated values).
    """

    def __init__(self, polygon: np.ndarray, spacing: float = 0.1):
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if poly.shape[0] < 3 or not np.all(np.isfinite(poly)):
            raise ValueError("a footprint needs at least 3 finite vertices")
        area = 0.5 * float(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1)
                                  - np.roll(poly[:, 0], -1) * poly[:, 1]))
        if abs(area) < 1e-6:
            raise ValueError("the footprint polygon has no area")
        if not bool(contains(np.zeros(2), poly)):
            raise ValueError("base_link (0, 0) must lie inside the footprint polygon")
        if not spacing > 0.0:
            raise ValueError("spacing must be positive")
        self.polygon = poly
        self.spacing = float(spacing)
        self.inscribed_radius = float(point_polygon_distance(np.zeros(2), poly))
        self.circumscribed_radius = float(np.max(np.hypot(poly[:, 0], poly[:, 1])))
        self.boundary = self._boundary(poly, self.spacing)
        self.circles = self._cover(poly)

    @classmethod
    def from_flat(cls, flat: Sequence[float], spacing: float = 0.1) -> "Footprint":
        """[x1, y1, x2, y2, ...], the ROS parameter form (Nav2's footprint, flattened)."""
        return cls(polygon_from_flat(flat), spacing)

    @classmethod
    def rectangle(cls, length: float, width: float) -> "Footprint":
        hx, hy = 0.5 * float(length), 0.5 * float(width)
        return cls(np.array([[hx, hy], [hx, -hy], [-hx, -hy], [-hx, hy]]))

    @classmethod
    def circle(cls, radius: float, sides: int = 16) -> "Footprint":
        """A round robot as a polygon circumscribing the circle (inscribed radius = radius)."""
        r = float(radius) / math.cos(math.pi / sides)
        a = np.arange(sides) * 2.0 * math.pi / sides
        return cls(np.stack([r * np.cos(a), r * np.sin(a)], axis=1))

    @property
    def flat(self) -> list:
        return [float(v) for v in self.polygon.ravel()]

    @staticmethod
    def _boundary(poly: np.ndarray, spacing: float) -> np.ndarray:
        a, b = _edges(poly)
        pts = []
        for p, q in zip(a, b):
            n = max(1, int(math.ceil(float(np.hypot(*(q - p))) / spacing)))
            t = np.arange(n)[:, None] / n
            pts.append(p + t * (q - p))
        return np.concatenate(pts, axis=0)

    @staticmethod
    def _cover(poly: np.ndarray, max_bulge: float = 0.03) -> np.ndarray:
        """(C, 3) circles [x, y, r] whose union covers the polygon's bounding box in
        base_link: C circles in a row along the longer side, each covering its slice of
        the box, as few as keep the bulge beyond the box's sides under `max_bulge`."""
        x0, y0 = poly.min(axis=0)
        x1, y1 = poly.max(axis=0)
        along_x = (x1 - x0) >= (y1 - y0)
        lo, hi = (x0, x1) if along_x else (y0, y1)
        c_lo, c_hi = (y0, y1) if along_x else (x0, x1)
        half_w = 0.5 * (c_hi - c_lo)
        centre_w = 0.5 * (c_hi + c_lo)
        length = hi - lo
        n = 1
        while True:
            r = math.hypot(half_w, 0.5 * length / n)
            if r - half_w <= max_bulge or n >= 16:
                break
            n += 1
        s = lo + (np.arange(n) + 0.5) * length / n
        if along_x:
            return np.stack([s, np.full(n, centre_w), np.full(n, r)], axis=1)
        return np.stack([np.full(n, centre_w), s, np.full(n, r)], axis=1)

    def padded(self, front: float, rear: float, side: float) -> "Footprint":
        """This body grown by margins (`grow`), e.g. the safety gate's stop zone."""
        return Footprint(grow(self.polygon, front, rear, side), self.spacing)

    def at(self, x: float, y: float, yaw: float) -> np.ndarray:
        """The polygon's vertices at pose (x, y, yaw) of base_link."""
        c, s = math.cos(yaw), math.sin(yaw)
        p = self.polygon
        return np.stack([x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1]], axis=1)

    def boundary_at(self, poses: np.ndarray) -> np.ndarray:
        """(..., 3) poses [x, y, yaw] -> (..., P, 2) boundary samples in the poses' frame."""
        poses = np.asarray(poses, dtype=np.float64)
        c, s = np.cos(poses[..., 2])[..., None], np.sin(poses[..., 2])[..., None]
        bx, by = self.boundary[:, 0], self.boundary[:, 1]
        return np.stack([poses[..., 0, None] + c * bx - s * by,
                         poses[..., 1, None] + s * bx + c * by], axis=-1)

    def __repr__(self) -> str:
        return "Footprint(%s)" % self.flat
