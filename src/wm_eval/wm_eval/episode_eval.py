"""The in-process part of `make eval`: a thousand and more seeded closed-loop episodes
(wm_eval.episode) over scenario families, with the world model and with kinematics on the
same seeds, and the statistics to read them: success with a 95 % Wilson interval, contacts per
1000 moves, time against the straight line at top speed, recoveries used, and every failure
in a class with its reason and a picture.

Families (`FAMILIES`: name -> scenario options and planner overrides; the seed alone decides
each episode, never the motion model, so both models drive the same episodes):

* single_small / single_large: one robot, warehouse_small / _large, 0-3 unmapped boxes
  (half the episodes one across the straight line), payload 0-150 kg;
* gap: LiDAR only (no map, the perception core on simulated scans), a wall with one gap of
  0.5, 0.85, 1.0 or 1.2 m 0.6-1.0 m off the straight line; from 0.85 m the goal must be
  reached, below the body's 0.55 m the goal must end "no way";
* encounter_small / encounter_large: 2-4 robots whose ways cross one point at about the same
  time, or two robots nose to nose, sharing their plans and the deadlock rule;
* dynamics: where the motion model matters: the MuJoCo physics the world model was trained
  on (torque-limited wheels, friction), heavy payloads (100-150 kg), a slippery floor
  (friction 0.4-0.7), top speed 1.0 m/s and a_max 1.5 m/s^2.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from wm_eval.episode import WORLD_MODEL, make_spec, static_world
from wm_eval.sweep import Task
from wm_sim.render import plot_paths
from wm_sim.world import World

# The motion models compared: label -> planner overrides (on config/robot.yaml).
MODELS = {"world_model": {"world_model_artifact": WORLD_MODEL},
          "kinematic": {"world_model_artifact": "none"}}

# family -> (episodes by default, scenario options, planner overrides)
FAMILIES: Dict[str, Tuple[int, Dict[str, Any], Dict[str, Any]]] = {
    "single_small": (400, {"family": "single", "world": "warehouse_small"}, {}),
    "single_large": (250, {"family": "single", "world": "warehouse_large"}, {}),
    "gap": (100, {"family": "gap", "perception": "lidar"}, {}),
    "encounter_small": (120, {"family": "encounter", "world": "warehouse_small"}, {}),
    "encounter_large": (80, {"family": "encounter", "world": "warehouse_large"}, {}),
    "dynamics": (100, {"family": "single", "world": "warehouse_small", "engine": "mujoco",
                       "payload_min": 100.0, "payload_max": 150.0, "friction_min": 0.4,
                       "friction_max": 0.7, "max_obstacles": 2},
                 {"v_max": 1.0, "a_max": 1.5}),
}
# Seeds: family k uses start + k * SEED_STRIDE + i; the default start was never used while
# the controller was developed (DEVELOPMENT_SEEDS; 1000000-1599999 were the first
# evaluation's, whose failures were studied and fixed).
DEFAULT_SEED_START = 2000000
DEVELOPMENT_SEEDS = "below 10000, 200000-799999 and 1000000-1599999"
SEED_STRIDE = 100000


def wilson(successes: int, n: int, z: float = 1.959964) -> Tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (lower, upper)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    d = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, centre - half), min(1.0, centre + half))


def tasks(scale: float = 1.0, seed_start: int = DEFAULT_SEED_START,
          families: Optional[Sequence[str]] = None,
          models: Optional[Sequence[str]] = None) -> List[Task]:
    """Every (family, seed, model) episode, seed-major so that both models of a seed are
    done together (a partial run still compares like with like)."""
    out = []
    for k, name in enumerate(FAMILIES):
        if families and name not in families:
            continue
        count, scenario, overrides = FAMILIES[name]
        n = max(1, int(round(count * scale)))
        for i in range(n):
            seed = seed_start + k * SEED_STRIDE + i
            for model in (models or MODELS):
                out.append(Task("%s/%s" % (name, model), seed,
                                dict(overrides, **MODELS[model]), dict(scenario), None))
    return out


def split(label: str) -> Tuple[str, str]:
    family, model = label.split("/", 1)
    return family, model


def failure_class(row: Mapping[str, Any]) -> Optional[str]:
    """None for an episode that went as it should; else what went wrong, in the classes
    the evaluation reports (collision, error, stall at a gap, wrong way at a gap, deadlock,
    spin livelock, timeout, and the controller's own abort reasons)."""
    if row.get("error"):
        return "error"
    if int(row.get("collisions") or 0) > 0:
        return "collision"
    if row.get("correct"):
        return None
    outcome = str(row.get("outcome"))
    family = str(row.get("family"))
    behaviors = json.loads(row.get("behaviors") or "{}")
    cycles = max(1, int(row.get("cycles") or 1))
    if family == "gap":
        return "stall at a gap" if outcome != "no_way" else "no way at a passable gap"
    if family == "encounter" and outcome in ("blocked", "no_progress", "time_limit",
                                             "timeout"):
        return "deadlock"
    if behaviors.get("rotate_to_heading", 0) > 0.3 * cycles:
        return "spin livelock"
    if outcome in ("time_limit", "timeout"):
        return "timeout"
    return "abort: " + outcome.replace("_", " ")


def _num(rows, key) -> np.ndarray:
    vals = []
    for r in rows:
        v = r.get(key)
        if v is None or v == "":
            continue
        v = float(v)
        if math.isfinite(v):
            vals.append(v)
    return np.array(vals)


def group_stats(rows: Sequence[Mapping[str, Any]], v_max: float) -> Dict[str, Any]:
    """The KPIs of one group of episodes (a family and a motion model)."""
    ok = [r for r in rows if not r.get("error")]
    n = len(rows)
    correct = sum(1 for r in ok if r.get("correct") and int(r.get("collisions") or 0) == 0)
    moves = sum(int(r.get("goals") or 1) for r in ok)
    contact_eps = sum(1 for r in ok if int(r.get("collisions") or 0) > 0)
    reached = [r for r in ok if r.get("reached")]
    ratio = np.array([float(r["time_to_goal_s"]) / (float(r["distance_m"]) / v_max)
                      for r in reached if r.get("robots") == 1 and r.get("time_to_goal_s")
                      and float(r.get("distance_m") or 0) > 0])
    lo, hi = wilson(correct, n)
    return {
        "episodes": n, "errors": n - len(ok), "correct": correct,
        "success": correct / n if n else None, "ci": (lo, hi),
        "moves": moves, "contact_episodes": contact_eps,
        "contacts_per_1000": 1000.0 * contact_eps / moves if moves else None,
        "nav_error_cm": float(np.mean(_num(reached, "final_error_m"))) * 100.0
        if reached else None,
        "time_vs_straight": float(np.median(ratio)) if ratio.size else None,
        "recoveries_mean": float(np.mean(_num(ok, "recoveries"))) if ok else None,
        "with_recovery": sum(1 for r in ok if int(r.get("recoveries") or 0) > 0),
        "yields": int(sum(_num(ok, "yields"))) if ok else 0,
        "ttg_median": float(np.median(_num(reached, "time_to_goal_s"))) if reached else None,
        "min_clearance": float(np.min(_num(ok, "min_clearance_m"))) if ok else None,
        "solve_ms": float(np.mean(_num(ok, "solve_ms_mean"))) if ok else None,
        "classes": Counter(c for c in (failure_class(r) for r in rows) if c is not None),
    }


def paired(rows: Sequence[Mapping[str, Any]], family: str) -> Dict[str, Any]:
    """World model against kinematics on the same seeds of one family: both reached, the
    difference of times to goal (world model - kinematics), and who alone reached."""
    by = {}
    for r in rows:
        fam, model = split(str(r["config"]))
        if fam == family:
            by[(int(r["seed"]), model)] = r
    seeds = sorted({s for s, _ in by})
    both, only_wm, only_kin = [], 0, 0
    for s in seeds:
        a, b = by.get((s, "world_model")), by.get((s, "kinematic"))
        if a is None or b is None:
            continue
        ca, cb = bool(a.get("correct")), bool(b.get("correct"))
        if ca and cb and a.get("time_to_goal_s") and b.get("time_to_goal_s"):
            both.append(float(a["time_to_goal_s"]) - float(b["time_to_goal_s"]))
        only_wm += int(ca and not cb)
        only_kin += int(cb and not ca)
    d = np.array(both)
    return {"pairs": len(both), "only_wm": only_wm, "only_kin": only_kin,
            "dt_median": float(np.median(d)) if d.size else None,
            "wm_faster": int((d < -0.05).sum()), "wm_slower": int((d > 0.05).sum())}


def world_of(row: Mapping[str, Any], scenario: Mapping[str, Any]) -> World:
    spec = make_spec(int(row["seed"]), scenario)
    w, _ = static_world(spec.world)
    return World(w.boxes + list(spec.obstacles), w.bounds, name=w.name)


def picture(row: Mapping[str, Any], out_dir: Path) -> Optional[str]:
    """A PNG of a failed episode (the world with its unmapped boxes, every robot's path,
    start and goal), from the row's trace; its path, or None without a trace."""
    if not row.get("trace"):
        return None
    family, model = split(str(row["config"]))
    scenario = FAMILIES[family][1]
    spec = make_spec(int(row["seed"]), scenario)
    trace = json.loads(row["trace"])
    paths = {rid: np.asarray(p, dtype=np.float64) for rid, p in trace.items() if p}
    goals = {"robot%d" % (i + 1): (t.goal.x, t.goal.y) for i, t in enumerate(spec.robots)}
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / ("%s_%s_%d.png" % (family, model, int(row["seed"])))
    return plot_paths(world_of(row, scenario), paths, goals=goals, out_png=str(png),
                      title="%s seed %d (%s): %s" % (family, int(row["seed"]), model,
                                                     failure_class(row)))


def _f(v, spec="%.1f") -> str:
    return "n/a" if v is None else spec % v


def _pct(v) -> str:
    return "n/a" if v is None else "%.1f %%" % (100.0 * v)


def report(rows: Sequence[Mapping[str, Any]], v_max: float, pictures: Mapping[Tuple, str],
           seed_start: int) -> str:
    """The in-process section of EVALUATION.md (markdown)."""
    labels = sorted({str(r["config"]) for r in rows},
                    key=lambda lab: (list(FAMILIES).index(split(lab)[0]), split(lab)[1]))
    models = [m for m in MODELS if any(split(lab)[1] == m for lab in labels)]
    out = []
    # headline per model: all families
    out.append("| motion model | episodes | as they should (success) | 95 % Wilson interval "
               "| chassis contacts / 1000 moves | failures |")
    out.append("|---|---:|---:|---|---:|---:|")
    for m in models:
        rs = [r for r in rows if split(str(r["config"]))[1] == m]
        st = group_stats(rs, v_max)
        out.append("| %s | %d | %d (%s) | %s - %s | %s | %d |" % (
            m, st["episodes"], st["correct"], _pct(st["success"]), _pct(st["ci"][0]),
            _pct(st["ci"][1]), _f(st["contacts_per_1000"], "%.2f"),
            st["episodes"] - st["correct"]))
    out.append("")
    out.append("Per family:\n")
    out.append("| family | motion model | episodes | success | 95 % interval | contacts / "
               "1000 moves | nav error cm | time / straight line at top speed (median) | "
               "recoveries per episode (episodes with one) | yields | min clearance m | "
               "solve ms |")
    out.append("|---|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|")
    for lab in labels:
        fam, m = split(lab)
        rs = [r for r in rows if r["config"] == lab]
        st = group_stats(rs, float(FAMILIES[fam][2].get("v_max", v_max)))
        out.append("| %s | %s | %d | %s | %s - %s | %s | %s | %s | %s (%d) | %d | %s | %s |" % (
            fam, m, st["episodes"], _pct(st["success"]), _pct(st["ci"][0]),
            _pct(st["ci"][1]), _f(st["contacts_per_1000"], "%.2f"), _f(st["nav_error_cm"]),
            _f(st["time_vs_straight"], "%.2f"), _f(st["recoveries_mean"], "%.2f"),
            st["with_recovery"], st["yields"], _f(st["min_clearance"], "%.3f"),
            _f(st["solve_ms"])))
    out.append("")
    out.append("Failure classes (every episode that did not end as it should):\n")
    out.append("| class | " + " | ".join(models) + " |")
    out.append("|---|" + "---:|" * len(models))
    classes = sorted({failure_class(r) for r in rows} - {None})
    for c in classes:
        out.append("| %s | %s |" % (c, " | ".join(
            str(sum(1 for r in rows if split(str(r["config"]))[1] == m
                    and failure_class(r) == c)) for m in models)))
    if not classes:
        out.append("| (none) |" + " 0 |" * len(models))
    out.append("")
    failed = [r for r in rows if failure_class(r) is not None]
    if failed:
        out.append("Each failure (picture: path of every robot, the world with its unmapped "
                   "boxes, goals as stars):\n")
        out.append("| family | seed | motion model | class | outcome and reason | picture |")
        out.append("|---|---:|---|---|---|---|")
        for r in sorted(failed, key=lambda r: (str(r["config"]), int(r["seed"]))):
            fam, m = split(str(r["config"]))
            reason = (r.get("error") or "%s: %s" % (r.get("outcome"), r.get("abort_message")
                                                    or "time limit")).replace("|", "/")
            pic = pictures.get((str(r["config"]), int(r["seed"])))
            out.append("| %s | %d | %s | %s | %s | %s |" % (
                fam, int(r["seed"]), m, failure_class(r), reason[:160],
                "`%s`" % pic if pic else "-"))
        out.append("")
    if "world_model" in models and "kinematic" in models:
        out.append("What the world model buys, seed by seed (the same episodes with each motion "
                   "model; time difference = world model - kinematics where both arrived):\n")
        out.append("| family | pairs both arrived | median time difference s | world model "
                   "faster / slower (> 0.05 s) | only the world model arrived | only "
                   "kinematics arrived |")
        out.append("|---|---:|---:|---|---:|---:|")
        for fam in FAMILIES:
            pr = paired(rows, fam)
            if pr["pairs"] == 0 and pr["only_wm"] == 0 and pr["only_kin"] == 0:
                continue
            out.append("| %s | %d | %s | %d / %d | %d | %d |" % (
                fam, pr["pairs"], _f(pr["dt_median"], "%+.2f"), pr["wm_faster"],
                pr["wm_slower"], pr["only_wm"], pr["only_kin"]))
        out.append("")
    out.append("Seeds: family k (in the order above) uses %d + k x %d + i; the development "
               "of the controller used seeds %s." % (seed_start, SEED_STRIDE,
                                                     DEVELOPMENT_SEEDS))
    return "\n".join(out) + "\n"

