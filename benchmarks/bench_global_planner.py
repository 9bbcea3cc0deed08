"""Latency of the global route planner on the shipped warehouse maps (config/maps, 0.05 m).

    python benchmarks/bench_global_planner.py [--quick]

Times `GlobalPlanner.plan` on warehouse_small and warehouse_large, planning on a 0.1 m grid
(the default), for a few start/goal pairs:
  * cold: the search tree from the goal is rebuilt (a new goal, or the map changed: the
    cost layers and edge weights are rebuilt too), which is what every goal change and
    every live-layer change costs;
  * warm: the same goal from a start 0.5 m further on, the 1 Hz re-plan while nothing
    changed (the tree is cached: walk + shortcut only);
and, as peers for the design choice: the same cold plan on the map's own 0.05 m grid,
and a plain heapq A* over the same 0.1 m graph (octile heuristic, no smoothing).
Plus `update_live` with a 16 x 16 m, 0.1 m distance field in a rotated odom frame: a
pallet appearing / disappearing every call (the layer changes: its EDT is redone), and
an unchanged field; and the path_follow critic's score on an MPPI batch (K samples of
H = 10 steps). Prints a markdown table; `run()` returns the rows.
"""
from __future__ import annotations

import heapq
import math
import os
import sys
from typing import Dict, List, Optional

import numpy as np

try:
    import wm_planner  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_planner")]

from wm_common.geometry import Pose2D, inverse, transform_points
from wm_common.grid import Grid2D
from wm_common.map_io import read_map
from wm_planner.critic_data import CriticData
from wm_planner.critics import PathFollowCritic
from wm_planner.global_planner import GlobalPlanner
from wm_planner.models import Goal
from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState

from benchlib import main as bench_main, row, time_calls

MAPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "config", "maps")
ROBOT_RADIUS = 0.33
# (world, case, start, goal): map frame.
CASES = [
    ("warehouse_small", "next aisle", (4.5, 5.5), (4.5, 8.5)),
    ("warehouse_small", "across (robot_0)", (1.2, 2.0), (16.0, 12.0)),
    ("warehouse_large", "3 aisles away", (4.5, 6.0), (4.5, 15.5)),
    ("warehouse_large", "across (robot_0)", (1.2, 2.5), (25.0, 15.0)),
]
PEERS = {
    "plan_cold/warehouse_large/across (robot_0), 0.05 m grid":
        "plan_cold/warehouse_large/across (robot_0)",
    "astar_heapq/warehouse_large/across (robot_0)": "plan_cold/warehouse_large/across (robot_0)",
    "plan_warm/warehouse_large/across (robot_0)": "plan_cold/warehouse_large/across (robot_0)",
}


def astar_heapq(planner: GlobalPlanner, start, goal) -> float:
    """Cost of the cheapest cell path by a textbook heapq A* on the planner's graph."""
    planner.clearance(np.asarray(start))  # makes sure the edge weights are built
    weights = planner._weights.reshape(-1, 8)
    nbr = planner._indices.reshape(-1, 8)
    w, r = planner.width, planner.resolution
    s = int((start[1] - planner.origin_y) / r) * w + int((start[0] - planner.origin_x) / r)
    g = int((goal[1] - planner.origin_y) / r) * w + int((goal[0] - planner.origin_x) / r)
    gy, gx = divmod(g, w)
    best = {s: 0.0}
    heap = [(0.0, s)]
    closed = set()
    while heap:
        _, u = heapq.heappop(heap)
        if u == g:
            return best[u]
        if u in closed:
            continue
        closed.add(u)
        for k in range(8):
            c = weights[u, k]
            if c == math.inf:
                continue
            v = int(nbr[u, k])
            nc = best[u] + c
            if nc < best.get(v, math.inf):
                best[v] = nc
                vy, vx = divmod(v, w)
                dx, dy = abs(vx - gx), abs(vy - gy)
                h = r * (max(dx, dy) + (math.sqrt(2.0) - 1.0) * min(dx, dy))
                heapq.heappush(heap, (nc + h, v))
    return math.inf


def live_field(planner: GlobalPlanner, robot_xy, map_to_odom: Pose2D, pallet: bool,
               size: float = 16.0, res: float = 0.1) -> Grid2D:
    """A distance field around the robot in the odom frame: the static map's clearance
    plus, optionally, a 0.6 x 1.8 m pallet 2 m ahead of the robot."""
    n = int(round(size / res))
    c = transform_points(inverse(map_to_odom), np.asarray(robot_xy, dtype=float))
    ox, oy = c[0] - size / 2, c[1] - size / 2
    xs = ox + (np.arange(n) + 0.5) * res
    ys = oy + (np.arange(n) + 0.5) * res
    pts_m = transform_points(map_to_odom, np.stack(np.meshgrid(xs, ys), axis=-1))
    d = planner.clearance(pts_m)
    if pallet:
        px, py = robot_xy[0] + 2.0, robot_xy[1]
        dx = np.maximum(np.abs(pts_m[..., 0] - px) - 0.3, 0.0)
        dy = np.maximum(np.abs(pts_m[..., 1] - py) - 0.9, 0.0)
        d = np.minimum(d, np.hypot(dx, dy))
    return Grid2D(ox, oy, res, np.minimum(d, 5.0), outside=5.0, frame_id="odom")


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} (n: timed repetitions)."""
    reps = repeats or 100
    rows: List[Dict[str, object]] = []
    planners = {}
    for world, case, start, goal in CASES:
        if world not in planners:
            planners[world] = GlobalPlanner(read_map(os.path.join(MAPS, world + ".yaml")),
                                            ROBOT_RADIUS)
        p = planners[world]
        result = p.plan(start, goal)
        if not result.ok:
            raise RuntimeError("benchmark case %s/%s: %s" % (world, case, result.reason))
        extra = {"note": "route %.1f m, %d vertices" % (result.length, len(result.route))}

        def cold(p=p, start=start, goal=goal):
            p.reset_cache()
            p.plan(start, goal)
        rows.append(row("plan_cold/%s/%s" % (world, case), time_calls(cold, reps), **extra))
        # 0.5 m along the route's first leg: where the robot is at the next 1 Hz re-plan.
        leg = result.route[1] - np.asarray(start)
        ahead = tuple(np.asarray(start) + 0.5 * leg / max(1e-9, float(np.hypot(*leg))))
        rows.append(row("plan_warm/%s/%s" % (world, case), time_calls(
            lambda p=p, a=ahead, goal=goal: p.plan(a, goal), reps)))

    world, case, start, goal = CASES[3]
    fine = GlobalPlanner(planners[world].map, ROBOT_RADIUS, planning_resolution=0.05)

    def cold_fine():
        fine.reset_cache()
        fine.plan(start, goal)
    rows.append(row("plan_cold/%s/%s, 0.05 m grid" % (world, case),
                    time_calls(cold_fine, max(3, reps // 5))))
    rows.append(row("astar_heapq/%s/%s" % (world, case), time_calls(
        lambda: astar_heapq(planners[world], start, goal), max(3, reps // 10))))

    p = planners[world]
    pose = Pose2D(0.7, -0.4, 0.25)
    robot = (4.5, 6.0)
    fields = [live_field(p, robot, pose, True), live_field(p, robot, pose, False)]
    state = {"i": 0}

    def changing():
        field = fields[state["i"] % 2]  # the pallet appears, then it is gone
        state["i"] += 1
        if not p.update_live(field, pose):
            raise RuntimeError("the live layer should have changed")
    rows.append(row("update_live/16x16 m field, layer changes", time_calls(changing, reps)))
    rows.append(row("update_live/16x16 m field, unchanged", time_calls(
        lambda: p.update_live(fields[(state["i"] - 1) % 2], pose), reps)))  # the last one

    def replan_after_change():
        changing()
        p.plan(robot, CASES[3][3])
    rows.append(row("update_live + plan/%s (changed layer)" % world,
                    time_calls(replan_after_change, reps)))

    # The critic that follows the route, on an MPPI-sized batch around the robot.
    rng = np.random.default_rng(0)
    route = planners[world].plan(CASES[3][2], CASES[3][3]).route
    state = RobotState(CASES[3][2][0], CASES[3][2][1], 0.0, 0.5, 0.0)
    for k in (512, 2048):
        controls = np.clip(rng.normal([0.5, 0.0], [0.3, 0.6], (k, 10, 2)), -1.0, 1.0)
        data = CriticData(state, Goal(*CASES[3][3]), controls,
                          unicycle_rollout(state, controls, 0.1),
                          0.1, RobotLimits(), ROBOT_RADIUS, route=route)
        critic = PathFollowCritic()
        rows.append(row("path_follow critic/K=%d,H=10" % k, time_calls(
            lambda c=critic, d=data: c.score(d), reps * 3)))
    return rows


def note(r) -> str:
    return str(r.get("note", ""))


NOTE = note


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, peers=PEERS, note=note)


if __name__ == "__main__":
    sys.exit(main())
