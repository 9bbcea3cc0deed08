"""`make eval`: the closed-loop scenario suite -> EVALUATION.md, plots and per-run JSON.

Runs every scenario in config/scenarios/ (or those named) with wm_bringup.runner, one after
another, with the real nodes as separate processes over DDS and the MuJoCo simulator owning
/clock, once per motion model of the planner (unicycle kinematics; the shipped world model).
Writes per run out/eval/<model>/<name>/{paths.png, summary.json, logs/}, the suite's
histograms (navigation error, latency) and EVALUATION.md with the KPI tables.

Numbers come from the shared development machine, not a Jetson.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from wm_bringup.runner import run_scenario, share_dir
from wm_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
# The planner's motion models compared by the suite: name -> planner parameter overrides.
WORLD_MODEL = "worldmodel-1.0.0"
# config/robot.yaml plans on the world model, so kinematics must be asked for explicitly
# (`-p world_model_artifact:=""`: the YAML empty string).
MOTION_MODELS = {"kinematic": {"world_model_artifact": '""'},
                 "world_model": {"world_model_artifact": WORLD_MODEL}}


def progress(i: int, n: int, label: str, t0: float) -> None:
    width = 30
    done = int(width * i / max(n, 1))
    print("[%s%s] %d/%d %s (%.0f s)" % ("#" * done, "." * (width - done), i, n, label,
                                        time.monotonic() - t0), flush=True)


def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def histograms(summaries, out_png: Path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    errors = [g["error_cm"] for s in summaries for gs in s["goals"].values() for g in gs
              if g.get("status") == "reached" and "error_cm" in g]
    lat = []
    for s in summaries:
        lat += s.get("latencies_ms", [])
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.hist(errors, bins=20, color="tab:blue")
    ax1.set_xlabel("navigation error at goal [cm]")
    ax1.set_ylabel("goals")
    ax2.hist(lat, bins=40, color="tab:orange")
    ax2.set_xlabel("latency cloud -> cmd_vel [ms] (wall clock, dev machine)")
    ax2.set_ylabel("cycles")
    fig.tight_layout()
    fig.savefig(str(out_png), dpi=110)
    return str(out_png)


def scenario_rows(by_model) -> str:
    rows = ["| scenario | motion model | robots | goals | success | nav error cm (mean ± sd, "
            "max) | contacts / 1000 moves | time vs straight line | mean speed / top | "
            "latency p50 / p99 ms | s lost after layout change | sim s (x real time) |",
            "|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|"]
    names = sorted({s["scenario"] for ss in by_model.values() for s in ss})
    for name in names:
        for model, summaries in by_model.items():
            for s in summaries:
                if s["scenario"] != name:
                    continue
                k = s["kpis"]
                rows.append(
                    "| %s | %s | %d | %d/%d | %s | %s ± %s, %s | %s | %s | %s | %s / %s | %s | "
                    "%.0f (x%s) |" % (
                        name, model, len(s["robots"]), k["goals_reached"], k["goals"],
                        fmt(k["success_rate"], "%.2f"),
                        fmt(k["nav_error_cm_mean"]), fmt(k["nav_error_cm_std"]),
                        fmt(k["nav_error_cm_max"]), fmt(k["collisions_per_1000_moves"], "%.0f"),
                        fmt(k["time_vs_straight_line"], "%.2f"),
                        fmt(k["mean_speed_fraction"], "%.2f"), fmt(k["latency_ms_p50"]),
                        fmt(k["latency_ms_p99"]),
                        fmt(k["seconds_lost_after_layout_change"]), k["sim_seconds"],
                        fmt(k["real_time_factor"], "%.2f")))
    return "\n".join(rows)


def suite_totals(summaries) -> dict:
    """One column of the case-study table: the suite's KPIs for one motion model."""
    if not summaries:
        return {}
    errors = [g["error_cm"] for s in summaries for gs in s["goals"].values() for g in gs
              if g.get("status") == "reached" and "error_cm" in g]
    moves = sum(len(gs) for s in summaries for gs in s["goals"].values())
    contacts = sum(s["kpis"]["contacts"] for s in summaries)
    lat = [v for s in summaries for v in s.get("latencies_ms", [])]
    lost = [s["kpis"]["seconds_lost_after_layout_change"] for s in summaries
            if s["kpis"]["seconds_lost_after_layout_change"] is not None]
    speed = [s["kpis"]["mean_speed_fraction"] for s in summaries
             if s["kpis"]["mean_speed_fraction"] is not None]
    return {
        "error": "%s ± %s cm" % (fmt(float(np.mean(errors)) if errors else None),
                                 fmt(float(np.std(errors)) if errors else None)),
        "collisions": fmt(1000.0 * contacts / moves if moves else None, "%.0f"),
        "latency": "p50 %s ms, p99 %s ms (dev machine)" % (
            fmt(float(np.percentile(lat, 50)) if lat else None),
            fmt(float(np.percentile(lat, 99)) if lat else None)),
        "lost": "%s s lost" % fmt(float(np.sum(lost)) if lost else None),
        "success": "%d/%d" % (sum(s["kpis"]["goals_reached"] for s in summaries),
                              sum(s["kpis"]["goals"] for s in summaries)),
        "speed": fmt(float(np.mean(speed)) if speed else None, "%.2f"),
    }


def report(by_model, engine: str, wall: float) -> str:
    kin = suite_totals(by_model.get("kinematic", []))
    wm = suite_totals(by_model.get("world_model", []))

    def cell(d, key):
        return d.get(key, "not run")

    lines = [("navigation error", "22 ± 6 cm", "error"),
             ("collisions per 1000 moves", "1.2", "collisions"),
             ("planning latency", "18 ms", "latency"),
             ("downtime after a layout change", "0.5 h", "lost"),
             ("goal success", "", "success"),
             ("mean speed / top speed", "", "speed")]
    total = ("| | case study (source document), after | this suite, kinematic planning | "
             "this suite, learned world model (%s) |\n|---|---|---|---|\n" % WORLD_MODEL
             + "".join("| %s | %s | %s | %s |\n" % (label, cs, cell(kin, key), cell(wm, key))
                       for label, cs, key in lines))
    return (
        "# Evaluation\n\nWritten by `make eval` (`python -m wm_bringup.evaluate`); do not edit "
        "by hand.\n\n- Date: %s\n- Engine: %s (MuJoCo physics: torque-limited wheels, "
        "friction, payload), simulator owning /clock in lockstep with the nodes\n"
        "- Nodes: simulator + per robot perception and planner, separate processes over "
        "Fast DDS; goals through navigate_to_pose\n- Machine: %s, %s (shared 2-core "
        "development machine; **not a Jetson**); suite wall time %.0f s\n"
        "- Motion models: the planner rolls its samples out with unicycle kinematics, or with "
        "the shipped world model (`world_model_artifact:=%s`, payload from the simulator's "
        "`payload` topic); everything else identical\n\n"
        "## Against the case study\n\n%s\n"
        "Targets (issue): navigation error under 10 cm, 0 collisions, no time lost after a "
        "layout change, mean speed at least 50%% of top speed in open aisles.\n\n"
        "## Per scenario\n\n%s\n\n"
        "Definitions: *nav error*: distance from the true pose (ground truth) to the goal when "
        "the planner reports success; *contacts*: contact episodes reported by the physics "
        "engine (chassis or payload touching anything but the floor), per 1000 goals sent "
        "(moves); *time vs straight line*: time to goal / (straight-line distance / top "
        "speed); *mean speed*: mean true speed while pursuing a goal / top speed (v_max of "
        "config/robot.yaml); *latency*: wall-clock time from the simulator publishing a "
        "robot's scan to that robot's cmd_vel arriving (DDS, perception, planner); *s lost "
        "after layout change*: seconds a robot pursuing a goal spent below 20%% of top speed "
        "between a layout change and reaching that goal.\n\n"
        "Plots of each run: `out/eval/<motion model>/<scenario>/paths.png`; histograms: "
        "`out/eval/histograms.png`.\n" % (
            datetime.date.today().isoformat(), engine, platform.processor() or
            platform.machine(), platform.python_version(), wall, WORLD_MODEL, total,
            scenario_rows(by_model)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenarios", nargs="*", help="scenario YAML files (default: all shipped)")
    ap.add_argument("--engine", default="mujoco", choices=["mujoco", "kinematic"])
    ap.add_argument("--out", default="out/eval")
    ap.add_argument("--report", default=str(REPO / "EVALUATION.md"))
    ap.add_argument("--wall-timeout", type=float, default=900.0,
                    help="wall-clock limit per scenario [s]")
    ap.add_argument("--motion-models", default=",".join(MOTION_MODELS),
                    help="comma list of %s" % ", ".join(MOTION_MODELS))
    args = ap.parse_args(argv)
    files = [Path(f) for f in args.scenarios] or sorted(
        (share_dir() / "config" / "scenarios").glob("*.yaml"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.motion_models.split(",") if m]
    unknown = sorted(set(models) - set(MOTION_MODELS))
    if unknown:
        ap.error("unknown motion model(s) %s" % unknown)
    by_model = {m: [] for m in models}
    runs = [(m, f) for m in models for f in files]
    t0 = time.monotonic()
    for i, (model, f) in enumerate(runs):
        if stop.is_set():
            break
        sc = load_scenario(str(f))
        progress(i, len(runs), "running %s (%s)" % (sc.name, model), t0)
        s = run_scenario(sc, out / model / sc.name, engine=args.engine,
                         wall_timeout=args.wall_timeout, stop=stop, quiet=True,
                         planner_params=MOTION_MODELS[model])
        k = s["kpis"]
        print("    %s (%s): %d/%d goals, %d contacts, error %s cm, speed %s, latency p50 %s ms"
              % (sc.name, model, k["goals_reached"], k["goals"], k["contacts"],
                 fmt(k["nav_error_cm_mean"]), fmt(k["mean_speed_fraction"], "%.2f"),
                 fmt(k["latency_ms_p50"])), flush=True)
        s["motion_model"] = model
        by_model[model].append(s)
    progress(sum(len(v) for v in by_model.values()), len(runs), "done", t0)
    histograms([s for v in by_model.values() for s in v], out / "histograms.png")
    Path(args.report).write_text(report(by_model, args.engine, time.monotonic() - t0))
    (out / "suite.json").write_text(json.dumps(by_model, indent=2, default=str))
    print("wrote %s" % args.report)
    return 0 if not stop.is_set() else 130


if __name__ == "__main__":
    sys.exit(main())
