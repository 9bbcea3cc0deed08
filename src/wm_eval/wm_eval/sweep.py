"""`make sweep`: thousands of seeded closed-loop episodes (wm_eval.episode) over a grid of
planner configurations, as tasks on Dask -> one results table, a summary and plots.

    python -m wm_eval.sweep --config config/sweeps/default.yaml [--scenarios N]
        [--workers W | --scheduler tcp://host:8786] [--out out/sweep]

The config YAML (config/sweeps/*.yaml) names the seeds, the scenario options
(wm_eval.episode.SCENARIO_DEFAULTS), `base` planner overrides for every configuration,
and the configurations: the cross product of `grid` axes (axis -> {value label: overrides})
and/or listed `cases` ({name, overrides}). Every configuration runs on the same seeds, so
configurations are compared on the same episodes (the world model against kinematics seed
by seed). The planner's parameters are the declared defaults, then config/robot.yaml's
planner section (read here, on the client, and sent with each task), then `base`, then the
configuration's overrides.

Execution: `--workers W` starts a distributed.LocalCluster (W worker processes, one thread
each); `--scheduler ADDRESS` connects to a running Dask scheduler (e.g. `dask scheduler` on
one node and `dask worker ADDRESS --nthreads 1` on each, every worker in this environment:
scripts/with_env, so that wm_eval, wm_planner and the world model artifact import).
After the client exists both take the same path: tasks are pure functions keyed by
(configuration, seed, hash of everything else the task depends on), submitted in a bounded
window (`as_completed`), so thousands of tasks never sit in memory as futures at once.
A task whose episode raised returns a row with `error`; a task the cluster lost (a worker
died, KilledWorker) becomes such a row here.

Writes <out>/results.csv and results.json (one row per episode), results.jsonl (streamed as
rows arrive, survives an interrupted sweep), SWEEP.md (per configuration: success, time to
goal, clearance, collisions, solve time; the world model against kinematics side by side)
and success.png / time_to_goal.png.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import hashlib
import itertools
import json
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import yaml

from wm_eval.episode import (REPO, SCENARIO_DEFAULTS, planner_params,
                                robot_planner_params, run_episode)

DEFAULT_CONFIG = REPO / "config" / "sweeps" / "default.yaml"
# Columns of results.csv, in this order (a row's other keys follow, sorted).
COLUMNS = ("config", "seed", "motion_model", "reached", "time_to_goal_s", "path_length_m",
           "route_length_m", "min_clearance_m", "collisions", "final_error_m", "sim_s",
           "cycles", "plan_failures", "rotations", "wm_fallbacks", "solve_ms_mean",
           "solve_ms_p99", "wall_s", "cpu_s", "distance_m", "obstacles", "blocking", "payload_kg",
           "start_x", "start_y", "goal_x", "goal_y", "world", "overrides", "error")


# --------------------------------------------------------------------------- config

class SweepError(ValueError):
    pass


def load_config(path) -> Dict[str, Any]:
    with open(str(path)) as f:
        doc = yaml.safe_load(f) or {}
    if not isinstance(doc, dict):
        raise SweepError("%s: a sweep config is a mapping" % path)
    known = {"name", "description", "seeds", "scenario", "robot_yaml", "base", "grid", "cases"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SweepError("%s: unknown keys %s (known: %s)" % (path, unknown, sorted(known)))
    return doc


def seeds_of(doc: Mapping[str, Any], count: Optional[int] = None) -> List[int]:
    """`seeds: {start: S, count: N}` or an explicit list; `count` (--scenarios) replaces N
    (with a list: its first `count`)."""
    s = doc.get("seeds", {"start": 0, "count": 10})
    if isinstance(s, list):
        seeds = list(dict.fromkeys(int(v) for v in s))   # unique, in order
        return seeds[:count] if count is not None else seeds
    if not isinstance(s, dict):
        raise SweepError("seeds must be a list or {start, count}")
    n = int(s.get("count", 10)) if count is None else int(count)
    return list(range(int(s.get("start", 0)), int(s.get("start", 0)) + n))


def configurations(doc: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """[(label, overrides)]: `base` updated by each grid combination (label: the value
    labels joined by '/', in axis order), then each listed case."""
    base = dict(doc.get("base") or {})
    out: List[Tuple[str, Dict[str, Any]]] = []
    grid = doc.get("grid") or {}
    if grid:
        if not isinstance(grid, dict) or not all(isinstance(v, dict) and v
                                                 for v in grid.values()):
            raise SweepError("grid: axis -> {value label: {parameter: value}} (non-empty)")
        axes = [list(values.items()) for values in grid.values()]
        for combo in itertools.product(*axes):
            overrides = dict(base)
            for _, ov in combo:
                overrides.update(ov or {})
            out.append(("/".join(str(label) for label, _ in combo), overrides))
    for k, case in enumerate(doc.get("cases") or []):
        if not isinstance(case, dict) or "name" not in case:
            raise SweepError("cases[%d] needs a name (and overrides)" % k)
        out.append((str(case["name"]), dict(base, **(case.get("overrides") or {}))))
    if not out:
        raise SweepError("a sweep needs a grid or cases")
    labels = [label for label, _ in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise SweepError("configuration names must be unique: %s" % dup)
    return out


def _digest(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


class Task:
    """One episode: its Dask key names the configuration and the seed, plus a digest of
    everything else it depends on (a key never stands for two different computations)."""

    __slots__ = ("label", "seed", "overrides", "scenario", "robot_params", "key")

    def __init__(self, label: str, seed: int, overrides: Mapping[str, Any],
                 scenario: Mapping[str, Any], robot_params: Mapping[str, Any]):
        self.label, self.seed = label, int(seed)
        self.overrides, self.scenario = dict(overrides), dict(scenario)
        self.robot_params = robot_params
        self.key = "episode-%s-%d-%s" % (label, self.seed,
                                         _digest(self.overrides, self.scenario, robot_params))

    def args(self):
        return (self.seed, self.overrides, self.label, self.scenario, self.robot_params)

    def error_row(self, error: str) -> Dict[str, Any]:
        return {"config": self.label, "seed": self.seed,
                "overrides": json.dumps(self.overrides, sort_keys=True), "error": error[:500]}


def tasks_of(doc: Mapping[str, Any], count: Optional[int] = None) -> List[Task]:
    scenario = dict(doc.get("scenario") or {})
    unknown = sorted(set(scenario) - set(SCENARIO_DEFAULTS))
    if unknown:
        raise SweepError("scenario: unknown option(s) %s (known: %s)"
                         % (unknown, sorted(SCENARIO_DEFAULTS)))
    robot_yaml = doc.get("robot_yaml")
    if robot_yaml:
        robot_yaml = str(robot_yaml) if os.path.isabs(str(robot_yaml)) else str(
            REPO / str(robot_yaml))
    robot_params = robot_planner_params(robot_yaml)
    configs = configurations(doc)
    for label, ov in configs:   # a typo fails here, not in every task of the sweep
        try:
            planner_params(ov, robot_params)
        except ValueError as e:
            raise SweepError("configuration %s: %s" % (label, e)) from None
    seeds = seeds_of(doc, count)
    # seed-major: the first results already cover every configuration
    return [Task(label, seed, ov, scenario, robot_params)
            for seed in seeds for label, ov in configs]


# --------------------------------------------------------------------------- running

def noop(i: int) -> int:
    """A trivial task (the benchmark's scheduling-overhead probe)."""
    return i


@contextlib.contextmanager
def dask_client(workers: int = 2, scheduler: Optional[str] = None):
    """A distributed.Client: connected to a running scheduler (`scheduler`, e.g.
    tcp://host:8786), or on a new LocalCluster of `workers` single-threaded worker
    processes; the cluster (when started here) is closed on exit."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.WARNING)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_tasks(client, tasks: Sequence[Task], max_in_flight: Optional[int] = None,
              on_row=None, stop=None, fn=run_episode) -> Iterator[Dict[str, Any]]:
    """Rows of `fn(*task.args())` (wm_eval.episode.run_episode) for `tasks`, as they
    complete (any order): at most `max_in_flight` (default 4 per worker thread, at least 8)
    submitted at once, each future released once read; `on_row(row)` as each arrives.
    Once `stop()` is true the tasks still in flight are cancelled and the rows end there
    (an interrupted sweep keeps what it has)."""
    from distributed import as_completed

    if max_in_flight is None:
        threads = sum((client.nthreads() or {}).values()) or 1
        max_in_flight = max(8, 4 * threads)
    pending = iter(tasks)
    in_flight: Dict[str, Tuple[Task, Any]] = {}

    def submit(task: Task):
        fut = client.submit(fn, *task.args(), key=task.key, pure=True)
        in_flight[task.key] = (task, fut)
        return fut

    ac = as_completed([submit(t) for t in itertools.islice(pending, max_in_flight)])
    for fut in ac:
        task, _ = in_flight.pop(fut.key)
        try:
            row = fut.result()
        except Exception as e:  # the cluster lost the task (KilledWorker, cancelled, ...)
            row = task.error_row("task failed on the cluster: %s: %s" % (type(e).__name__, e))
        fut.release()
        if on_row is not None:
            on_row(row)
        yield row
        if stop is not None and stop():
            client.cancel([f for _, f in in_flight.values()])
            return
        nxt = next(pending, None)
        if nxt is not None:
            ac.add(submit(nxt))


def run_inline(tasks: Sequence[Task]) -> List[Dict[str, Any]]:
    """The same tasks in this process, one after another (tests, debugging)."""
    return [run_episode(*t.args()) for t in tasks]


# --------------------------------------------------------------------------- outputs

def _num(rows, key) -> np.ndarray:
    return np.array([float(r[key]) for r in rows if r.get(key) is not None
                     and not (isinstance(r[key], float) and math.isnan(r[key]))])


def summarize(rows: Sequence[Mapping[str, Any]], order: Sequence[str]) -> List[Dict[str, Any]]:
    """Per configuration (in `order`): episodes, errors, success and the KPI statistics."""
    out = []
    for label in order:
        rs = [r for r in rows if r.get("config") == label]
        ok = [r for r in rs if not r.get("error")]
        reached = [r for r in ok if r.get("reached")]
        ttg = _num(reached, "time_to_goal_s")
        clear = _num(ok, "min_clearance_m")
        solve = _num(ok, "solve_ms_mean")
        ratio = np.array([r["path_length_m"] / r["route_length_m"] for r in reached
                          if r.get("route_length_m") and r["route_length_m"] > 0])
        models = sorted({str(r.get("motion_model")) for r in ok})
        out.append({
            "config": label, "episodes": len(rs), "errors": len(rs) - len(ok),
            "motion_model": models[0] if len(models) == 1 else "/".join(models) or "?",
            "success": len(reached) / len(ok) if ok else None,
            "ttg_median": float(np.median(ttg)) if ttg.size else None,
            "ttg_p90": float(np.percentile(ttg, 90)) if ttg.size else None,
            "path_ratio": float(np.median(ratio)) if ratio.size else None,
            "clearance_min": float(np.min(clear)) if clear.size else None,
            "clearance_p10": float(np.percentile(clear, 10)) if clear.size else None,
            "collision_cycles": int(sum(int(r.get("collisions") or 0) for r in ok)),
            "collision_episodes": sum(1 for r in ok if (r.get("collisions") or 0) > 0),
            "solve_ms": float(np.mean(solve)) if solve.size else None,
            "wall_s": float(np.mean(_num(ok, "wall_s"))) if ok else None,
            "cpu_s": float(np.mean(_num(ok, "cpu_s"))) if ok else None,
        })
    return out


def _f(v, spec="%.2f") -> str:
    return "n/a" if v is None else spec % v


def _model_free(overrides_json: str) -> str:
    ov = json.loads(overrides_json)
    ov.pop("world_model_artifact", None)
    return json.dumps(ov, sort_keys=True)


def _paired(by_seed: Mapping[int, Mapping[str, Any]], seeds: Sequence[int]):
    """(success %, min clearance, episodes with a collision) over `seeds`."""
    return (100.0 * sum(1 for s in seeds if by_seed[s]["reached"]) / len(seeds),
            min(by_seed[s]["min_clearance_m"] for s in seeds),
            sum(1 for s in seeds if by_seed[s]["collisions"] > 0))


def side_by_side(rows: Sequence[Mapping[str, Any]], order: Sequence[str]) -> List[str]:
    """Markdown lines: configurations that differ only in the motion model, kinematic
    against world model, on the same seeds (paired)."""
    first = {}
    for r in rows:
        if not r.get("error") and r.get("config") not in first:
            first[r["config"]] = r
    groups: Dict[str, Dict[str, str]] = {}
    for label in order:
        r = first.get(label)
        if r is None:
            continue
        groups.setdefault(_model_free(r["overrides"]), {})[str(r["motion_model"])] = label
    lines = ["| kinematic | world model | seeds | success kin / wm | median time to goal kin "
             "/ wm (s, both reached) | wm faster / slower (seeds) | min clearance kin / wm (m) | "
             "collision episodes kin / wm |",
             "|---|---|---:|---|---|---:|---|---|"]
    for pair in groups.values():
        if "kinematic" not in pair or "world_model" not in pair:
            continue
        kin = {r["seed"]: r for r in rows if r.get("config") == pair["kinematic"]
               and not r.get("error")}
        wm = {r["seed"]: r for r in rows if r.get("config") == pair["world_model"]
              and not r.get("error")}
        seeds = sorted(set(kin) & set(wm))
        if not seeds:
            continue
        both = [s for s in seeds if kin[s]["reached"] and wm[s]["reached"]]
        tk = [kin[s]["time_to_goal_s"] for s in both]
        tw = [wm[s]["time_to_goal_s"] for s in both]
        faster = sum(1 for a, b in zip(tk, tw) if b < a - 1e-9)
        slower = sum(1 for a, b in zip(tk, tw) if b > a + 1e-9)
        k, m = _paired(kin, seeds), _paired(wm, seeds)
        lines.append("| %s | %s | %d | %.1f%% / %.1f%% | %s / %s | %s | %.2f / %.2f | %d / %d |"
                     % (pair["kinematic"], pair["world_model"], len(seeds), k[0], m[0],
                        _f(float(np.median(tk)) if tk else None, "%.1f"),
                        _f(float(np.median(tw)) if tw else None, "%.1f"),
                        ("%d / %d of %d" % (faster, slower, len(both))) if both else "n/a",
                        k[1], m[1], k[2], m[2]))
    return lines


def report(rows, order, meta) -> str:
    summary = summarize(rows, order)
    lines = ["| configuration | motion model | episodes | errors | success | time to goal "
             "median / p90 (s) | path / route (median) | min clearance min / p10 (m) | "
             "collision episodes (cycles) | solve ms (mean) | wall / CPU s per episode |",
             "|---|---|---:|---:|---:|---|---:|---|---|---:|---:|"]
    for s in summary:
        lines.append("| %s | %s | %d | %d | %s | %s / %s | %s | %s / %s | %d (%d) | %s | %s |"
                     % (s["config"], s["motion_model"], s["episodes"], s["errors"],
                        _f(None if s["success"] is None else 100.0 * s["success"], "%.1f%%"),
                        _f(s["ttg_median"], "%.1f"), _f(s["ttg_p90"], "%.1f"),
                        _f(s["path_ratio"]), _f(s["clearance_min"]),
                        _f(s["clearance_p10"]), s["collision_episodes"],
                        s["collision_cycles"], _f(s["solve_ms"], "%.1f"),
                        "%s / %s" % (_f(s["wall_s"]), _f(s["cpu_s"]))))
    pairs = side_by_side(rows, order)
    errors = [r for r in rows if r.get("error")]
    err_lines = []
    if errors:
        kinds: Dict[str, int] = {}
        for r in errors:
            kinds[str(r["error"])[:160]] = kinds.get(str(r["error"])[:160], 0) + 1
        err_lines = ["## Errors\n"] + ["- %d x `%s`" % (n, e.replace("`", "'"))
                                       for e, n in sorted(kinds.items(), key=lambda x: -x[1])]
    return "\n".join([
        "# Sweep: %s\n" % meta["name"],
        "Written by `make sweep` (`python -m wm_eval.sweep`); do not edit by hand.\n",
        "- Date: %s; config `%s`; %d episodes (%d seeds x %d configurations)" % (
            meta["date"], meta["config"], len(rows), meta["seeds"], len(order)),
        "- Ran on: %s; wall %.0f s (%.2f episodes/s; the workers used %.2f cores: summed "
        "episode CPU s / wall); client machine: %s, Python %s" % (
            meta["cluster"], meta["wall_s"], len(rows) / max(meta["wall_s"], 1e-9),
            sum(float(r.get("cpu_s") or 0.0) for r in rows) / max(meta["wall_s"], 1e-9),
            meta["machine"], meta["python"]),
        "- Episodes: wm_eval.episode (in process: the planner's own code on the "
        "%s simulator robot, **%s, exact localization**; time to goal "
        "in simulated seconds; solve ms and wall s are this machine's, everything else is "
        "machine-independent)." % (
            meta.get("engine", "kinematic"),
            "perception: the perception core on simulated LiDAR scans"
            if meta.get("perception") == "lidar" else "perfect perception"),
        "",
        "## Per configuration\n",
        "\n".join(lines),
        "",
        "Definitions: *success*: goal reached within the time limit (of the episodes without "
        "error); *path / route*: true path length over the shortest route with every "
        "obstacle known; *min clearance*: smallest gap between the planner's footprint "
        "circles and any obstacle along the true path (negative: overlap of the "
        "conservative footprint); *collision episodes*: episodes in which the 0.7 x 0.55 m "
        "chassis overlapped an obstacle (cycles: control cycles in contact, all episodes).",
        "",
        "## World model against kinematics (same seeds)\n",
        "\n".join(pairs) if len(pairs) > 2 else "No configuration pairs differing only in the "
        "motion model.",
        "",
        "Plots: `success.png`, `time_to_goal.png`; every episode: `results.csv`.\n",
        "\n".join(err_lines),
    ]).rstrip("\n") + "\n"


def plots(rows, order, out: Path) -> List[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = summarize(rows, order)
    colors = ["tab:orange" if s["motion_model"] == "world_model" else "tab:blue"
              for s in summary]
    height = max(3.0, 0.35 * len(order) + 1.2)
    fig = Figure(figsize=(8, height))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(summary))
    ax.barh(y, [100.0 * (s["success"] or 0.0) for s in summary], color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels([s["config"] for s in summary], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("goal reached [%] (blue: kinematic, orange: world model)")
    fig.tight_layout()
    paths = [str(out / "success.png")]
    fig.savefig(paths[0], dpi=110)

    fig = Figure(figsize=(8, height))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    data = [_num([r for r in rows if r.get("config") == label and r.get("reached")
                  and not r.get("error")], "time_to_goal_s") for label in order]
    keep = [i for i, d in enumerate(data) if d.size]
    if keep:
        import matplotlib
        major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
        horizontal = ({"orientation": "horizontal"} if (major, minor) >= (3, 10)
                      else {"vert": False})
        bp = ax.boxplot([data[i] for i in keep], patch_artist=True,
                        positions=np.arange(len(keep)), **horizontal)
        for patch, i in zip(bp["boxes"], keep):
            patch.set_facecolor(colors[i])
        ax.set_yticks(np.arange(len(keep)))
        ax.set_yticklabels([order[i] for i in keep], fontsize=8)
        ax.invert_yaxis()
    ax.set_xlabel("time to goal [simulated s] (reached episodes)")
    fig.tight_layout()
    paths.append(str(out / "time_to_goal.png"))
    fig.savefig(paths[1], dpi=110)
    return paths


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def write_results(rows, order, meta, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rank = {label: i for i, label in enumerate(order)}
    rows = sorted(rows, key=lambda r: (rank.get(r.get("config"), len(rank)), r.get("seed", 0)))
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    cols = list(COLUMNS) + extra
    with open(str(out / "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([_csv_value(r.get(c)) for c in cols])
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / "SWEEP.md").write_text(report(rows, order, meta))
    plots(rows, order, out)


def _machine() -> str:
    from wm_common.host import cpu_model

    return "%s, %d cores" % (cpu_model(), os.cpu_count() or 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="sweep YAML")
    ap.add_argument("--scenarios", type=int, default=None,
                    help="seeds per configuration (default: the config's count)")
    ap.add_argument("--workers", type=int, default=2,
                    help="LocalCluster worker processes (ignored with --scheduler)")
    ap.add_argument("--scheduler", default="",
                    help="address of a running Dask scheduler, e.g. tcp://host:8786")
    ap.add_argument("--out", default="out/sweep")
    ap.add_argument("--max-in-flight", type=int, default=None,
                    help="tasks submitted at once (default: 4 per worker thread)")
    args = ap.parse_args(argv)
    try:
        doc = load_config(args.config)
        order = [label for label, _ in configurations(doc)]
        tasks = tasks_of(doc, args.scenarios)
    except (SweepError, OSError, yaml.YAMLError) as e:
        ap.error(str(e))
    n_seeds = len(seeds_of(doc, args.scenarios))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stopped = []
    signal.signal(signal.SIGINT, lambda *a: stopped.append(True))

    t_start = time.monotonic()
    with dask_client(args.workers, args.scheduler or None) as client:
        threads = sum((client.nthreads() or {}).values())
        cluster = ("scheduler %s (%d worker threads)" % (args.scheduler, threads)
                   if args.scheduler else "LocalCluster, %d worker processes x 1 thread"
                   % args.workers)
        print("sweep %s: %d episodes (%d seeds x %d configurations) on %s; started in %.1f s"
              % (doc.get("name", Path(args.config).stem), len(tasks), n_seeds, len(order),
                 cluster, time.monotonic() - t_start), flush=True)
        rows: List[Dict[str, Any]] = []
        t0 = time.monotonic()
        last = [t0]
        with open(str(out / "results.jsonl"), "w") as stream:
            def on_row(r):
                stream.write(json.dumps(r) + "\n")
                stream.flush()
            for r in run_tasks(client, tasks, args.max_in_flight, on_row,
                               stop=lambda: bool(stopped)):
                rows.append(r)
                now = time.monotonic()
                if now - last[0] > 10.0 or len(rows) == len(tasks):
                    last[0] = now
                    rate = len(rows) / max(now - t0, 1e-9)
                    print("  %d/%d episodes, %.2f/s, %d errors, ETA %.0f s" % (
                        len(rows), len(tasks), rate, sum(1 for x in rows if x.get("error")),
                        (len(tasks) - len(rows)) / max(rate, 1e-9)), flush=True)
    wall = time.monotonic() - t0
    meta = {"name": str(doc.get("name", Path(args.config).stem)), "config": args.config,
            "date": datetime.date.today().isoformat(), "seeds": n_seeds,
            "configurations": order, "cluster": cluster, "wall_s": wall,
            "machine": _machine(), "python": platform.python_version(),
            "interrupted": bool(stopped),
            "perception": str((doc.get("scenario") or {}).get("perception", "truth")),
            "engine": str((doc.get("scenario") or {}).get("engine", "kinematic"))}
    write_results(rows, order, meta, out)
    print("wrote %s (results.csv, results.json, SWEEP.md, success.png, time_to_goal.png)"
          % out, flush=True)
    return 130 if stopped else (1 if not rows else 0)


if __name__ == "__main__":
    sys.exit(main())
