"""The world-model service's batched /v1/predict path on a CUDA GPU (device: cuda, the CUDA
image's setting) against the CPU, without HTTP.

    python benchmarks/gpu_service.py --out gpu_service.json        (on a machine with a GPU)

Run through the device tool when a session is lent a GPU (a data-centre card and its host
CPU: the numbers say nothing about a cluster node's, label them so). Checks and measures:

* the same batched predictions (wm_service.engine.Engine.predict_batch) on CUDA and on the
  CPU: largest position / heading difference over 1 s (random states, commands, payloads);
* one batched call's time at growing batch sizes, CPU (torch_threads threads) vs CUDA;
* the dynamic batcher in process (wm_service.batcher, asyncio, no HTTP) at 256 concurrent
  callers: requests per second and the mean batch, CPU vs CUDA.
Writes one JSON; kept in benchmarks/device/, run_all.py shows it in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for _pkg in ("wm_service", "wm_planner", "wm_world_model", "wm_fleet", "wm_common"):
    sys.path.insert(0, str(REPO / "src" / _pkg))      # plain packages: no colcon build there
sys.path.insert(0, str(REPO / "benchmarks"))
from benchlib import row, time_calls  # noqa: E402

MODEL = "worldmodel-1.0.0"


def items(n: int, seed: int):
    from wm_service.engine import PredictItem

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        state = (rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-3, 3),
                 rng.uniform(0, 1.2), rng.uniform(-0.5, 0.5))
        u = rng.uniform([-0.3, -1.0], [1.5, 1.0], (10, 2))
        out.append(PredictItem(MODEL, state, u, None if i % 3 == 0 else float(i % 150)))
    return out


def batcher_rate(engine, callers: int, seconds: float):
    """Requests/s and mean batch of `callers` concurrent asyncio callers, one model thread."""
    from wm_service.batcher import DynamicBatcher

    work = items(callers, 7)

    async def main():
        ex = ThreadPoolExecutor(1, initializer=engine.set_threads)
        b = DynamicBatcher(engine.predict_batch, ex, window_s=0.002, max_batch=callers)
        b.start()
        done = [0]
        end = time.perf_counter() + seconds

        async def caller(item):
            while time.perf_counter() < end:
                await b.submit(item)
                done[0] += 1
        await asyncio.gather(*(caller(it) for it in work))
        await b.stop()
        ex.shutdown()
        return done[0] / seconds, b.items / max(b.batches, 1)
    return asyncio.run(main())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,16,64,256,1024,4096")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--threads", type=int, default=4, help="torch threads of the CPU engine")
    ap.add_argument("--measured", default="", help="when and how, for BENCHMARKS.md")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke run of this script")
    a = ap.parse_args(argv)
    import torch

    from wm_service.config import ServiceConfig
    from wm_service.engine import Engine

    if a.device != "cpu" and not torch.cuda.is_available():
        print("error: torch sees no CUDA device", file=sys.stderr)
        return 2
    models = str(REPO / "src" / "wm_world_model" / "models")
    cpu = Engine(ServiceConfig(models_dir=models, torch_threads=a.threads))
    cuda = Engine(ServiceConfig(models_dir=models, torch_threads=a.threads, device=a.device))
    name = torch.cuda.get_device_name() if a.device != "cpu" else "cpu"
    res = {"device_name": name, "torch": torch.__version__,
           "python": platform.python_version(), "measured": a.measured,
           "note": "wm_service's batched /v1/predict (world model, H = 10) per call, CPU "
                   "(%d torch threads) vs CUDA, and the dynamic batcher in process (no "
                   "HTTP). A data-centre GPU and its host: says nothing about other "
                   "machines." % a.threads, "cases": {}, "accuracy": {}}
    worst_m = worst_yaw = 0.0
    for n in [int(b) for b in a.batches.split(",")]:
        batch = items(n, n)
        ref, got = cpu.predict_batch(batch), cuda.predict_batch(batch)
        for r, g in zip(ref, got):
            worst_m = max(worst_m, float(np.abs(r.states[:, :2] - g.states[:, :2]).max()))
            worst_yaw = max(worst_yaw, float(np.abs(r.states[:, 2] - g.states[:, 2]).max()))
        assert all(g.trusted for g in got)
        for label, eng in (("cpu", cpu), ("cuda", cuda)):
            reps = a.repeats if label == "cuda" or n <= 256 else max(10, a.repeats // 10)
            r = row(label, time_calls(lambda e=eng, b=batch: e.predict_batch(b), reps,
                                      warmup=3))
            res["cases"]["predict_batch n=%05d %s" % (n, label)] = {
                "median_ms": r["median_ms"], "p99_ms": r["p99_ms"], "n": r["n"]}
        print(n, json.dumps({k: v for k, v in res["cases"].items() if "n=%05d" % n in k}),
              flush=True)
    res["accuracy"]["cuda vs cpu, max position difference over 1 s [m]"] = worst_m
    res["accuracy"]["cuda vs cpu, max heading difference over 1 s [rad]"] = worst_yaw
    for label, eng in (("cpu", cpu), ("cuda", cuda)):
        rate, mean_batch = batcher_rate(eng, 256, 5.0)
        res["accuracy"]["batcher, 256 callers, %s: requests/s" % label] = rate
        res["accuracy"]["batcher, 256 callers, %s: mean batch" % label] = mean_batch
        print(label, rate, mean_batch, flush=True)
    Path(a.out).write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
