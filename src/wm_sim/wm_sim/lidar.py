"""An Ouster OS1-16-like spinning 3D LiDAR: organized (rings x columns) scans of a box world.

Geometry: every ray is cast against all boxes (vertical prisms from the floor up to their
height) and the floor plane z=0, fully vectorised. The trick that keeps it fast: a ray's
horizontal direction depends only on its column and its slope only on its ring, so the
horizontal slab test is done once per (column, box) and the vertical one once per
(ring, box), both in units of horizontal distance s = range * cos(elevation); only the
final interval intersection and nearest-hit reduction run over rings x columns x boxes.

Conventions (those of the Ouster ROS driver, so the node can publish a PointCloud2 that
downstream code written for the real sensor accepts):
  * points are in the sensor frame (x forward, y left, z up, origin at the mount point);
  * ring 0 is the top beam (highest elevation), elevation decreasing with the ring index;
  * column 0 looks backwards (azimuth pi) and the sweep turns clockwise seen from above
    (azimuth decreasing), column j at t = j * scan_period / columns (column-major: all
    rings of a column share one timestamp);
  * no return: x = y = z = NaN and range 0 (the organized cloud keeps its shape).
The scan is cast from one pose (no motion distortion within the sweep); `t` is still
filled in so a de-skewing consumer has the real layout to work with.

Plain numpy, no rclpy; Python 3.8 / numpy 1.21 compatible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D, compose
from .world import Box, BoxArrays, World


@dataclass
class LidarSpec:
    """Sensor model parameters. `mount` is (x, y, z, yaw) of the sensor in base_link."""

    rings: int = 16
    columns: int = 1024
    vertical_fov_deg: Tuple[float, float] = (-16.6, 16.6)  # OS1-16: +/-16.6 deg
    max_range: float = 20.0
    min_range: float = 0.3
    range_noise_sigma: float = 0.01
    dropout_prob: float = 0.01
    mount: Tuple[float, float, float, float] = (0.0, 0.0, 0.4, 0.0)
    scan_rate_hz: float = 10.0
    floor_reflectivity: float = 0.2   # grey concrete
    ambient_level: float = 40.0       # indoor near-IR background, counts

    def __post_init__(self):
        if self.rings < 1 or self.columns < 1:
            raise ValueError("rings and columns must be >= 1")
        lo, hi = self.vertical_fov_deg
        if not (-90.0 < lo <= hi < 90.0):
            raise ValueError("vertical_fov_deg must be (low, high) within (-90, 90)")
        if not (0.0 <= self.min_range < self.max_range):
            raise ValueError("need 0 <= min_range < max_range")
        if self.mount[2] <= 0.0:
            raise ValueError("the sensor must be mounted above the floor (mount z > 0)")

    def elevations(self) -> np.ndarray:
        """(rings,) beam elevations in rad, ring 0 the highest."""
        lo, hi = self.vertical_fov_deg
        return np.deg2rad(np.linspace(hi, lo, self.rings))

    def azimuths(self) -> np.ndarray:
        """(columns,) azimuths in rad in the sensor frame: pi at column 0, decreasing."""
        return math.pi - 2.0 * math.pi * np.arange(self.columns) / self.columns


class Lidar:
    """Casts organized scans; one instance per sensor (it owns its noise generator)."""

    FIELDS = ("x", "y", "z", "intensity", "t", "reflectivity", "ring", "ambient", "range_mm")

    def __init__(self, spec: Optional[LidarSpec] = None, seed: Optional[int] = None):
        self.spec = spec if spec is not None else LidarSpec()
        s = self.spec
        self._rng = np.random.default_rng(seed)
        el = s.elevations()
        az = s.azimuths()
        self._cos_el = np.cos(el)
        self._sin_el = np.sin(el)
        self._tan_el = np.tan(el)
        self._cos_az = np.cos(az)
        self._sin_az = np.sin(az)
        # Unit ray directions in the sensor frame, (rings, columns), for the output points.
        self._ux = (self._cos_el[:, None] * self._cos_az[None, :]).astype(np.float32)
        self._uy = (self._cos_el[:, None] * self._sin_az[None, :]).astype(np.float32)
        self._uz = np.repeat(self._sin_el[:, None], s.columns, axis=1).astype(np.float32)
        period_ns = 1e9 / s.scan_rate_hz
        t = np.round(np.arange(s.columns) * period_ns / s.columns).astype(np.uint32)
        self._t = np.ascontiguousarray(np.broadcast_to(t[None, :], (s.rings, s.columns)))
        self._ring = np.ascontiguousarray(np.broadcast_to(
            np.arange(s.rings, dtype=np.uint16)[:, None], (s.rings, s.columns)))
        z0 = s.mount[2]
        # Horizontal distance at which each downward ring meets the floor (inf otherwise).
        with np.errstate(divide="ignore"):
            self._s_floor = np.where(self._tan_el < 0.0, z0 / -self._tan_el, np.inf)
        self._cols = np.arange(s.columns)

    def sensor_pose(self, base_pose_map: Pose2D) -> Pose2D:
        """Planar pose of the sensor in the map frame (its height is spec.mount[2])."""
        mx, my, _, myaw = self.spec.mount
        return compose(base_pose_map, Pose2D(mx, my, myaw))

    def ranges(self, world: World, base_pose_map: Pose2D,
               extra_boxes: Sequence[Box] = ()) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise-free geometry: (range m, reflectivity in [0,1], cos of incidence), all
        (rings, columns) float32, range inf where nothing is hit (no limits applied)."""
        s = self.spec
        arrays = world.arrays if not extra_boxes else BoxArrays(
            list(world.boxes) + list(extra_boxes))
        sp = self.sensor_pose(base_pose_map)
        z0 = s.mount[2]
        R, C = s.rings, s.columns
        s_floor = self._s_floor[:, None]
        if arrays.n == 0:
            s_hit = np.broadcast_to(s_floor, (R, C)).astype(np.float32)
            hit_floor = np.isfinite(s_hit)
            refl = np.where(hit_floor, s.floor_reflectivity, 0.0).astype(np.float32)
            cos_inc = np.broadcast_to(np.abs(self._sin_el)[:, None], (R, C)).astype(np.float32)
            return s_hit / self._cos_el[:, None].astype(np.float32), refl, cos_inc

        # --- horizontal slabs, per (box, column), in the box's own frame ---------------
        ox_w = sp.x - arrays.cx
        oy_w = sp.y - arrays.cy
        ox = (arrays.cos * ox_w + arrays.sin * oy_w)[:, None]          # (B, 1)
        oy = (-arrays.sin * ox_w + arrays.cos * oy_w)[:, None]
        # Ray heading relative to the box: sensor yaw + azimuth - box yaw, built from the
        # precomputed azimuth cos/sin by angle addition (cheaper than B x C trig calls).
        dyaw = sp.yaw - arrays.yaw
        cd, sd = np.cos(dyaw)[:, None], np.sin(dyaw)[:, None]
        dx = cd * self._cos_az[None, :] - sd * self._sin_az[None, :]  # (B, C)
        dy = sd * self._cos_az[None, :] + cd * self._sin_az[None, :]
        hx, hy = arrays.hx[:, None], arrays.hy[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_x, inv_y = 1.0 / dx, 1.0 / dy
            tx1, tx2 = (-hx - ox) * inv_x, (hx - ox) * inv_x
            ty1, ty2 = (-hy - oy) * inv_y, (hy - oy) * inv_y
        txn, txf = np.minimum(tx1, tx2), np.maximum(tx1, tx2)
        tyn, tyf = np.minimum(ty1, ty2), np.maximum(ty1, ty2)
        a = np.maximum(txn, tyn)                    # entry, horizontal distance
        b = np.minimum(txf, tyf)                    # exit
        x_face = txn >= tyn                         # entry through an x face (normal +-x)
        # Boxes whose footprint the horizontal ray misses, or that contain the sensor (its
        # own body, were it passed in), can never be hit: push their entry to inf.
        a = np.where((a <= b) & (a >= 0.0), a, np.inf).astype(np.float32)
        b = b.astype(np.float32)

        # --- vertical slabs, per (box, ring): z(s) = z0 + s * tan(el) in [0, height] ---
        tan = self._tan_el[None, :]                                    # (1, R)
        h = arrays.height[:, None]                                     # (B, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z1 = (0.0 - z0) / tan
            z2 = (h - z0) / tan
        flat = tan == 0.0
        inside_z = (z0 >= 0.0) & (z0 <= h)
        c = np.where(flat, np.where(inside_z, -np.inf, np.inf), np.minimum(z1, z2))
        d = np.where(flat, np.where(inside_z, np.inf, -np.inf), np.maximum(z1, z2))
        c = c.astype(np.float32)
        d = d.astype(np.float32)

        # --- all rays x all boxes: (B, R, C), box axis first so the reductions over it
        # are element-wise passes over contiguous (R, C) planes -----------------------------
        near = np.maximum(a[:, None, :], c[:, :, None])
        far = np.minimum(b[:, None, :], d[:, :, None])
        near[near > far] = np.inf
        ib = np.argmin(near, axis=0)                                   # (R, C) box index
        s_box = np.take_along_axis(near, ib[None], axis=0)[0]
        s_hit = np.minimum(s_box, s_floor.astype(np.float32))
        hit_floor = s_floor <= s_box

        # --- surface properties of the nearest hit ----------------------------------------
        cols = self._cols[None, :]
        top = c[ib, np.arange(R)[:, None]] > a[ib, cols]               # entered via the lid
        xf = x_face[ib, cols]
        cos_h = np.where(xf, np.abs(dx[ib, cols]), np.abs(dy[ib, cols]))
        abs_sin = np.abs(self._sin_el)[:, None]
        cos_inc = np.where(hit_floor | top, abs_sin, cos_h * self._cos_el[:, None])
        refl = np.where(hit_floor, s.floor_reflectivity, arrays.reflectivity[ib])
        rng = s_hit / self._cos_el[:, None].astype(np.float32)
        return rng, refl.astype(np.float32), cos_inc.astype(np.float32)

    def scan(self, world: World, base_pose_map: Pose2D,
             extra_boxes: Sequence[Box] = ()) -> Dict[str, np.ndarray]:
        """One organized scan from base_link at `base_pose_map` (map frame).

        `extra_boxes` are obstacles for this scan only, typically the other robots
        (see world.robot_box). Returns (rings, columns) arrays:
          x, y, z (float32, m, sensor frame; NaN = no return), range_mm (uint32, 0 = none),
          intensity (float32 signal), reflectivity (uint16, 0-100 lambertian percent),
          ambient (uint16), ring (uint16), t (uint32 ns since the scan start).
        """
        rng_true, refl, cos_inc = self.ranges(world, base_pose_map, extra_boxes)
        return sensor_returns(self.spec, rng_true, refl, cos_inc, self._rng,
                              (self._ux, self._uy, self._uz), self._t, self._ring)


def sensor_returns(spec: LidarSpec, rng_true: np.ndarray, refl: np.ndarray,
                   cos_inc: np.ndarray, gen: np.random.Generator, unit_rays, t: np.ndarray,
                   ring: np.ndarray) -> Dict[str, np.ndarray]:
    """The sensor model on top of true geometry (shared by every ray caster): range noise,
    range limits, dropouts as NaN, Lambertian intensity, ambient, and the organized output
    dict of Lidar.scan. Draws from `gen` in a fixed order, so scans are deterministic."""
    s = spec
    shape = rng_true.shape
    noise = gen.standard_normal(shape, dtype=np.float32)
    r = rng_true + np.float32(s.range_noise_sigma) * noise
    valid = (np.isfinite(rng_true) & (rng_true <= s.max_range)
             & (rng_true >= s.min_range) & (r > 0.0))
    if s.dropout_prob > 0.0:
        valid &= gen.random(shape, dtype=np.float32) >= s.dropout_prob
    r = np.where(valid, r, np.float32(np.nan))
    # Signal ~ reflectivity x cos(incidence) / range^2 (Lambertian return), in counts
    # of the order the OS1 reports; the 1 m clamp stands in for near-field saturation.
    inten = 3000.0 * refl * cos_inc / np.maximum(r, 1.0) ** 2
    inten = np.where(valid, inten, 0.0).astype(np.float32)
    ambient = s.ambient_level * (1.0 + 0.25 * gen.standard_normal(shape, dtype=np.float32))
    ux, uy, uz = unit_rays
    return {
        "x": r * ux,
        "y": r * uy,
        "z": r * uz,
        "intensity": inten,
        "t": t.copy(),
        "reflectivity": np.where(valid, np.round(refl * 100.0), 0).astype(np.uint16),
        "ring": ring.copy(),
        "ambient": np.clip(ambient, 0.0, 65535.0).astype(np.uint16),
        "range_mm": np.where(valid, np.round(r * 1000.0), 0).astype(np.uint32),
    }


LIDAR_FAULTS = ("", "zero", "nan", "empty", "front_dark")


def lidar_fault(scan: Dict[str, np.ndarray], fault: str) -> Dict[str, np.ndarray]:
    """An organized scan (Lidar.scan's dict) as a failing sensor would deliver it (the fault
    drills): 'zero', every return (0, 0, 0) as ouster-ros reports no-returns; 'nan', every
    return NaN; 'empty', no points at all (1 x 0); 'front_dark', the beams looking forward
    (sensor azimuth within +-90 deg) return nothing, a covered front window; '' as it is."""
    if fault not in LIDAR_FAULTS:
        raise ValueError("fault_lidar must be one of %s" % (LIDAR_FAULTS,))
    if not fault:
        return scan
    if fault == "empty":
        return {k: v[:1, :0] for k, v in scan.items()}   # 1 x 0, as drivers send it
    out = {k: v.copy() for k, v in scan.items()}
    if fault == "front_dark":
        az = np.arctan2(scan["y"], scan["x"])   # NaN where there is no return anyway
        with np.errstate(invalid="ignore"):
            off = np.abs(az) < 0.5 * math.pi
        off &= np.isfinite(az)
    else:
        off = np.ones(scan["x"].shape, dtype=bool)
    value = np.float32(np.nan) if fault == "nan" else np.float32(0.0)
    for k in ("x", "y", "z"):
        out[k][off] = value
    for k in ("intensity", "range_mm", "reflectivity"):
        out[k][off] = 0
    return out
