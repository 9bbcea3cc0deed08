"""The world model on a CUDA GPU: what can be checked of the TensorRT path without TensorRT.

    python benchmarks/gpu_world_model.py --out gpu.json        (on a machine with a GPU)

Run through the device tool when a session is lent a GPU (a data-centre card: its timings
say nothing about the Xavier's, label them so). TensorRT itself cannot be installed there
(its wheels are over a gigabyte; nothing can be downloaded on that machine), so this checks
what the engine check (wm_world_model.tensorrt_engine --check) compares against:

* the TorchScript rollout on CUDA (FP32) against the same on the CPU: the reference the
  TensorRT engine is held to must itself agree with what the planner runs;
* the same network in FP16 on CUDA against FP32 on the CPU: the error FP16 brings, the
  precision the engine is built with (TensorRT may choose FP32 for some layers: its error
  is at most about this);
* the artifact's ONNX file (what TensorRT parses) in onnxruntime against TorchScript;
* timings (median / p99 over repeated synchronised calls) at the planner's batch (512) and
  larger ones; and that tensorrt_engine says clearly why it cannot build here.
Writes one JSON; kept in benchmarks/device/, run_all.py shows it in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for _pkg in ("wm_world_model", "wm_common"):   # plain packages: no colcon build there
    sys.path.insert(0, str(REPO / "src" / _pkg))
sys.path.insert(0, str(REPO / "benchmarks"))
from benchlib import row, time_calls  # noqa: E402  (after the path is set)

ARTIFACT = REPO / "src" / "wm_world_model" / "models" / "worldmodel-1.0.0"


def cpu_timings(fn, repeats: int):
    """Median / p99 of CPU calls (benchlib's timing; CUDA calls use tensorrt_engine.timings,
    which synchronises the device)."""
    r = row("cpu", time_calls(fn, repeats, warmup=3))
    return {"median_ms": r["median_ms"], "p99_ms": r["p99_ms"]}


def graph_timings(script, cuda_inputs, repeats: int):
    """The same rollout captured once as a CUDA graph and replayed: what is left when the
    per-kernel launch cost (the TorchScript loop launches dozens of small kernels) is gone,
    about what a fused engine saves. The error of the replay against the eager call too."""
    import torch

    from wm_world_model import tensorrt_engine as te

    static = [t.clone() for t in cuda_inputs]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            script.rollout(*static)          # warm-up on the side stream, as capture needs
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = script.rollout(*static)
    graph.replay()
    torch.cuda.synchronize()
    diff = float((out - script.rollout(*static)).abs().max())
    return dict(te.timings(graph.replay, repeats), replay_vs_eager_max=diff)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="512,2048,8192,32768")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--measured", default="", help="when and how, for BENCHMARKS.md")
    a = ap.parse_args(argv)
    import torch

    from wm_world_model import tensorrt_engine as te
    from wm_world_model.artifact import ONNX, load_artifact, to_torchscript

    if not torch.cuda.is_available():
        print("error: torch sees no CUDA device", file=sys.stderr)
        return 2
    model, meta = load_artifact(str(ARTIFACT))
    cfg = model.config
    cpu = to_torchscript(model)
    gpu = to_torchscript(copy.deepcopy(model)).to("cuda")
    half = to_torchscript(copy.deepcopy(model).half()).to("cuda")
    res = {"artifact": meta["version"], "device_name": torch.cuda.get_device_name(),
           "torch": torch.__version__, "python": platform.python_version(),
           "cpu_threads": torch.get_num_threads(), "measured": a.measured,
           "note": "World-model rollout (H = 10) per call; cpu = TorchScript on the host's "
                   "%d threads. A data-centre GPU and its host CPU: says nothing about the "
                   "Xavier." % torch.get_num_threads(),
           "batches": [], "cases": {}, "accuracy": {}}
    for batch in [int(b) for b in a.batches.split(",")]:
        state, actions, ctx = te.random_inputs(cfg, batch, seed=batch)
        cuda = [t.to("cuda") for t in (state, actions, ctx)]
        cuda16 = [t.half() for t in cuda]
        with torch.no_grad():
            ref = cpu.rollout(state, actions, ctx)
            out32 = gpu.rollout(*cuda).cpu()
            out16 = half.rollout(*cuda16).float().cpu()
            row = {"batch": batch, "horizon": int(actions.shape[1]),
                   "fp32_cuda_vs_cpu_max_m": float((out32 - ref)[..., :2].abs().max()),
                   "fp32_cuda_vs_cpu_max_yaw": float((out32 - ref)[..., 2].abs().max()),
                   "fp16_cuda_vs_cpu_max_m": float((out16 - ref)[..., :2].abs().max()),
                   "fp16_cuda_vs_cpu_max_yaw": float((out16 - ref)[..., 2].abs().max()),
                   "finite": bool(torch.isfinite(out16).all() and torch.isfinite(out32).all()),
                   # the calls are timed at once, within this iteration (B023 does not apply)
                   "cpu": cpu_timings(lambda: cpu.rollout(state, actions, ctx),  # noqa: B023
                                      max(5, a.repeats // 20)),
                   "cuda_fp32": te.timings(lambda: gpu.rollout(*cuda),  # noqa: B023
                                           a.repeats),
                   "cuda_fp16": te.timings(lambda: half.rollout(*cuda16),  # noqa: B023
                                           a.repeats)}
            row["cuda_fp32_graph"] = graph_timings(gpu, cuda, a.repeats)
        res["batches"].append(row)
        for case in ("cpu", "cuda_fp32", "cuda_fp16", "cuda_fp32_graph"):
            res["cases"]["b%05d/%s" % (batch, case)] = dict(
                median_ms=row[case]["median_ms"], p99_ms=row[case]["p99_ms"],
                n=max(5, a.repeats // 20) if case == "cpu" else a.repeats)
        for key in ("fp32_cuda_vs_cpu_max_m", "fp16_cuda_vs_cpu_max_m",
                    "fp16_cuda_vs_cpu_max_yaw"):
            res["accuracy"]["b%05d %s" % (batch, key)] = row[key]
        print(json.dumps(row), flush=True)
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(os.path.join(str(ARTIFACT), ONNX),
                                    providers=["CPUExecutionProvider"])
        state, actions, ctx = te.random_inputs(cfg, 64, seed=1)
        feeds = {"state": state.numpy(), "actions": actions.numpy(), "context": ctx.numpy()}
        out = sess.run(None, feeds)[0]
        with torch.no_grad():
            ref = cpu.rollout(state, actions, ctx).numpy()
        res["onnxruntime"] = {"version": ort.__version__, "batch": 64,
                              "max_abs_diff_m": float(np.abs(out - ref)[..., :2].max()),
                              "max_abs_diff_yaw": float(np.abs(out - ref)[..., 2].max())}
        res["accuracy"]["onnxruntime %s vs TorchScript, max m" % ort.__version__] = \
            res["onnxruntime"]["max_abs_diff_m"]
    except Exception as e:   # report, do not hide: the JSON says what failed
        res["onnxruntime"] = {"error": "%s: %s" % (type(e).__name__, e)}
    try:
        te.build_engine(os.path.join(str(ARTIFACT), ONNX), 512, cfg.horizon, cfg.context_dim)
        res["tensorrt"] = "built (unexpected on this machine)"
    except te.TensorRTUnavailable as e:
        res["tensorrt"] = "not available: %s" % e
    res["accuracy"]["tensorrt"] = res["tensorrt"]
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "batches"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
