"""Cost of the MuJoCo simulator backend: physics stepping (0.1 s of simulated time per call,
1 and 3 robots in warehouse('small')) and LiDAR scans by mj_multiRay, next to the analytic
LiDAR of the same scene (PEERS pairs them so the runner prints the ratio).

    python benchmarks/bench_mujoco.py [--quick]

A physics case's median_ms per 100 sim-ms gives the real-time factor: 100 / median_ms.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from wm_common.geometry import Pose2D
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.mujoco_engine import MujocoEngine
from wm_sim.world import robot_box, warehouse

from benchlib import main as bench_main, row, time_calls

SCAN_SHAPES = ((16, 1024), (64, 1024), (128, 1024))

# MuJoCo scan case -> the analytic-Lidar case of the same scene and resolution.
PEERS = {"mujoco_scan/small/%dx%d" % rc: "analytic_scan/small/%dx%d" % rc
         for rc in SCAN_SHAPES}


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    rows = []
    world = warehouse("small")
    for n in (1, 3):
        spawns = {k: world.spawns[k] for k in list(world.spawns)[:n]}
        eng = MujocoEngine(world, spawns)
        for i, rid in enumerate(eng.robot_ids):
            eng.set_command(rid, 0.6, 0.3 * (-1) ** i)
        t = time_calls(lambda eng=eng: eng.step(0.1), repeats or 30)
        rows.append(row("mujoco_step_0.1s/small/%d_robot%s" % (n, "s" if n > 1 else ""), t))

    pose, other = Pose2D(8.0, 6.0, 0.3), Pose2D(10.0, 6.5, 1.0)
    for rings, cols in SCAN_SHAPES:
        spec = LidarSpec(rings=rings, columns=cols)
        eng = MujocoEngine(world, {"a": pose, "b": other}, lidar=spec)
        eng.step(0.02)
        reps = repeats or (50 if rings <= 16 else 20)
        rows.append(row("mujoco_scan/small/%dx%d" % (rings, cols),
                        time_calls(lambda eng=eng: eng.scan("a"), reps)))
        lidar = Lidar(spec, seed=0)
        others = [robot_box(other)]
        rows.append(row("analytic_scan/small/%dx%d" % (rings, cols),
                        time_calls(lambda lidar=lidar, others=others:
                                   lidar.scan(world, pose, others), reps)))
    return rows


def real_time_note(r) -> str:
    """A physics case's real-time factor (100 sim-ms per call)."""
    if r["name"].startswith("mujoco_step") and r["median_ms"] > 0:
        return "%.1fx real time" % (100.0 / r["median_ms"])
    return ""


# the last table column in BENCHMARKS.md (run_all.py)
NOTE = real_time_note


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, peers=PEERS, quick_repeats=5, note=real_time_note)


if __name__ == "__main__":
    raise SystemExit(main())
