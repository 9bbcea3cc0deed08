"""Cost of the MuJoCo simulator backend: physics stepping (0.1 s of simulated time per call,
1 and 3 robots in warehouse('small')) and LiDAR scans by mj_multiRay, next to the analytic
LiDAR of the same scene (PEERS pairs them so the runner prints the ratio).

    python benchmarks/bench_mujoco.py [--quick]

A physics case's median_ms per 100 sim-ms gives the real-time factor: 100 / median_ms.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional

import numpy as np

from wm_common.geometry import Pose2D
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.mujoco_engine import MujocoEngine
from wm_sim.world import robot_box, warehouse

SCAN_SHAPES = ((16, 1024), (64, 1024), (128, 1024))

# MuJoCo scan case -> the analytic-Lidar case of the same scene and resolution.
PEERS = {"mujoco_scan/small/%dx%d" % rc: "analytic_scan/small/%dx%d" % rc
         for rc in SCAN_SHAPES}


def _time(fn, repeats: int) -> List[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _row(name: str, t: List[float]) -> Dict[str, object]:
    return {"name": name, "median_ms": float(np.median(t)),
            "p99_ms": float(np.percentile(t, 99)), "n": len(t)}


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    rows = []
    world = warehouse("small")
    for n in (1, 3):
        spawns = {k: world.spawns[k] for k in list(world.spawns)[:n]}
        eng = MujocoEngine(world, spawns)
        for i, rid in enumerate(eng.robot_ids):
            eng.set_command(rid, 0.6, 0.3 * (-1) ** i)
        t = _time(lambda eng=eng: eng.step(0.1), repeats or 30)
        rows.append(_row("mujoco_step_0.1s/small/%d_robot%s" % (n, "s" if n > 1 else ""), t))

    pose, other = Pose2D(8.0, 6.0, 0.3), Pose2D(10.0, 6.5, 1.0)
    for rings, cols in SCAN_SHAPES:
        spec = LidarSpec(rings=rings, columns=cols)
        eng = MujocoEngine(world, {"a": pose, "b": other}, lidar=spec)
        eng.step(0.02)
        reps = repeats or (50 if rings <= 16 else 20)
        rows.append(_row("mujoco_scan/small/%dx%d" % (rings, cols),
                         _time(lambda eng=eng: eng.scan("a"), reps)))
        lidar = Lidar(spec, seed=0)
        others = [robot_box(other)]
        rows.append(_row("analytic_scan/small/%dx%d" % (rings, cols),
                         _time(lambda lidar=lidar, others=others:
                               lidar.scan(world, pose, others), reps)))
    return rows


def to_markdown(rows) -> str:
    by_name = {r["name"]: r for r in rows}
    lines = ["| benchmark | median ms | p99 ms | n | note |", "|---|---:|---:|---:|---|"]
    for r in rows:
        note = ""
        if r["name"].startswith("mujoco_step") and r["median_ms"] > 0:
            note = "%.1fx real time" % (100.0 / r["median_ms"])
        peer = by_name.get(PEERS.get(r["name"], ""))
        if peer and peer["median_ms"] > 0:
            note = "%.2fx vs %s" % (r["median_ms"] / peer["median_ms"], peer["name"])
        lines.append("| %s | %.2f | %.2f | %d | %s |" % (r["name"], r["median_ms"],
                                                          r["p99_ms"], r["n"], note))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(to_markdown(run(repeats=5 if args.quick else None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
