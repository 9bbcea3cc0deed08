"""Decode + crop + voxelize of VLP-16 / OS1-128 / 128x2048 clouds, with open3d and spconv's CPU
point-to-voxel generator as peers on the same cropped points, bounds and resolution; plus the
statistical outlier filter and the 2D occupancy + ESDF update.

    python benchmarks/bench_voxelize.py [--quick]

Before timing, every peer's occupied-voxel set is checked against ours (`check_same_voxels`).
Conventions that the check allows for:
- ours, spconv: half-open box, a point is in voxel floor((p - lo) / res) iff every index is in
  [0, dims) (ours evaluates it as (p - lo) * (1 / res), open3d and spconv divide: they can
  only differ for a point within an ulp of a face); open3d's
  create_from_point_cloud_within_bounds takes the same floor but does NOT drop points
  outside [min_bound, max_bound) (it returns voxels with negative or >= dims indices), so
  its voxels outside [0, dims) are discarded before comparing;
- spconv computes in float32 and returns (z, y, x); a point within 1e-4 cells of a face may
  land on either side, and only voxels of such points may differ.
Timed peer work: open3d = numpy -> PointCloud (Vector3dVector) + create_from_..._within_bounds
(reading the voxels back out, get_voxels(), is not timed: it builds Python objects and costs
more than the voxelization); spconv = float64 -> float32 copy + Point2VoxelCPU3d.point_to_voxel.
The `voxelize` rows give each voxelizer the cropped points in the layout it takes (ours:
Fortran order, as our crop returns them; peers: C order, copied before timing); the
end-to-end rows include that copy.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

try:
    import wm_perception  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_perception")]

from wm_common.geometry import Pose2D
from wm_common.point_layouts import OUSTER, VELODYNE, Layout, pack_points
from wm_perception.distance_field import signed_distance
from wm_perception.pipeline import Perception, PerceptionConfig, statistical_outlier_mask
from wm_perception.pointcloud import decode_points
from wm_perception.voxel_grid import occupancy_2d, voxelize

# benchmarks/ is on sys.path when run as a script or by run_all.py, but not when a test loads
# this file by path (src/wm_perception/test/test_voxelize_peers.py).
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)
from benchlib import main as bench_main, row, time_calls  # noqa: E402

SENSOR_IN_BASE = (0.2, 0.0, 0.4, 0.0)
BASE_IN_ODOM = Pose2D(12.34, -5.67, 0.8)

# name, layout, rings, columns, vertical field of view (deg), default repeats
CLOUDS = (
    ("vlp16_30k", VELODYNE, 16, 1875, 15.0, 200),
    ("os1_128_131k", OUSTER, 128, 1024, 22.5, 100),
    ("ouster_128x2048_262k", OUSTER, 128, 2048, 22.5, 50),
)
STAGES = ("decode", "crop", "voxelize", "voxelize_open3d", "voxelize_spconv",
          "decode+crop+voxelize", "decode+crop+voxelize_open3d",
          "decode+crop+voxelize_spconv", "outlier_filter_open3d", "outlier_filter_scipy",
          "occupancy+esdf")
# Ratio column: the peer's median over ours (how many times slower the peer is).
PEERS = {}
for _c in CLOUDS:
    for _p in ("open3d", "spconv"):
        PEERS["%s/voxelize_%s" % (_c[0], _p)] = "%s/voxelize" % _c[0]
        PEERS["%s/decode+crop+voxelize_%s" % (_c[0], _p)] = "%s/decode+crop+voxelize" % _c[0]
    PEERS["%s/outlier_filter_scipy" % _c[0]] = "%s/outlier_filter_open3d" % _c[0]


def scan(layout: Layout, rings: int, cols: int, fov_deg: float, seed: int = 0) -> bytes:
    """An organized scan from inside a 20 x 12 m hall with a shelf row (as bench_perception),
    packed in `layout` with the driver's per-point time (0.1 s sweep)."""
    rng = np.random.default_rng(seed)
    elev = np.radians(np.linspace(-fov_deg, fov_deg, rings))[:, None]
    az = np.linspace(-np.pi, np.pi, cols, endpoint=False)[None, :]
    dx, dy = np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az)
    dz = np.sin(elev) * np.ones_like(az)
    with np.errstate(divide="ignore"):
        tx = np.where(dx > 0, 8.0, 12.0) / np.abs(dx)
        ty = 6.0 / np.abs(dy)
        shelf = np.where(dy > 0, 1.5 / np.abs(dy), np.inf)
        floor = np.where(dz < 0, 0.4 / np.abs(dz), np.inf)
    t = np.minimum(np.minimum(tx, ty), np.minimum(shelf, floor))
    t = t * (1.0 + rng.normal(0.0, 0.002, t.shape))
    drop = rng.random(t.shape) < 0.05
    cols_ = {k: np.where(drop, np.nan, t * d).astype(np.float32).ravel()
             for k, d in (("x", dx), ("y", dy), ("z", dz))}
    n = rings * cols
    frac = (np.arange(n) % cols) / float(cols)
    if layout is OUSTER:
        cols_.update(t=(frac * 1e8).astype(np.int64), ring=np.repeat(np.arange(rings), cols))
    else:
        cols_.update(time=frac * 0.1 - 0.1, ring=np.repeat(np.arange(rings), cols))
    return pack_points(layout, cols_, height=rings)


def _ijk_set(ijk: np.ndarray) -> Set[Tuple[int, int, int]]:
    return set(map(tuple, np.asarray(ijk, dtype=np.int64).tolist()))


def near_face_voxels(points: np.ndarray, origin, res: float, eps: float = 1e-4):
    """Voxels that points within eps cells of a voxel face may land in (either side)."""
    q = (np.asarray(points, dtype=np.float64) - np.asarray(origin, dtype=np.float64)) / res
    r = np.round(q)
    on_face = np.abs(q - r) < eps                   # (N, 3): axis by axis
    rows = on_face.any(axis=1)
    q, r, on_face = q[rows], r[rows], on_face[rows]
    out: Set[Tuple[int, int, int]] = set()
    for sx in (0, 1):
        for sy in (0, 1):
            for sz in (0, 1):
                side = np.array([sx, sy, sz])
                out |= _ijk_set(np.where(on_face, r - side, np.floor(q)))
    return out


def check_same_voxels(ours: np.ndarray, peer: np.ndarray, points, origin, res: float,
                      what: str) -> None:
    """Assert the (M, 3) voxel index sets agree except for voxels of near-face points."""
    a, b = _ijk_set(ours), _ijk_set(peer)
    diff = a ^ b
    if diff:
        unexplained = diff - near_face_voxels(points, origin, res)
        if unexplained:
            raise AssertionError("%s: %d voxels differ from ours (%d not explained by "
                                 "points on a voxel face), e.g. %s" % (
                                     what, len(diff), len(unexplained),
                                     sorted(unexplained)[:5]))


class Open3dVoxelizer:
    def __init__(self, origin, res: float, dims):
        import open3d as o3d
        self.o3d = o3d
        self.lo = np.asarray(origin, dtype=np.float64)
        self.hi = self.lo + np.asarray(dims) * res
        self.res = float(res)
        self.dims = np.asarray(dims, dtype=np.int64)

    def __call__(self, pts: np.ndarray):
        pc = self.o3d.geometry.PointCloud(self.o3d.utility.Vector3dVector(pts))
        return self.o3d.geometry.VoxelGrid.create_from_point_cloud_within_bounds(
            pc, self.res, self.lo, self.hi)

    def ijk(self, grid) -> np.ndarray:
        vox = grid.get_voxels()
        ijk = np.array([v.grid_index for v in vox], dtype=np.int64).reshape(-1, 3)
        inside = ((ijk >= 0) & (ijk < self.dims)).all(axis=1)
        return ijk[inside]


class SpconvVoxelizer:
    def __init__(self, origin, res: float, dims):
        import cumm.tensorview as tv
        from spconv.utils import Point2VoxelCPU3d
        self.tv = tv
        lo = [float(v) for v in origin]
        hi = [lo[k] + float(dims[k]) * res for k in range(3)]
        total = int(np.prod(dims))
        # max_num_voxels = every voxel of the box: spconv silently drops voxels beyond it.
        self.gen = Point2VoxelCPU3d([float(res)] * 3, lo + hi, 3, total, 1)

    def __call__(self, pts: np.ndarray):
        p32 = np.ascontiguousarray(pts, dtype=np.float32)
        return self.gen.point_to_voxel(self.tv.from_numpy(p32))

    @staticmethod
    def ijk(res) -> np.ndarray:
        return res[1].numpy().astype(np.int64)[:, ::-1]   # (z, y, x) -> (x, y, z)


def _bench_cloud(name, layout, rings, cols, fov, repeats, perception, peers):
    data = scan(layout, rings, cols, fov)
    step = layout.point_step
    cfg = perception.config
    origin = perception.window_origin(BASE_IN_ODOM)
    dims = perception.dims

    def decode():
        return decode_points(layout.fields, data, cols, rings, step, cols * step, False,
                             time_field=layout.time_field, time_scale=layout.time_scale).xyz

    xyz = decode()

    def crop():
        return perception.crop_to_odom(xyz, SENSOR_IN_BASE, BASE_IN_ODOM)

    pts = crop()               # Fortran order: what our crop hands to our voxelize
    pts_c = np.ascontiguousarray(pts)   # C order, made untimed: what the peers take

    def ours():
        return voxelize(pts, origin, cfg.resolution, dims)

    grid = ours()
    fns = {"decode": decode, "crop": crop, "voxelize": ours,
           "decode+crop+voxelize": lambda: voxelize(
               perception.crop_to_odom(decode(), SENSOR_IN_BASE, BASE_IN_ODOM),
               origin, cfg.resolution, dims)}
    for peer_name, peer in peers.items():
        check_same_voxels(grid.ijk(), peer.ijk(peer(pts_c)), pts, origin, cfg.resolution,
                          "%s/%s" % (name, peer_name))
        fns["voxelize_" + peer_name] = (lambda p: lambda: p(pts_c))(peer)
        fns["decode+crop+voxelize_" + peer_name] = (lambda p: lambda: p(np.ascontiguousarray(
            perception.crop_to_odom(decode(), SENSOR_IN_BASE, BASE_IN_ODOM))))(peer)
    n_out = max(5, repeats // 10)
    slow = {}
    if "open3d" in peers:
        slow["outlier_filter_open3d"] = lambda: statistical_outlier_mask(
            pts_c, cfg.outlier_neighbors, cfg.outlier_std_ratio, backend="open3d")
    slow["outlier_filter_scipy"] = lambda: statistical_outlier_mask(
        pts, cfg.outlier_neighbors, cfg.outlier_std_ratio, backend="scipy")
    fns["occupancy+esdf"] = lambda: signed_distance(
        occupancy_2d(grid, cfg.min_points_per_voxel), cfg.resolution, cfg.max_distance)
    rows = []
    for stage in STAGES:
        if stage in fns:
            rows.append(row("%s/%s" % (name, stage), time_calls(fns[stage], repeats, warmup=3)))
        elif stage in slow:
            rows.append(row("%s/%s" % (name, stage), time_calls(slow[stage], n_out, warmup=1)))
    return rows


def make_peers(origin, res, dims):
    peers = {}
    for name, cls in (("open3d", Open3dVoxelizer), ("spconv", SpconvVoxelizer)):
        try:
            peers[name] = cls(origin, res, dims)
        except ImportError as exc:
            print("bench_voxelize: peer %s skipped (%s)" % (name, exc), file=sys.stderr)
    return peers


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} (n: timed repetitions)."""
    perception = Perception(PerceptionConfig())
    peers = make_peers(perception.window_origin(BASE_IN_ODOM),
                       perception.config.resolution, perception.dims)
    rows: List[Dict[str, object]] = []
    for name, layout, rings, cols, fov, default_repeats in CLOUDS:
        rows += _bench_cloud(name, layout, rings, cols, fov, repeats or default_repeats,
                             perception, peers)
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, peers=PEERS)


if __name__ == "__main__":
    sys.exit(main())
