"""Sensor cloud -> odom-frame voxels and 2D signed distance field for the local planner.

Frames: the sensor is mounted level on the base (extrinsic x, y, z, yaw); the base moves in
the plane of odom with z = 0 on the floor, so base z and odom z are the same height above the
floor. The output window is a square aligned to the odom axes, centred on the robot and
snapped to a global lattice of `resolution` cells: successive windows share cell
boundaries, so the field does not shimmer as the robot moves by fractions of a cell.

Optional stages, all off by default: deskew (motion compensation from per-point time and the
base twist, wm_perception.deskew), a statistical outlier filter on the cropped points (open3d's
remove_statistical_outlier when open3d is importable, else the same statistic on a scipy
cKDTree), and accumulation of voxel counts over a few scans with decay
(wm_perception.accumulate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_perception.accumulate import VoxelAccumulator
from wm_perception.deskew import deskew, parse_twist
from wm_perception.distance_field import signed_distance
from wm_perception.observed import ObservedWindow, ray_reach
from wm_perception.voxel_grid import VoxelGrid, occupancy_2d, voxelize


RAY_SAMPLE = 32768   # non-obstacle returns per cloud whose rays clear observed space, at most


@dataclass(frozen=True)
class PerceptionConfig:
    resolution: float = 0.1
    size_xy: float = 16.0            # side of the square odom-aligned window, metres
    z_min: float = 0.05              # above the floor in base frame: drops the floor
    z_max: float = 1.8               # above this the robot passes underneath
    max_range: float = 15.0          # horizontal range from the sensor
    min_range: float = 0.35          # horizontal range from the sensor: the robot's own body
    min_points_per_voxel: int = 1
    max_distance: float = 3.0        # distance field saturation, metres
    max_points: int = 2_000_000
    frame_id: str = "odom"
    # Vertical extent of the voxel grid from z_min [m]; None: z_max - z_min. Together with
    # size_xy and resolution it sets the grid dims (defaults: 160 x 160 x 18).
    size_z: Optional[float] = None
    deskew: bool = False             # needs t_rel and twist passed to process()
    outlier_filter: bool = False     # statistical outlier removal on the cropped points
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 2.0
    outlier_backend: str = "auto"    # 'auto' (open3d if importable), 'open3d', 'scipy'
    accumulate_scans: int = 1        # > 1: sum decayed voxel counts over this many scans
    accumulate_decay: float = 0.7    # per-scan factor on the older counts
    accumulate_min_count: float = 0.1  # accumulated voxels below this are dropped
    # The distance field from the points' occupancy on a grid this many times finer than
    # `resolution`, sampled back at the field's cell centres (fine_signed_distance). A voxel
    # is treated as solid to its edge, so a 0.1 m field reads a gap up to 0.1 m narrower on
    # each side than it is (a real 0.85 m gap as 0.65 m, which a 0.55 m body cannot thread);
    # 2 halves that. 1: the voxels' own occupancy (also whenever scans are accumulated).
    field_subdivision: int = 2
    # Observed space (wm_perception.observed): the field carries `unknown`, the cells no ray
    # has passed through or ended in while they were in the window.
    track_unknown: bool = True

    def validate(self) -> None:
        if not (self.resolution > 0.0 and self.size_xy >= 2 * self.resolution):
            raise ValueError("need resolution > 0 and a window of at least 2x2 cells")
        if not self.z_max > self.z_min:
            raise ValueError("z_max must exceed z_min")
        if self.size_z is not None and not self.size_z >= self.resolution:
            raise ValueError("size_z must be at least one cell")
        if int(self.outlier_neighbors) < 2 or not self.outlier_std_ratio > 0.0:
            raise ValueError("need outlier_neighbors >= 2 and outlier_std_ratio > 0")
        if self.outlier_backend not in ("auto", "open3d", "scipy"):
            raise ValueError("outlier_backend must be auto, open3d or scipy")
        if int(self.accumulate_scans) < 1 or not 0.0 < self.accumulate_decay <= 1.0:
            raise ValueError("need accumulate_scans >= 1 and 0 < accumulate_decay <= 1")
        if not 1 <= int(self.field_subdivision) <= 4:
            raise ValueError("field_subdivision must be 1..4")
        if not (0.0 <= self.min_range < self.max_range):
            raise ValueError("need 0 <= min_range < max_range")
        if not self.max_distance > 0.0:
            raise ValueError("max_distance must be positive")


@dataclass
class PerceptionOutput:
    voxels: VoxelGrid           # odom frame
    distance_field: Grid2D      # odom frame, outside = max_distance
    n_points_in: int
    n_points_used: int          # points of this cloud that landed in a voxel of the window
    n_outliers: int = 0         # dropped by the outlier filter
    deskewed: bool = False


@dataclass
class Prepared:
    """One sensor's cloud, ready to be merged (Perception.prepare)."""
    kept: np.ndarray            # (M, 3) odom points in the height band and range ring
    n_in: int                   # points the cloud delivered
    deskewed: bool
    rays: Optional[Tuple[Tuple[float, float], float, np.ndarray]] = None
    # (sensor x, y in odom, sensor yaw in odom, ray_reach bins) when unknown space is tracked


_O3D = None


def _open3d():
    """open3d, imported on first use (it takes a second to import), or None."""
    global _O3D
    if _O3D is None:
        try:
            import open3d
            _O3D = open3d
        except ImportError:
            _O3D = False
    return _O3D or None


def statistical_outlier_mask(points: np.ndarray, neighbors: int = 16, std_ratio: float = 2.0,
                             backend: str = "auto", workers: int = 1) -> np.ndarray:
    """(N,) bool, True for the points to keep: open3d's remove_statistical_outlier semantics.

    Each point's mean distance to its `neighbors` nearest points (the point itself included,
    at distance 0, as open3d's KNN returns it) is compared with the mean m and the sample
    standard deviation s (ddof=1) of those means over the cloud; a point is kept iff its mean
    is > 0 (not a pile of duplicates) and < m + std_ratio * s. backend 'auto' uses open3d
    when importable, else scipy's cKDTree (`workers` threads).
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n = p.shape[0]
    k = int(neighbors)
    if n == 0:
        return np.zeros(0, dtype=bool)
    o3d = _open3d() if backend in ("auto", "open3d") else None
    if backend == "open3d" and o3d is None:
        raise ImportError("outlier_backend='open3d' but open3d is not importable")
    if o3d is not None:
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))
        _, idx = pc.remove_statistical_outlier(nb_neighbors=k, std_ratio=float(std_ratio))
        keep = np.zeros(n, dtype=bool)
        keep[np.asarray(idx, dtype=np.int64)] = True
        return keep
    if n < 2:
        return np.zeros(n, dtype=bool)
    kk = min(k, n)
    dist, _ = cKDTree(p).query(p, k=kk, workers=workers)
    mean = dist.reshape(n, kk).mean(axis=1)
    valid = mean > 0
    n_valid = int(np.count_nonzero(valid))
    if n_valid < 2:
        return np.zeros(n, dtype=bool)
    m = mean[valid].mean()
    s = math.sqrt(float(np.sum((mean[valid] - m) ** 2)) / (n_valid - 1))
    return valid & (mean < m + std_ratio * s)


def fine_signed_distance(points_odom: np.ndarray, origin: Sequence[float], resolution: float,
                         n: int, k: int, min_points: int, max_distance: float,
                         coarse_occ: np.ndarray) -> np.ndarray:
    """(n, n) float32 distance field on the window's `resolution` lattice: outside
    obstacles, from the points' 2D occupancy on a k times finer grid (each fine cell solid to
    its edge, as signed_distance has it), read back at the coarse cell centres as the mean of
    each k x k block (for k = 2 the bilinear value at the block's centre): a surface reads
    at most resolution / k early instead of a whole cell. Inside obstacles (`coarse_occ`,
    the voxel columns), the depth of the voxel field, which the critics rank colliding
    samples by. One fine EDT (outside) and one coarse (inside): the inside EDT at the fine
    resolution would double the cost for depths nobody needs to the centimetre."""
    fr = resolution / k
    nf = n * k
    pts = np.asarray(points_odom)
    ix = np.floor((pts[:, 0] - origin[0]) / fr).astype(np.int64)
    iy = np.floor((pts[:, 1] - origin[1]) / fr).astype(np.int64)
    ok = (ix >= 0) & (ix < nf) & (iy >= 0) & (iy < nf)
    counts = np.bincount(iy[ok] * nf + ix[ok], minlength=nf * nf)
    occ = (counts >= max(1, int(min_points))).reshape(nf, nf)
    if not occ.any():
        return np.full((n, n), max_distance, dtype=np.float32)
    outside = ndimage.distance_transform_edt(~occ, sampling=fr)
    fine = np.where(occ, -0.5 * fr, outside - 0.5 * fr)
    field = fine.reshape(n, k, n, k).mean(axis=(1, 3))
    if coarse_occ.any():
        depth = 0.5 * resolution - ndimage.distance_transform_edt(coarse_occ,
                                                                  sampling=resolution)
        field = np.where(coarse_occ, np.minimum(field, depth), field)
    return np.clip(field, -max_distance, max_distance).astype(np.float32)


class Perception:
    def __init__(self, config: PerceptionConfig = PerceptionConfig()):
        config.validate()
        self.config = config
        res = config.resolution
        n_xy = max(int(round(config.size_xy / res)), 2)
        size_z = config.z_max - config.z_min if config.size_z is None else config.size_z
        n_z = max(int(math.ceil(size_z / res - 1e-9)), 1)
        self._dims = np.array([n_xy, n_xy, n_z], dtype=np.int64)
        self.accumulator = (VoxelAccumulator(config.accumulate_decay, config.accumulate_scans,
                                             config.accumulate_min_count)
                            if config.accumulate_scans > 1 else None)
        self.observed = ObservedWindow(res, n_xy, n_xy) if config.track_unknown else None

    @property
    def dims(self) -> np.ndarray:
        """(3,) voxel grid dims (nx, ny, nz)."""
        return self._dims.copy()

    def reset(self) -> None:
        """Drop accumulated scans (call on an odometry reset)."""
        if self.accumulator is not None:
            self.accumulator.reset()
        if self.observed is not None:
            self.observed = ObservedWindow(self.config.resolution, *self.observed.seen.shape)

    def window_origin(self, base_in_odom: Pose2D) -> np.ndarray:
        """(3,) odom corner of the window around the robot, on the global cell lattice."""
        res = self.config.resolution
        half = 0.5 * int(self._dims[0])
        ix = math.floor(base_in_odom.x / res - half + 0.5)
        iy = math.floor(base_in_odom.y / res - half + 0.5)
        return np.array([ix * res, iy * res, self.config.z_min], dtype=np.float64)

    def to_odom(self, xyz_sensor: np.ndarray, sensor_in_base: Sequence[float],
                base_in_odom: Pose2D):
        """((N, 3) float64 odom points, (sensor x, y) in odom)."""
        pts = xyz_sensor
        sx, sy, sz, syaw = (float(v) for v in sensor_in_base)
        # Sensor -> base and base -> odom folded into one planar rotation + translation, in
        # float64: odom coordinates grow large and float32 would lose centimetres.
        yaw = syaw + base_in_odom.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        cb, sb = math.cos(base_in_odom.yaw), math.sin(base_in_odom.yaw)
        tx = base_in_odom.x + cb * sx - sb * sy
        ty = base_in_odom.y + sb * sx + cb * sy
        px = pts[:, 0].astype(np.float64)
        py = pts[:, 1].astype(np.float64)
        odom = np.empty((pts.shape[0], 3), dtype=np.float64)
        odom[:, 0] = tx + c * px - s * py
        odom[:, 1] = ty + s * px + c * py
        odom[:, 2] = pts[:, 2] + sz
        return odom, (tx, ty)

    def crop_to_odom(self, xyz_sensor: np.ndarray, sensor_in_base: Sequence[float],
                     base_in_odom: Pose2D) -> np.ndarray:
        """Sensor points -> (M, 3) float64 odom points that pass the range ring and the
        height band, in Fortran order (each coordinate contiguous, which voxelize reads
        fastest; np.ascontiguousarray gives the C-ordered copy).

        The level sensor only yaws, so the horizontal range and the height are taken in the
        sensor frame, and only the points kept are transformed (float64, as to_odom)."""
        cfg = self.config
        pts = xyz_sensor
        sx, sy, sz, syaw = (float(v) for v in sensor_in_base)
        n = pts.shape[0]
        px = pts[:, 0].astype(np.float64)
        py = pts[:, 1].astype(np.float64)
        pz = pts[:, 2].astype(np.float64)
        r2 = px * px
        r2 += py * py
        keep = r2 >= cfg.min_range * cfg.min_range
        keep &= r2 <= cfg.max_range * cfg.max_range
        zs = pz + sz
        keep &= zs >= cfg.z_min
        keep &= zs <= cfg.z_max
        m = int(np.count_nonzero(keep))
        yaw = syaw + base_in_odom.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        cb, sb = math.cos(base_in_odom.yaw), math.sin(base_in_odom.yaw)
        tx = base_in_odom.x + cb * sx - sb * sy
        ty = base_in_odom.y + sb * sx + cb * sy
        out = np.empty((3, m), dtype=np.float64)
        if m == n:
            kx, ky = px, py
            out[2] = zs
        else:
            kx, ky = px[keep], py[keep]
            np.compress(keep, zs, out=out[2])
        np.multiply(kx, c, out=out[0])
        out[0] -= s * ky
        out[0] += tx
        np.multiply(kx, s, out=out[1])
        out[1] += c * ky
        out[1] += ty
        return out.T

    def process(self, xyz_sensor: np.ndarray, sensor_in_base: Sequence[float],
                base_in_odom: Pose2D, t_rel: Optional[np.ndarray] = None,
                twist: Optional[Sequence[float]] = None) -> PerceptionOutput:
        """One cloud -> voxels and distance field in odom.

        t_rel: (N,) per-point time in seconds relative to the cloud stamp (the stamp that
        base_in_odom belongs to); twist: base velocity in the body frame, (v, w) or
        (vx, vy, w). With config.deskew and both given, points are motion-compensated to
        the sensor pose at the stamp; otherwise they are used as they are.
        """
        return self.build([self.prepare(xyz_sensor, sensor_in_base, base_in_odom, t_rel,
                                        twist)], base_in_odom)

    def prepare(self, xyz_sensor: np.ndarray, sensor_in_base: Sequence[float],
                base_in_odom: Pose2D, t_rel: Optional[np.ndarray] = None,
                twist: Optional[Sequence[float]] = None) -> Prepared:
        """One sensor's cloud -> its odom points kept (and its rays). Each LiDAR's cloud is
        prepared at its own stamp and pose (base_in_odom at that stamp), so the clouds of
        several sensors meet in odom, motion-compensated (see build)."""
        cfg = self.config
        pts = np.asarray(xyz_sensor)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError("xyz_sensor must be (N, 3), got %s" % (pts.shape,))
        if pts.shape[0] > cfg.max_points:
            raise ValueError("%d points > max_points %d" % (pts.shape[0], cfg.max_points))
        deskewed = False
        if cfg.deskew and t_rel is not None and twist is not None:
            vx, vy, wz = parse_twist(twist)
            pts = deskew(pts, t_rel, (vx, vy), wz, sensor_in_base)
            deskewed = True
        kept = self.crop_to_odom(pts, sensor_in_base, base_in_odom)
        rays = self._rays(pts, sensor_in_base, base_in_odom) if self.observed is not None \
            else None
        return Prepared(kept, int(pts.shape[0]), deskewed, rays)

    def _rays(self, pts: np.ndarray, sensor_in_base: Sequence[float], base_in_odom: Pose2D):
        """The cloud's rays for the observed window: every obstacle return (height band,
        beyond min_range), and a sample of at most RAY_SAMPLE of the others (floor, above)."""
        cfg = self.config
        sx, sy, sz, syaw = (float(v) for v in sensor_in_base)
        x = pts[:, 0].astype(np.float64)
        y = pts[:, 1].astype(np.float64)
        zs = pts[:, 2].astype(np.float64) + sz
        valid = x * x + y * y >= cfg.min_range * cfg.min_range
        obst = valid & (zs >= cfg.z_min) & (zs <= cfg.z_max)
        others = np.flatnonzero(valid & ~obst)
        others = others[::max(1, others.size // RAY_SAMPLE)]
        sel = np.concatenate([np.flatnonzero(obst), others])
        reach = ray_reach(pts[sel], obst[sel], cfg.max_range)
        cb, sb = math.cos(base_in_odom.yaw), math.sin(base_in_odom.yaw)
        origin = (base_in_odom.x + cb * sx - sb * sy, base_in_odom.y + sb * sx + cb * sy)
        return origin, syaw + base_in_odom.yaw, reach

    def build(self, parts: Sequence[Prepared], base_in_odom: Pose2D) -> PerceptionOutput:
        """Prepared clouds of one or more sensors -> voxels and the distance field in the
        window around base_in_odom (the newest pose), with its unknown cells when tracked."""
        cfg = self.config
        n_in = sum(p.n_in for p in parts)
        deskewed = any(p.deskewed for p in parts)
        kept = parts[0].kept if len(parts) == 1 else np.concatenate([p.kept for p in parts])
        n_outliers = 0
        if cfg.outlier_filter and kept.shape[0]:
            inl = statistical_outlier_mask(kept, cfg.outlier_neighbors, cfg.outlier_std_ratio,
                                           cfg.outlier_backend)
            n_outliers = int(kept.shape[0] - np.count_nonzero(inl))
            kept = kept[inl]
        origin = self.window_origin(base_in_odom)
        grid = voxelize(kept, origin, cfg.resolution, self._dims)
        n_used = int(grid.values.sum())
        if self.accumulator is not None:
            grid = self.accumulator.add(grid)
        occ = occupancy_2d(grid, cfg.min_points_per_voxel)
        if cfg.field_subdivision > 1 and self.accumulator is None:
            sdf = fine_signed_distance(kept, origin, cfg.resolution, int(self._dims[0]),
                                       int(cfg.field_subdivision), cfg.min_points_per_voxel,
                                       cfg.max_distance, occ)
        else:
            sdf = signed_distance(occ, cfg.resolution, cfg.max_distance)
        unknown = None
        if self.observed is not None:
            obs = self.observed
            obs.move_to(origin[0], origin[1])
            for p in parts:
                if p.rays is not None:
                    obs.clear_rays(*p.rays)
            obs.mark(kept)
            unknown = ~obs.seen
        field = Grid2D(origin[0], origin[1], cfg.resolution, sdf, outside=cfg.max_distance,
                       frame_id=cfg.frame_id, unknown=unknown)
        return PerceptionOutput(grid, field, n_in, n_used, n_outliers, deskewed)
