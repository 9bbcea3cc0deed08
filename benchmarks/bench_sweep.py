"""The sweep runner on Dask (wm_eval.sweep): one fixed set of in-process closed-loop
episodes (wm_eval.episode) on a distributed.LocalCluster of 1 and of 2 worker processes
(one thread each), and what the cluster itself costs.

    python benchmarks/bench_sweep.py [--quick]

The task set: seeds 0..11 (`--quick`: 0..3) x 4 planner configurations (kinematic and the
shipped world model at H = 10, kinematic at H = 15, the world model at H = 8), robot.yaml
otherwise: 48 episodes (16), the same tasks, keys and seeds for both cluster sizes. Each
cluster is started fresh and warmed up (one short episode per worker: imports, TorchScript
kernels, world model load, the world's map), then runs the set through
wm_eval.sweep.run_tasks. The two runs must return identical rows (apart from timings),
else the benchmark fails.

Rows:
* episodes/W workers: the episode's own wall time inside the worker (median, p99); its
  ratio against 1 worker is what sharing the cores costs each episode. The last column:
  throughput (episodes/s over the set's makespan), the speed-up, the episode's CPU time
  (its thread's, so what it costs on a core of its own) and the cores the workers actually
  got (summed CPU / makespan: below W when other processes share the machine).
* task set makespan/W workers: first submit to last row (n = 1); ratio = 1 / speed-up.
* cluster start-up/W workers: LocalCluster + Client until every worker is up.
* worker warm-up: the first, short episode on a fresh worker (per worker).
* no-op task/batched: 2000 trivial tasks through client.map + gather on 2 workers, per task
  (the scheduler's per-task overhead, amortised); no-op task/round trip: one submit ->
  result at a time (latency). These bound how far the same code scales on a cluster: see
  NOTE on the makespan rows.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional

import numpy as np
from benchlib import main, row

from wm_eval.episode import WORLD_MODEL
from wm_eval.sweep import Task, noop, run_tasks, tasks_of

CONFIGS = {"kinematic/H10": {"world_model_artifact": "none", "horizon": 10},
           "world_model/H10": {"world_model_artifact": WORLD_MODEL, "horizon": 10},
           "kinematic/H15": {"world_model_artifact": "none", "horizon": 15},
           "world_model/H8": {"world_model_artifact": WORLD_MODEL, "horizon": 8}}
TIMING = ("wall_s", "cpu_s", "solve_ms_mean", "solve_ms_p99")

PEERS = {"episodes/2 workers": "episodes/1 worker",
         "task set makespan/2 workers": "task set makespan/1 worker",
         "cluster start-up/2 workers": "cluster start-up/1 worker"}


def task_set(n_seeds: int) -> List[Task]:
    doc = {"seeds": {"start": 0, "count": n_seeds},
           "cases": [{"name": k, "overrides": v} for k, v in CONFIGS.items()]}
    return tasks_of(doc)


def _start(workers: int):
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(workers)
    return cluster, client, (time.perf_counter() - t0) * 1e3


def _warm_up(client) -> List[float]:
    """One short world-model episode per worker (pinned to it): ms each."""
    from wm_eval.episode import run_episode

    futs = [client.submit(run_episode, 0, {"world_model_artifact": WORLD_MODEL}, "warm-up",
                          {"time_limit": 0.2}, None, workers=[w], pure=False,
                          allow_other_workers=False)
            for w in client.scheduler_info()["workers"]]
    rows = client.gather(futs)
    bad = [r["error"] for r in rows if r["error"]]
    if bad:
        raise RuntimeError("warm-up episode failed: %s" % bad[0])
    return [1e3 * r["wall_s"] for r in rows]


def _noop(client, n: int, rounds: int):
    """(per-task ms of batches of n no-op tasks, round-trip ms of single ones)."""
    batched = []
    for k in range(rounds):
        t0 = time.perf_counter()
        futs = client.map(noop, range(k * n, (k + 1) * n), pure=False)
        client.gather(futs)
        batched.append((time.perf_counter() - t0) * 1e3 / n)
        del futs
    trip = []
    for i in range(50):
        t0 = time.perf_counter()
        client.submit(noop, i, pure=False).result()
        trip.append((time.perf_counter() - t0) * 1e3)
    return batched, trip


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    quick = repeats is not None
    tasks = task_set(4 if quick else 12)
    rows, results, cost = [], {}, {}
    for workers in (1, 2):
        label = "%d worker%s" % (workers, "" if workers == 1 else "s")
        cluster, client, start_ms = _start(workers)
        try:
            warm = _warm_up(client)
            t0 = time.perf_counter()
            got = list(run_tasks(client, tasks))
            makespan = time.perf_counter() - t0
            if workers == 2:
                batched, trip = _noop(client, 500 if quick else 2000, 2 if quick else 5)
        finally:
            client.close()
            cluster.close()
        errors = [r["error"] for r in got if r.get("error")]
        if errors:
            raise RuntimeError("%d episodes failed, e.g. %s" % (len(errors), errors[0]))
        results[workers] = {(r["config"], r["seed"]): {k: v for k, v in r.items()
                                                       if k not in TIMING} for r in got}
        cpu = [r["cpu_s"] for r in got]
        cost[workers] = {"rate": len(got) / makespan, "cpu_s": float(np.median(cpu)),
                         "cores": float(np.sum(cpu)) / makespan}
        rows.append(row("episodes/%s" % label, [1e3 * r["wall_s"] for r in got],
                        workers=workers, **cost[workers]))
        rows.append(row("task set makespan/%s" % label, [makespan * 1e3], workers=workers,
                        episodes=len(got)))
        rows.append(row("cluster start-up/%s" % label, [start_ms]))
        rows.append(row("worker warm-up (first short episode)/%s" % label, warm))
    if results[1] != results[2]:
        diff = [k for k in results[1] if results[1][k] != results[2].get(k)]
        raise RuntimeError("1 and 2 workers gave different rows, e.g. %s" % (diff[:3],))
    rows.append(row("no-op task/batched, per task (2 workers)", batched))
    rows.append(row("no-op task/round trip (2 workers)", trip))
    for r in rows:
        r["speedup"] = cost[2]["rate"] / cost[1]["rate"]
        r["cpu_s_1w"] = cost[1]["cpu_s"]
        r["overhead_ms"] = float(np.median(batched))
    return rows


def note(r) -> str:
    name = str(r["name"])
    if name.startswith("episodes/"):
        return ("%.2f episodes/s%s; CPU %.2f s per episode (median); the worker%s used %.2f "
                "cores (CPU / makespan)" % (
                    r["rate"], "" if r["workers"] == 1 else
                    " (%.2fx the 1-worker throughput)" % r["speedup"], r["cpu_s"],
                    "" if r["workers"] == 1 else "s", r["cores"]))
    if name == "task set makespan/2 workers":
        e, o = r["cpu_s_1w"], r["overhead_ms"]
        return ("rows identical to 1 worker; %d episodes. On a cluster: ~%.1f CPU s per "
                "episode against ~%.1f ms of scheduler + client work per task (no-op, "
                "batched), so N single-thread workers on dedicated cores give ~N / %.1f "
                "episodes/s and stay compute-bound up to N ~ %d (%d tasks/s the scheduler "
                "handles here over the %.2f tasks/s each worker asks for); makespan ~ "
                "start-up + warm-up + episodes x %.1f s / N + the longest episode" % (
                    r["episodes"], e, o, e, int(e * 1e3 / max(o, 1e-6)),
                    int(1e3 / max(o, 1e-6)), 1.0 / e, e))
    return ""


NOTE = note


if __name__ == "__main__":
    main(run, __doc__, peers=PEERS, note=NOTE)
