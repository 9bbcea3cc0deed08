"""What the control cycle (wm_planner.controller.Controller.step) costs over the plan itself.

    python benchmarks/bench_controller.py [--quick]

One robot in warehouse_small (the static map; the true distance field of the perception
node's 16 m window, a fresh field object every call as every cycle has), goal across the map,
config/robot.yaml's planner (K = 512, H = 10, every critic), with kinematics and with the
shipped world model, recoveries idle (the progress checker is satisfied):
  * plan: MPPI.plan on the route (its cost-to-go built inside, as in every cycle);
  * route + plan: RouteManager.update then MPPI.plan, what the planner node ran per cycle
    before the controller existed (route, then plan);
  * controller.step: the whole cycle (goal check, route, progress checker, the cost-to-go
    the turn on the spot and the plan share, the turn's decision, the plan, the limiter).
The ratio of controller.step to route + plan is the controller's own cost (issue: within 5 %).
The three are timed interleaved, call by call, so a busy machine loads them alike.
"""
from __future__ import annotations

import os
import sys
import time
from typing import List, Optional

try:
    import wm_eval  # noqa: F401
except ImportError:  # a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, p) for p in ("wm_common", "wm_planner", "wm_sim",
                                                    "wm_eval", "wm_world_model")]

from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_eval.episode import (WORLD_MODEL, TruthField, motion_model_for, planner_params,
                                static_world)
from wm_planner.controller import Controller, CycleInput
from wm_planner.models import Goal
from wm_world_model.state import RobotState

from benchlib import main as bench_main, row

START = Pose2D(1.2, 2.0, 0.3)
GOAL = Pose2D(16.0, 12.0, 0.0)
IDENTITY = Pose2D(0.0, 0.0, 0.0)
PEERS = {"controller.step/%s" % m: "route + plan/%s" % m for m in ("kinematic", "world_model")}
PEERS.update({"route + plan/%s" % m: "plan/%s" % m for m in ("kinematic", "world_model")})


def _fresh(field: Grid2D) -> Grid2D:
    """The same values in a new Grid2D (a new field every cycle: no cost-to-go cache hit)."""
    return Grid2D(field.origin_x, field.origin_y, field.resolution, field.data,
                  outside=field.outside, frame_id=field.frame_id)


def _cases(model_name: str, artifact: str, n: int, field: Grid2D, static_map) -> List[dict]:
    p = planner_params({"world_model_artifact": artifact})
    c = Controller(p, motion_model=motion_model_for(p))
    c.set_map(static_map)
    c.set_goal(GOAL, "map", 0.0)
    state = RobotState(START.x, START.y, START.yaw, 0.3, 0.0)
    goal = Goal(GOAL.x, GOAL.y, GOAL.yaw, xy_tolerance=p["xy_goal_tolerance"],
                yaw_tolerance=p["yaw_goal_tolerance"])
    clock = {"t": 0.0}

    def step():
        clock["t"] += 0.1
        c.progress.reset()          # recoveries idle: the robot is making progress
        c.step(CycleInput(clock["t"], state, _fresh(field), IDENTITY))

    def route_plan():
        clock["t"] += 0.1
        r, _ = c.routes.update(clock["t"], START, (GOAL.x, GOAL.y), field, IDENTITY)
        c.optimizer.plan(state, goal, _fresh(field), route=r)

    route, _ = c.routes.update(clock["t"], START, (GOAL.x, GOAL.y), field, IDENTITY)

    def plan():
        c.optimizer.plan(state, goal, _fresh(field), route=route)

    # interleaved, call by call: on a shared machine the three see the same background load
    cases = (("controller.step", step), ("route + plan", route_plan), ("plan", plan))
    times: dict = {name: [] for name, _ in cases}
    for i in range(n + 3):
        for name, fn in cases:
            t0 = time.perf_counter()
            fn()
            if i >= 3:                      # warm-up calls untimed
                times[name].append((time.perf_counter() - t0) * 1e3)
    return [row("%s/%s" % (name, model_name), times[name]) for name, _ in cases]


def run(repeats: Optional[int] = None) -> List[dict]:
    n = repeats or 200
    world, static_map = static_world("warehouse_small")
    field = TruthField(world).window(START.x, START.y)
    return (_cases("kinematic", "none", n, field, static_map)
            + _cases("world_model", WORLD_MODEL, n, field, static_map))


if __name__ == "__main__":
    sys.exit(bench_main(run, __doc__, peers=PEERS))
