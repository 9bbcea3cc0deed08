"""Planner quality on fixed closed-loop scenarios, planning on kinematics vs the world model.

    python benchmarks/bench_planner_quality.py [--quick] [--scenarios a,b] [--engine E]

Runs each scenario of config/scenarios/planner/ (straight_run, narrow_aisle,
obstacle_appearing, robot_crossing, three_aisles; `--quick`: narrow_aisle and
obstacle_appearing) with wm_eval.runner.run_scenario (MuJoCo simulator, per robot a
perception and a planner process over DDS), once per motion model of
wm_eval.evaluate.MOTION_MODELS: unicycle kinematics, and the shipped world model. Per
scenario and model: goal success, the minimum clearance between the footprint circles and the
nearest obstacle along the true path (layout changes applied at their times; negative = the
footprint overlaps), time to goal (mean over reached goals, simulated s), mean speed / top
speed, and contact episodes. These are in the table's last column (NOTE) and in each row's
keys; median / p99 ms are the cloud -> cmd_vel latency over the run's cycles (wall clock),
so the ratio column is the world model's compute cost against kinematics (PEERS).

Closed-loop runs on the shared machine are slow and noisy: one run per case, smoke numbers.
Runs write out/bench_planner_quality/<model>/<scenario>/ (paths.png, summary.json, logs/).
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from wm_eval.evaluate import MOTION_MODELS
from wm_eval.paths import share_dir
from wm_eval.runner import run_scenario
from wm_sim.scenario import load_scenario

from benchlib import row, to_markdown

SCENARIOS = ("straight_run", "narrow_aisle", "obstacle_appearing", "robot_crossing",
             "three_aisles")
QUICK = ("narrow_aisle", "obstacle_appearing")
MODELS = ("kinematic", "world_model")
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "out" / "bench_planner_quality"

# each world-model row against the kinematic row of the same scenario
PEERS = {"%s/world_model" % s: "%s/kinematic" % s for s in SCENARIOS}


def scenario_file(name: str) -> Path:
    """The repository's file (a new one is installed only by the next colcon build), else
    the installed share's."""
    for config in (REPO / "config", share_dir() / "config"):
        path = config / "scenarios" / "planner" / (name + ".yaml")
        if path.is_file():
            return path
    raise FileNotFoundError("no scenario %r in config/scenarios/planner/" % name)


def planner_params(model: str) -> Dict[str, str]:
    """The planner overrides of a motion model. config/robot.yaml ships
    `world_model_artifact: worldmodel-1.0.0`, so no override at all would plan on the world
    model: kinematics needs the artifact set to the empty string explicitly ('""' on the
    `-p name:=value` command line)."""
    params = dict(MOTION_MODELS[model])
    params.setdefault("world_model_artifact", '""')
    return params


def logged_motion_model(out: Path) -> Optional[str]:
    """'world_model' when every planner log says it loaded a world model, 'kinematic' when
    none does, 'mixed' otherwise; None without logs."""
    logs = sorted((out / "logs").glob("*_planner.log"))
    if not logs:
        return None
    flags = {"motion model: world model" in p.read_text(errors="replace") for p in logs}
    return "mixed" if len(flags) > 1 else ("world_model" if flags.pop() else "kinematic")


def case_row(name: str, model: str, summary: dict, out: Path) -> dict:
    k = summary["kpis"]
    times = [g["t_end"] - g["t_start"] for gs in summary["goals"].values() for g in gs
             if g.get("status") == "reached"]
    logged = logged_motion_model(out)
    return row("%s/%s" % (name, model), summary.get("latencies_ms", []),
               success_rate=k["success_rate"], goals=k["goals"],
               goals_reached=k["goals_reached"], min_clearance_m=k.get("min_clearance_m"),
               min_clearance_m_per_robot=k.get("min_clearance_m_per_robot"),
               time_to_goal_s=float(np.mean(times)) if times else None,
               mean_speed_fraction=k["mean_speed_fraction"], contacts=k["contacts"],
               sim_seconds=k["sim_seconds"], real_time_factor=k["real_time_factor"],
               motion_model_logged=logged,
               model_mismatch=logged is not None and logged != model)


def run(repeats: Optional[int] = None, scenarios: Optional[Sequence[str]] = None,
        engine: str = "mujoco", wall_timeout: float = 600.0,
        out: Optional[str] = None) -> List[Dict[str, object]]:
    """One closed-loop run per scenario and motion model. `repeats` is the runner's quick
    switch: when given (run_all --quick, or --quick), only the QUICK scenarios run."""
    names = list(scenarios or (QUICK if repeats is not None else SCENARIOS))
    root = Path(out) if out else OUT
    rows = []
    for name in names:
        sc = load_scenario(str(scenario_file(name)))
        for model in MODELS:
            print("  %s (%s) ..." % (name, model), flush=True)
            d = root / model / name
            try:
                s = run_scenario(sc, d, engine=engine, wall_timeout=wall_timeout,
                                 stop=threading.Event(), quiet=True,
                                 planner_params=planner_params(model))
            except Exception as e:  # a node that did not come up: report, run the rest
                rows.append(row("%s/%s" % (name, model), [], error=str(e)[:200]))
                continue
            rows.append(case_row(name, model, s, d))
    return rows


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else spec % v


def note(r) -> str:
    """The quality KPIs of a row (the table's last column)."""
    if r.get("error"):
        return "error: %s" % r["error"]
    parts = ["success %d/%d" % (r["goals_reached"], r["goals"]),
             "min clearance %s m" % _fmt(r["min_clearance_m"], "%.2f"),
             "time to goal %s s" % _fmt(r["time_to_goal_s"], "%.1f"),
             "speed %s of top" % _fmt(r["mean_speed_fraction"], "%.2f"),
             "%d contacts" % r["contacts"]]
    if r.get("model_mismatch"):
        parts.append("planner logs say %s!" % r["motion_model_logged"])
    return ", ".join(parts)


NOTE = note


def kpi_table(rows: Sequence[dict]) -> str:
    """The KPIs as their own columns (printed by the script; run_all uses NOTE)."""
    lines = ["| scenario | motion model | success | min clearance m | time to goal s | "
             "mean speed / top | contacts | latency p50 / p99 ms |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        scenario, model = str(r["name"]).rsplit("/", 1)
        if r.get("error"):
            lines.append("| %s | %s | error: %s | | | | | |" % (scenario, model, r["error"]))
            continue
        lines.append("| %s | %s | %s (%d/%d) | %s | %s | %s | %d | %.1f / %.1f |" % (
            scenario, model, _fmt(r["success_rate"], "%.2f"), r["goals_reached"], r["goals"],
            _fmt(r["min_clearance_m"], "%.3f"), _fmt(r["time_to_goal_s"], "%.1f"),
            _fmt(r["mean_speed_fraction"], "%.2f"), r["contacts"], r["median_ms"],
            r["p99_ms"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="only %s" % " and ".join(QUICK))
    ap.add_argument("--scenarios", default="",
                    help="comma list of %s (default: all, or --quick's)" % ", ".join(SCENARIOS))
    ap.add_argument("--engine", default="mujoco", choices=["mujoco", "kinematic"])
    ap.add_argument("--wall-timeout", type=float, default=600.0,
                    help="wall-clock limit per run [s]")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    names = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        ap.error("unknown scenario(s) %s" % unknown)
    rows = run(repeats=1 if args.quick else None, scenarios=names or None,
               engine=args.engine, wall_timeout=args.wall_timeout, out=args.out)
    print(to_markdown(rows, PEERS, NOTE))
    print()
    print(kpi_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
