"""Run the perception pipeline on one recorded cloud and write what it made for a person to
look at: the voxel grid as PLY (open3d VoxelGrid, colour = point count) and a PNG with the
bird's-eye occupancy and the signed distance field (matplotlib, Agg).

    inspect_cloud run_0001/ --topic /points --index 10 --extrinsic 0 0 0.4 0 --out-dir out/
    inspect_cloud scan.pcd --resolution 0.05 --outlier-filter

The base is placed at the odom origin, so the window is centred on the robot.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, Optional, Sequence

import numpy as np

from wm_common.geometry import Pose2D
from wm_perception.pipeline import Perception, PerceptionConfig, PerceptionOutput
from wm_perception.tools.replay import read_one


def write_voxel_ply(path: str, out: PerceptionOutput) -> None:
    """The voxels as an open3d VoxelGrid PLY, coloured by point count (viridis-like ramp)."""
    import open3d as o3d
    vg = out.voxels
    centres = vg.centers()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres))
    if vg.n_voxels:
        c = np.log1p(vg.values.astype(np.float64))
        c = (c - c.min()) / max(float(np.ptp(c)), 1e-9)
        pc.colors = o3d.utility.Vector3dVector(np.stack([c, 0.3 + 0.5 * c, 1.0 - c], axis=1))
    hi = vg.origin + vg.dims * vg.resolution
    grid = o3d.geometry.VoxelGrid.create_from_point_cloud_within_bounds(
        pc, float(vg.resolution), vg.origin, hi)
    if not o3d.io.write_voxel_grid(path, grid):
        raise IOError("open3d could not write %s" % path)


def write_birdseye_png(path: str, out: PerceptionOutput, min_points: int,
                       title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wm_perception.voxel_grid import occupancy_2d
    f = out.distance_field
    sdf = np.asarray(f.data)
    ny, nx = sdf.shape
    ext = (f.origin_x, f.origin_x + nx * f.resolution, f.origin_y, f.origin_y + ny * f.resolution)
    occ = occupancy_2d(out.voxels, min_points)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    axes[0].imshow(occ, origin="lower", extent=ext, cmap="gray_r", interpolation="nearest")
    axes[0].set_title("occupancy (%d voxels, %d points)" % (out.voxels.n_voxels,
                                                            out.n_points_used))
    lim = float(np.abs(sdf).max()) or 1.0
    im = axes[1].imshow(sdf, origin="lower", extent=ext, cmap="RdBu", vmin=-lim, vmax=lim,
                        interpolation="nearest")
    axes[1].contour(sdf, levels=[0.0], colors="k", linewidths=0.5, origin="lower", extent=ext)
    axes[1].set_title("signed distance [m]")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    for ax in axes:
        ax.plot([0.0], [0.0], "r^", markersize=8)
        ax.set_xlabel("odom x [m]")
        ax.set_ylabel("odom y [m]")
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def inspect(path: str, out_dir: str, index: int = 0, topic: Optional[str] = None,
            extrinsic: Sequence[float] = (0.0, 0.0, 0.4, 0.0),
            config: Optional[PerceptionConfig] = None,
            prefix: Optional[str] = None) -> Dict[str, object]:
    """Process the index-th cloud of `path`; returns the output and the written paths."""
    cfg = config or PerceptionConfig()
    rec = read_one(path, index, topic)
    out = Perception(cfg).process(rec.xyz, extrinsic, Pose2D(0.0, 0.0, 0.0))
    os.makedirs(out_dir, exist_ok=True)
    if prefix is None:
        prefix = "%s_%d" % (os.path.basename(os.path.normpath(path)).split(".")[0], index)
    ply = os.path.join(out_dir, prefix + "_voxels.ply")
    png = os.path.join(out_dir, prefix + "_birdseye.png")
    write_voxel_ply(ply, out)
    write_birdseye_png(png, out, cfg.min_points_per_voxel,
                       "%s #%d %s (%d points)" % (os.path.basename(path), index,
                                                  rec.topic, rec.xyz.shape[0]))
    return {"output": out, "ply": ply, "png": png, "cloud": rec}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="PCD/PLY file or rosbag2 bag (directory, .mcap, .db3)")
    ap.add_argument("--topic", default=None, help="bag topic (default: any PointCloud2)")
    ap.add_argument("--index", type=int, default=0, help="which cloud of a bag")
    ap.add_argument("--extrinsic", type=float, nargs=4, default=[0.0, 0.0, 0.4, 0.0],
                    metavar=("X", "Y", "Z", "YAW"), help="sensor pose in the base frame")
    ap.add_argument("--resolution", type=float, default=0.1)
    ap.add_argument("--window", type=float, default=16.0, help="window side [m]")
    ap.add_argument("--z-min", type=float, default=0.05)
    ap.add_argument("--z-max", type=float, default=1.8)
    ap.add_argument("--min-range", type=float, default=0.35)
    ap.add_argument("--max-range", type=float, default=15.0)
    ap.add_argument("--min-points", type=int, default=1)
    ap.add_argument("--outlier-filter", action="store_true")
    ap.add_argument("--out-dir", default=".")
    args = ap.parse_args(argv)
    cfg = PerceptionConfig(resolution=args.resolution, size_xy=args.window, z_min=args.z_min,
                           z_max=args.z_max, min_range=args.min_range,
                           max_range=args.max_range, min_points_per_voxel=args.min_points,
                           outlier_filter=args.outlier_filter)
    res = inspect(args.path, args.out_dir, args.index, args.topic, args.extrinsic, cfg)
    out = res["output"]
    print("%d points in, %d used, %d voxels%s\nwrote %s\nwrote %s" % (
        out.n_points_in, out.n_points_used, out.voxels.n_voxels,
        ", %d outliers dropped" % out.n_outliers if args.outlier_filter else "",
        res["ply"], res["png"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
