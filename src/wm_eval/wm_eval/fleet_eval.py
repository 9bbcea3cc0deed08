"""The full-stack part of `make eval`: four robots sharing the fleet in warehouse_large, each
driven through a seeded sequence of goals by the navigate_to_pose action, every node a real
process over DDS (simulator on MuJoCo owning /clock, per robot perception, planner, safety
gate and fleet client through a real redis-server), with wm_eval.runner.

A goal that ends unreached (the planner aborts it with a reason once its recoveries are used
up) is counted and the robot goes on to its next one, so one bad goal never hides the rest.

Plain Python (the runner brings up the ROS side); Python 3.8 compatible.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from wm_eval.episode_eval import wilson
from wm_eval.runner import run_scenario
from wm_common.geometry import Pose2D
from wm_common.map_io import OccupancyMap
from wm_planner.global_planner import GlobalPlanner
from wm_sim.scenario import RobotSpec, Scenario, load_world

GOAL_CLEARANCE = 0.8     # m from the nearest static obstacle
GOAL_SEPARATION = 1.2    # m between any two goals (a robot parked at its last goal is no trap)
MIN_LEG = 3.0            # m, straight line from one goal to the next
ROUTE_RADIUS = 0.45      # m, the reachability check's route clearance
# simulated time per goal: the route at this mean speed (turns, yields, other robots) plus
# a margin, summed over a robot's goals, is the scenario's duration
BUDGET_SPEED = 0.3       # m/s
BUDGET_MARGIN = 15.0     # s per goal


def fleet_scenario(seed: int, goals_total: int = 100, robots: int = 4,
                   world_name: str = "warehouse_large") -> Scenario:
    """`robots` robots at the world's spawns, goals_total / robots goals each: free points
    GOAL_CLEARANCE from the shelves, at least MIN_LEG from the previous goal, reachable by a
    route, and GOAL_SEPARATION from every other goal."""
    world = load_world(world_name)
    occ, origin = world.rasterize(0.05)
    planner = GlobalPlanner(OccupancyMap(occ.astype(np.int16), 0.05, origin.x, origin.y),
                            ROUTE_RADIUS, inflation=0.0)
    rng = np.random.default_rng([int(seed), 0xF1EE7])
    xmin, ymin, xmax, ymax = world.bounds
    spawns = list(world.spawns.values())[:robots]
    per = int(math.ceil(goals_total / robots))
    taken: List[np.ndarray] = [np.array(s[:2]) for s in spawns]
    specs = []
    budgets = []
    for i, spawn in enumerate(spawns):
        goals: List[Pose2D] = []
        here = np.array(spawn[:2])
        budget = 0.0
        for _ in range(per if i < robots - 1 else goals_total - per * (robots - 1)):
            for _attempt in range(2000):
                p = np.array([rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)])
                if float(world.signed_distance(p)) < GOAL_CLEARANCE:
                    continue
                if np.hypot(*(p - here)) < MIN_LEG:
                    continue
                if min(float(np.hypot(*(p - q))) for q in taken) < GOAL_SEPARATION:
                    continue
                plan = planner.plan(here, p)
                if not plan.ok:
                    continue
                break
            else:
                raise RuntimeError("no goal found for robot %d (seed %d)" % (i + 1, seed))
            goals.append(Pose2D(float(p[0]), float(p[1]), float(rng.uniform(-math.pi, math.pi))))
            taken.append(p)
            here = p
            budget += plan.length / BUDGET_SPEED + BUDGET_MARGIN
        specs.append(RobotSpec("robot%d" % (i + 1), spawn, 0.0, goals))
        budgets.append(budget)
    duration = float(max(budgets))
    return Scenario("fleet_%d_goals" % goals_total, world_name, specs, duration=duration,
                    seed=int(seed))


def run(out: Path, seed: int, goals_total: int = 100, planner_params=None,
        wall_timeout: float = 3600.0, stop=None) -> Dict[str, Any]:
    sc = fleet_scenario(seed, goals_total)
    s = run_scenario(sc, out, engine="mujoco", wall_timeout=wall_timeout, stop=stop,
                     quiet=True, planner_params=planner_params or {}, keep_going=True)
    s["goals_planned"] = sum(len(r.goals) for r in sc.robots)
    return s


def summary(s: Mapping[str, Any]) -> Dict[str, Any]:
    """Success (with its interval) over the goals planned, and the KPIs of the run."""
    k = s["kpis"]
    planned = int(s.get("goals_planned") or k["goals"])
    reached = int(k["goals_reached"])
    failed = [(r, g) for r, gs in s["goals"].items() for g in gs if g.get("status") != "reached"]
    return {"planned": planned, "sent": int(k["goals"]), "reached": reached,
            "success": reached / planned if planned else None,
            "ci": wilson(reached, planned), "kpis": k, "failed": failed}


def report(s: Mapping[str, Any], model: str, png: str) -> str:
    sm = summary(s)
    k = sm["kpis"]

    def f(v, spec="%.1f"):
        return "n/a" if v is None else spec % v

    lines = [
        "| motion model | goals planned | sent | reached | success | 95 % Wilson interval | "
        "contacts / 1000 moves | nav error cm (mean, max) | time vs straight line | "
        "mean speed / top | latency p50 / p99 ms | sim s (x real time) |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|---|",
        "| %s | %d | %d | %d | %s | %s - %s | %s | %s, %s | %s | %s | %s / %s | %.0f (x%s) |" % (
            model, sm["planned"], sm["sent"], sm["reached"],
            f(100.0 * sm["success"] if sm["success"] is not None else None, "%.1f %%"),
            f(100.0 * sm["ci"][0], "%.1f %%"), f(100.0 * sm["ci"][1], "%.1f %%"),
            f(k["collisions_per_1000_moves"], "%.1f"), f(k["nav_error_cm_mean"]),
            f(k["nav_error_cm_max"]), f(k["time_vs_straight_line"], "%.2f"),
            f(k["mean_speed_fraction"], "%.2f"), f(k["latency_ms_p50"]),
            f(k["latency_ms_p99"]), k["sim_seconds"], f(k["real_time_factor"], "%.2f")),
        ""]
    if sm["failed"]:
        lines += ["Goals not reached:", "", "| robot | goal | status | error code | reason |",
                  "|---|---|---|---:|---|"]
        for r, g in sm["failed"]:
            lines.append("| %s | (%.1f, %.1f) | %s | %s | %s |" % (
                r, g["goal"][0], g["goal"][1], g.get("status"), g.get("error_code", ""),
                str(g.get("error_msg", "")).replace("|", "/")[:160]))
        lines.append("")
    lines.append("Paths: `%s`." % png)
    return "\n".join(lines) + "\n"


def goal_classes(goals: Mapping[str, Sequence[Mapping[str, Any]]]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for gs in goals.values():
        for g in gs:
            key = g.get("status", "?") if g.get("status") != "failed" else \
                "aborted: %s" % str(g.get("error_msg", "")).split(":")[0]
            out[key] = out.get(key, 0) + 1
    return out
