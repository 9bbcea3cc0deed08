"""Cost of the simulator's LiDAR ray casting (it shares the CPU with the robot's nodes in the
demo and the system tests).

    python benchmarks/bench_sim.py [--quick]
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional

import numpy as np

from wm_common.geometry import Pose2D
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.world import robot_box, warehouse


def _time(fn, repeats: int) -> List[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    rows = []
    pose = Pose2D(8.0, 6.0, 0.3)
    for world_name in ("small", "large"):
        world = warehouse(world_name)
        others = [robot_box(Pose2D(10.0, 6.5, 1.0)), robot_box(Pose2D(6.0, 5.5, 0.0))]
        for rings, cols in ((16, 512), (16, 1024), (64, 1024)):
            lidar = Lidar(LidarSpec(rings=rings, columns=cols), seed=0)
            t = _time(lambda lidar=lidar, world=world, others=others:
                      lidar.scan(world, pose, others), repeats or 100)
            rows.append({"name": "lidar_scan/%s/%dx%d" % (world_name, rings, cols),
                         "median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
                         "n": len(t)})
    return rows


def to_markdown(rows) -> str:
    lines = ["| benchmark | median ms | p99 ms | n |", "|---|---:|---:|---:|"]
    lines += ["| %s | %.2f | %.2f | %d |" % (r["name"], r["median_ms"], r["p99_ms"], r["n"])
              for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(to_markdown(run(repeats=10 if args.quick else None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
