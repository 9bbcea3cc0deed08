"""Closed loop over DDS: a LiDAR-only robot (no map: the planner's route runs on what the
LiDAR shows, route_without_map) drives to a goal 2.5 m behind a wall whose only gap lies
1 m off the straight line. Three robots in three lanes of one hall, every node real
(simulator on MuJoCo, perception, planner, safety gate, fleet client per robot):

* a 0.85 m gap (the 0.55 m wide body plus 0.15 m a side) and a 1.2 m gap are passed;
* a 0.5 m gap, narrower than the body, ends with the navigate action aborted NO_VALID_PATH ("no way
  to the goal"), within the progress checker's allowance plus its recoveries.
"""
from __future__ import annotations

import yaml
from rosutil import CONFIG
from test_system_scenarios import domain_env

from wm_eval.runner import run_scenario
from wm_msgs.action import NavigateToPose
from wm_sim.scenario import parse_scenario

LANES = (0.85, 1.2, 0.5)        # gap widths, lane k spans y 8k .. 8k + 8 of the 12 x 24 hall
WALL_X = 6.0


def scenario() -> dict:
    boxes = [{"name": "divider_%d" % k, "center": [6.0, 8.0 * k], "size": [11.6, 0.2],
              "height": 2.5} for k in (1, 2)]
    robots = []
    for k, width in enumerate(LANES):
        y0, line = 8.0 * k, 8.0 * k + 4.0
        gap = line + 1.0                            # the gap's centre, 1 m off the line
        lo, hi = gap - width / 2, gap + width / 2
        boxes.append({"name": "wall_%d_south" % k, "center": [WALL_X, (y0 + lo) / 2],
                      "size": [0.2, lo - y0], "height": 2.0})
        boxes.append({"name": "wall_%d_north" % k, "center": [WALL_X, (hi + y0 + 8.0) / 2],
                      "size": [0.2, y0 + 8.0 - hi], "height": 2.0})
        robots.append({"id": "robot%d" % (k + 1), "spawn": [3.0, line, 0.0],
                       "goals": [[WALL_X + 2.5, line, 0.0]]})
    return {"name": "gaps", "world": "hall", "duration": 150, "seed": 17, "robots": robots,
            "static_obstacles": boxes}


def abort_bound() -> float:
    """Seconds within which the 0.5 m gap must be given up: the drive to the wall, then
    the progress checker's allowance before each recovery and after the last, plus what each
    recovery may take (wm_planner.recoveries: back_up and spin time out at twice their
    nominal time plus a second; wait waits)."""
    p = yaml.safe_load((CONFIG / "robot.yaml").read_text())["/**/planner"]["ros__parameters"]
    allowance = p.get("progress_checker", {}).get("movement_time_allowance", 10.0)
    recoveries = p.get("recovery_behaviors",
                       ["reroute", "clear_and_replan", "back_up", "spin", "wait"])
    budget = {"back_up": 2 * 0.3 / 0.1 + 1.0, "spin": 2 * 1.57 / 0.6 + 1.0, "wait": 5.0}
    drive = 3.5 / 0.2 + 5.0     # 3.5 m to the wall, at least 0.2 m/s on the way, a turn
    return drive + allowance * (len(recoveries) + 1) + sum(budget.get(r, 0.0)
                                                          for r in recoveries)


def test_lidar_only_robot_passes_085_and_12_m_gaps_and_says_no_way_at_05_m(tmp_path):
    domain_env()
    sc = parse_scenario(scenario())
    s = run_scenario(sc, tmp_path, engine="mujoco", wall_timeout=420.0, quiet=True,
                     planner_params={"map_topic": "/no_map"})   # LiDAR only: no map
    goals = {r: g[0] for r, g in s["goals"].items() if g}
    logs = {p.stem: p.read_text()[-2000:] for p in (tmp_path / "logs").glob("*planner.log")}
    k = s["kpis"]
    assert k["contacts"] == 0, k["contacts_per_robot"]
    for rid, width in (("robot1", 0.85), ("robot2", 1.2)):
        g = goals.get(rid, {})
        assert g.get("status") == "reached", (width, g.get("error_code"), g.get("error_msg"),
                                              logs.get(rid + "_planner"))
    g = goals["robot3"]
    assert g["status"] == "failed", (g, logs)
    assert g["error_code"] == NavigateToPose.Result.NO_VALID_PATH, (g, logs)
    assert "no way" in g["error_msg"]
    took = g["t_end"] - g["t_start"]
    assert took <= abort_bound(), (took, abort_bound(), g)
    # it never got through: it stayed on its side of the wall
    assert max(x for _, x, _ in s["paths"]["robot3"]) < WALL_X   # samples (t, x, y)
