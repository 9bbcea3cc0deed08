"""Cost of the simulator's LiDAR ray casting (it shares the CPU with the robot's nodes in the
demo and the system tests).

    python benchmarks/bench_sim.py [--quick]
"""
from __future__ import annotations

from typing import Dict, List, Optional

from wm_common.geometry import Pose2D
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.world import robot_box, warehouse

from benchlib import main as bench_main, row, time_calls


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    rows = []
    pose = Pose2D(8.0, 6.0, 0.3)
    for world_name in ("small", "large"):
        world = warehouse(world_name)
        others = [robot_box(Pose2D(10.0, 6.5, 1.0)), robot_box(Pose2D(6.0, 5.5, 0.0))]
        for rings, cols in ((16, 512), (16, 1024), (64, 1024)):
            lidar = Lidar(LidarSpec(rings=rings, columns=cols), seed=0)
            t = time_calls(lambda lidar=lidar, world=world, others=others:
                           lidar.scan(world, pose, others), repeats or 100)
            rows.append(row("lidar_scan/%s/%dx%d" % (world_name, rings, cols), t))
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
