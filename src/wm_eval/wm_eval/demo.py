"""`make demo`: robots in the simulated warehouse drive to their goals through real ROS 2 topics.

Runs one closed-loop scenario with wm_eval.runner: a private redis-server (the embedded
default, unless WM_REDIS_URL is set), the MuJoCo simulator owning /clock, and per robot a
perception and a planner process (`--ros-args --params-file config/robot.yaml
-r __ns:=/robotN`). Each robot gets its goals through the navigate_to_pose action. Prints
goals reached, contacts (from the physics engine), navigation error, speed and planning
latency (cloud -> cmd_vel, wall clock), and writes a PNG of the paths. Ctrl-C stops
everything cleanly.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from wm_eval.runner import run_scenario
from wm_sim.scenario import default_scenario, load_scenario


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robots", type=int, default=2, help="number of robots (1-4)")
    ap.add_argument("--world", default="warehouse_small",
                    choices=["warehouse_small", "warehouse_large", "test_scene"])
    ap.add_argument("--scenario", help="a scenario YAML instead of --world/--robots")
    ap.add_argument("--engine", default="mujoco", choices=["mujoco", "kinematic"])
    ap.add_argument("--duration", type=float, default=180.0, help="simulated time limit [s]")
    ap.add_argument("--wall-timeout", type=float, default=600.0, help="wall time limit [s]")
    ap.add_argument("--round-trip", action="store_true",
                    help="after its goal, send each robot back to its start")
    ap.add_argument("--out", default="out/demo", help="folder for the PNG, JSON and logs")
    return ap.parse_args(argv)


def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.scenario:
        scenario = load_scenario(args.scenario)
    else:
        scenario = default_scenario(args.world, max(1, min(args.robots, 4)), args.round_trip,
                                    args.duration)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    s = run_scenario(scenario, Path(args.out), engine=args.engine,
                     wall_timeout=args.wall_timeout, stop=stop)
    k = s["kpis"]
    print("")
    print("== demo result (%s, %d robots, %s engine)" % (scenario.world, len(scenario.robots),
                                                         args.engine))
    for r, gs in s["goals"].items():
        for g in gs:
            print("  %s: goal (%.1f, %.1f) %s%s" % (
                r, g["goal"][0], g["goal"][1], g["status"],
                " in %.1f s, error %.1f cm" % (g["t_end"] - g["t_start"], g["error_cm"])
                if g["status"] == "reached" else ""))
    print("goals reached:        %d / %d" % (k["goals_reached"], k["goals"]))
    print("contacts (physics):   %d" % k["contacts"])
    print("navigation error:     %s cm mean, %s cm max" % (fmt(k["nav_error_cm_mean"]),
                                                          fmt(k["nav_error_cm_max"])))
    print("mean speed:           %s of top speed" % fmt(k["mean_speed_fraction"], "%.2f"))
    print("latency cloud->cmd:   p50 %s ms, p99 %s ms over %d cycles (wall clock; not a "
          "Jetson)" % (fmt(k["latency_ms_p50"]), fmt(k["latency_ms_p99"]), k["cycles"]))
    print("simulated %.0f s in %.0f s wall (x%s)" % (k["sim_seconds"], k["wall_seconds"],
                                                    fmt(k["real_time_factor"], "%.2f")))
    print("paths: %s   summary: %s" % (s["png"], Path(args.out) / "summary.json"))
    ok = (k["goals_reached"] == k["goals"] and k["contacts"] == 0 and not stop.is_set())
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
