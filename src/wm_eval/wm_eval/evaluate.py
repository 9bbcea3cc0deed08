"""`make eval`: closed-loop quality -> EVALUATION.md, plots and per-run data under out/eval/.

Three parts (`--parts`, all by default), numbers from this machine (not a Jetson):

1. episodes: more than a thousand seeded in-process episodes (wm_eval.episode_eval: one
   robot in warehouse_small and _large with unmapped boxes, LiDAR-only gaps, 2-4-robot
   encounters, and a dynamics family on MuJoCo with heavy payloads, low friction and a
   higher top speed), each with the shipped world model and with kinematics on the same
   seeds, on a Dask LocalCluster (`--workers`). Success with a 95 % Wilson interval, contacts
   per 1000 moves, time against the straight line, recoveries, every failure classed, with
   a picture.
2. fleet: 100 goals through the full stack over DDS: four robots sharing the fleet through
   Redis in warehouse_large on MuJoCo, each driven through its seeded goals by the
   navigate_to_pose action (wm_eval.fleet_eval).
3. scenarios: the named scenarios of config/scenarios/ (layout change, pallet drop,
   localization drift, ...) through the full stack, once per motion model (the case-study
   table).

The seed range of part 1 is `--seed-start` (default: one never used while the controller
was developed); `--scale` shrinks every family for a quick look. A run of some parts keeps
the other parts' sections (and headline lines) of the existing report, each with the date
of the run that wrote it.
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
from typing import Tuple

import numpy as np

from wm_eval import episode_eval, fleet_eval
from wm_eval.episode import robot_planner_params
from wm_eval.paths import REPO, share_dir
from wm_eval.runner import run_scenario
from wm_eval.sweep import dask_client, run_tasks
from wm_sim.scenario import load_scenario

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


def scenarios_section(by_model, engine: str) -> str:
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
        "Engine: %s (MuJoCo physics: torque-limited wheels, friction, payload), simulator "
        "owning /clock in lockstep with the nodes; per robot perception, planner, safety gate "
        "and fleet client as separate processes over Fast DDS; goals through "
        "navigate_to_pose. Motion models: unicycle kinematics, or the shipped world model "
        "(`world_model_artifact:=%s`, payload from the simulator's `payload` topic).\n\n"
        "### Against the case study\n\n%s\n"
        "Targets (issue): navigation error under 10 cm, 0 collisions, no time lost after a "
        "layout change, mean speed at least 50%% of top speed in open aisles.\n\n"
        "### Per scenario\n\n%s\n\n"
        "Definitions: *nav error*: distance from the true pose (ground truth) to the goal when "
        "the planner reports success; *contacts*: contact episodes reported by the physics "
        "engine (chassis or payload touching anything but the floor), per 1000 goals sent "
        "(moves); *time vs straight line*: time to goal / (straight-line distance / top "
        "speed); *mean speed*: mean true speed while pursuing a goal / top speed (v_max of "
        "config/robot.yaml); *latency*: wall-clock time from the simulator publishing a "
        "robot's scan to that robot's cmd_vel arriving (DDS, perception, planner); *s lost "
        "after layout change*: seconds a robot pursuing a goal spent below 20%% of top speed "
        "between a layout change and reaching that goal.\n\n"
        "Plots of each run: `out/eval/scenarios/<motion model>/<scenario>/paths.png`; "
        "histograms: `out/eval/scenarios/histograms.png`.\n" % (
            engine, WORLD_MODEL, total, scenario_rows(by_model)))


def run_episodes(args, out: Path, stop) -> Tuple[list, dict]:
    """Part 1: the in-process episodes on a LocalCluster; rows streamed to
    out/episodes/results.jsonl; a picture of each failure."""
    ts = episode_eval.tasks(args.scale, args.seed_start)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.monotonic()
    with open(str(out / "results.jsonl"), "w") as f, dask_client(args.workers) as client:
        for row in run_tasks(client, ts, stop=stop.is_set):
            rows.append(row)
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            if len(rows) % 50 == 0 or len(rows) == len(ts):
                bad = sum(1 for r in rows if episode_eval.failure_class(r) is not None)
                progress(len(rows), len(ts), "episodes (%d not as they should)" % bad, t0)
    pictures = {}
    for r in rows:
        if episode_eval.failure_class(r) is not None:
            png = episode_eval.picture(r, out / "failures")
            if png:
                pictures[(str(r["config"]), int(r["seed"]))] = png
    return rows, pictures


PARTS = ("episodes", "fleet", "scenarios")
# how each part's section and headline lines begin in the report
_SECTION = {"## 1. ": "episodes", "## 2. ": "fleet", "## 3. ": "scenarios"}
_HEADLINE = {"- In process, ": "episodes", "- Full stack over DDS": "fleet"}


def read_report(text: str):
    """(part -> section, part -> headline lines) of an EVALUATION.md this module wrote."""
    sections, headline, part, buf = {}, {}, None, []
    for line in text.splitlines():
        starts = [p for k, p in _SECTION.items() if line.startswith(k)]
        if starts:
            if part is not None:
                sections[part] = "\n".join(buf).rstrip("\n") + "\n"
            part, buf = starts[0], []
        if part is not None:
            buf.append(line)
        for k, p in _HEADLINE.items():
            if part is None and line.startswith(k):
                headline.setdefault(p, []).append(line)
    if part is not None:
        sections[part] = "\n".join(buf).rstrip("\n") + "\n"
    return sections, headline


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenarios", nargs="*", help="scenario YAML files (default: all shipped)")
    ap.add_argument("--parts", default="episodes,fleet,scenarios",
                    help="comma list of episodes, fleet, scenarios")
    ap.add_argument("--engine", default="mujoco", choices=["mujoco", "kinematic"])
    ap.add_argument("--out", default="out/eval")
    ap.add_argument("--report", default=str(REPO / "EVALUATION.md"))
    ap.add_argument("--wall-timeout", type=float, default=900.0,
                    help="wall-clock limit per scenario [s]")
    ap.add_argument("--motion-models", default=",".join(MOTION_MODELS),
                    help="comma list of %s (scenarios)" % ", ".join(MOTION_MODELS))
    ap.add_argument("--scale", type=float, default=1.0,
                    help="fraction of each episode family's count (1: %d episodes per model)"
                    % sum(n for n, _, _ in episode_eval.FAMILIES.values()))
    ap.add_argument("--seed-start", type=int, default=episode_eval.DEFAULT_SEED_START)
    ap.add_argument("--workers", type=int, default=2, help="Dask workers for the episodes")
    ap.add_argument("--fleet-goals", type=int, default=100)
    ap.add_argument("--fleet-seed", type=int, default=2026)
    args = ap.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    if set(parts) - set(PARTS):
        ap.error("unknown part(s) %s" % (set(parts) - set(PARTS)))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    v_max = float(robot_planner_params().get("v_max", 0.7))
    sections = {}    # part -> its section
    headline = {}    # part -> its headline lines

    if "episodes" in parts:
        t0 = time.monotonic()
        rows, pictures = run_episodes(args, out / "episodes", stop)
        sections["episodes"] = (
            "## 1. Seeded episodes in process (%d episodes, %.0f min)\n\n%s\n%s" % (
                len(rows), (time.monotonic() - t0) / 60.0, EPISODES_INTRO,
                episode_eval.report(rows, v_max, pictures, args.seed_start)))
        for m in episode_eval.MODELS:
            rs = [r for r in rows if episode_eval.split(str(r["config"]))[1] == m]
            if rs:
                st = episode_eval.group_stats(rs, v_max)
                headline.setdefault("episodes", []).append(
                    "- In process, %s: **%d of %d** episodes as they should (%.1f %%, 95 %% "
                    "Wilson interval %.1f-%.1f %%), %d with a chassis contact." % (
                        m, st["correct"], st["episodes"], 100 * st["success"],
                        100 * st["ci"][0], 100 * st["ci"][1], st["contact_episodes"]))

    if "fleet" in parts and not stop.is_set():
        t0 = time.monotonic()
        progress(0, 1, "fleet: %d goals, 4 robots over DDS" % args.fleet_goals, t0)
        s = fleet_eval.run(out / "fleet", args.fleet_seed, args.fleet_goals, stop=stop)
        sm = fleet_eval.summary(s)
        sections["fleet"] = (
            "## 2. The full stack over DDS: 4 robots, %d goals (%.0f min)\n\n%s\n%s" % (
                sm["planned"], (time.monotonic() - t0) / 60.0, FLEET_INTRO,
                fleet_eval.report(s, "world_model", str(out / "fleet" / "paths.png"))))
        headline["fleet"] = [
            "- Full stack over DDS, 4 robots sharing the fleet: **%d of %d** goals (%.1f %%, "
            "95 %% Wilson interval %.1f-%.1f %%), %d contacts." % (
                sm["reached"], sm["planned"], 100 * (sm["success"] or 0.0),
                100 * sm["ci"][0], 100 * sm["ci"][1], sm["kpis"]["contacts"])]

    if "scenarios" in parts and not stop.is_set():
        files = [Path(f) for f in args.scenarios] or sorted(
            (share_dir() / "config" / "scenarios").glob("*.yaml"))
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
            s = run_scenario(sc, out / "scenarios" / model / sc.name, engine=args.engine,
                             wall_timeout=args.wall_timeout, stop=stop, quiet=True,
                             planner_params=MOTION_MODELS[model])
            k = s["kpis"]
            print("    %s (%s): %d/%d goals, %d contacts, error %s cm, speed %s, latency p50 "
                  "%s ms" % (sc.name, model, k["goals_reached"], k["goals"], k["contacts"],
                             fmt(k["nav_error_cm_mean"]), fmt(k["mean_speed_fraction"], "%.2f"),
                             fmt(k["latency_ms_p50"])), flush=True)
            s["motion_model"] = model
            by_model[model].append(s)
        progress(sum(len(v) for v in by_model.values()), len(runs), "done", t0)
        histograms([s for v in by_model.values() for s in v],
                   out / "scenarios" / "histograms.png")
        (out / "scenarios" / "suite.json").write_text(json.dumps(by_model, indent=2,
                                                                 default=str))
        sections["scenarios"] = ("## 3. Named scenarios through the full stack (%.0f min)\n\n%s" % (
            (time.monotonic() - t0) / 60.0, scenarios_section(by_model, args.engine)))

    report = Path(args.report)
    today = datetime.date.today().isoformat()
    kept_sections, kept_headline = read_report(report.read_text() if report.exists() else "")
    for part in PARTS:
        if part in sections:
            sections[part] = sections[part].replace("\n\n", "\n\n*Run %s.*\n\n" % today, 1)
        elif part in kept_sections:
            sections[part] = kept_sections[part]
            headline[part] = kept_headline.get(part, [])
    lines = [x for part in PARTS for x in headline.get(part, [])]
    report.write_text(
        "# Evaluation\n\nWritten by `make eval` (`python -m wm_eval.evaluate`); do not "
        "edit by hand.\n\n- Date: %s (%s)\n- Machine: %s, Python %s (shared 2-core "
        "development machine; **not a Jetson**); wall time %.0f min\n\n## Headline\n\n%s"
        "\n\n%s" % (
            today, "parts run: " + ", ".join(parts) + (
                "; the others kept from earlier runs" if set(sections) - set(parts) else ""),
            platform.processor() or platform.machine(), platform.python_version(),
            (time.monotonic() - t_all) / 60.0,
            "\n".join(lines) or "(parts not run)",
            "\n".join(sections[part] for part in PARTS if part in sections)))
    print("wrote %s" % args.report)
    return 0 if not stop.is_set() else 130


EPISODES_INTRO = (
    "Every episode is the planner's own control cycle (wm_planner.controller, what the "
    "planner node runs: route, progress checker and recoveries, turn on the spot, MPPI, "
    "limiter) and each robot's safety gate (wm_safety) on the simulator's robots "
    "(wm_eval.episode), perfect perception except in the gap family (the perception core "
    "on simulated LiDAR scans, no map). *As they should*: every goal reached, or, at a gap "
    "narrower than the body, the goal aborted with \"no way\", and no chassis contact. "
    "*Contacts / 1000 moves*: episodes in which a chassis touched anything, per 1000 goals. "
    "*Time / straight line*: time to goal over straight-line distance at top speed (one "
    "robot). Failure pictures: `out/eval/episodes/failures/`; every row: "
    "`out/eval/episodes/results.jsonl`.\n")
FLEET_INTRO = (
    "Four robots in warehouse_large, every node a real process over Fast DDS (simulator on "
    "MuJoCo owning /clock; per robot perception, planner with the shipped world model, "
    "safety gate, fleet client through a real redis-server; no passing places configured), "
    "each robot driven through its seeded goals by navigate_to_pose; an aborted goal counts "
    "as not reached and the robot goes on to the next.\n")


if __name__ == "__main__":
    sys.exit(main())
