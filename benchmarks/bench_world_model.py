"""Latency of the shipped world model (worldmodel-1.0.0) on CPU: one step (`next`) and the
planner's 10-step `rollout`, for MPPI batches of 256, 1024 and 4096 samples, in three
backends with the same weights: eager PyTorch, TorchScript (what the planner runs) and ONNX
Runtime (CPU execution provider; the shipped model.onnx for the rollout, the same model's
`next` exported at opset 13 for the step).

    python benchmarks/bench_world_model.py [--quick] [--threads 1,2]

Threads as the planner uses them (`world_model_threads: 1`: torch.set_num_threads(1),
ONNX Runtime intra_op_num_threads=1), and 2 for comparison. Before timing, every backend's
output is compared with eager's (max |difference|, in the "also measured" column); a backend
that disagrees by more than 1e-4 fails the benchmark. PEERS pairs each TorchScript and ONNX
Runtime case with its eager case, so the ratio column is backend / eager.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

try:
    import wm_world_model  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_world_model")]

import torch

from wm_world_model.artifact import ONNX, ONNX_OPSET, load_artifact, to_torchscript

from benchlib import main as bench_main, row, time_calls

ARTIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                        "wm_world_model", "models", "worldmodel-1.0.0")
BATCHES = (256, 1024, 4096)
THREADS = (1, 2)
BACKENDS = ("eager", "torchscript", "ort")
OPS = ("next", "rollout_h10")
TOLERANCE = 1e-4


def case_name(op: str, batch: int, threads: int, backend: str) -> str:
    return "world_model/%s/B=%d,T=%d/%s" % (op, batch, threads, backend)


PEERS = {case_name(o, b, t, k): case_name(o, b, t, "eager")
         for o in OPS for b in BATCHES for t in THREADS for k in BACKENDS[1:]}


class _Next(torch.nn.Module):
    """model.next as a module's forward, for the ONNX export of one step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, state, action, context):
        return self.model.next(state, action, context)


def export_next(model, path: str, batch: int = 64) -> None:
    """`next` at the artifact's opset, dynamic batch (as artifact.export_onnx does rollout)."""
    args = (torch.zeros(batch, 5), torch.zeros(batch, 2), torch.zeros(batch,
                                                                      model.config.context_dim))
    kwargs = {}
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Next(model).eval(), args, path, opset_version=ONNX_OPSET,
                          input_names=["state", "action", "context"], output_names=["next"],
                          dynamic_axes={n: {0: "batch"} for n in ("state", "action",
                                                                   "context", "next")},
                          **kwargs)


def mppi_inputs(batch: int, horizon: int, context_dim: int, seed: int = 0):
    """What the planner feeds the model: one robot's state for every sample (odom frame,
    pose at the origin), random command sequences within the limits, a known payload."""
    rng = np.random.default_rng(seed)
    state = np.tile(np.array([[0.0, 0.0, 0.3, 0.5, 0.1]], np.float32), (batch, 1))
    actions = np.stack([rng.uniform(-0.2, 1.0, (batch, horizon)),
                        rng.uniform(-1.5, 1.5, (batch, horizon))], axis=2).astype(np.float32)
    context = np.zeros((batch, context_dim), np.float32)
    context[:, 0], context[:, 1] = 50.0, 1.0
    return state, actions, context


def _session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _calls(op: str, model, scripted, sessions, state, actions, context
           ) -> Dict[str, Callable[[], np.ndarray]]:
    """backend -> a call returning the output as numpy (conversion of torch's output is a
    view, so it costs nothing)."""
    st, at, ct = (torch.from_numpy(a) for a in (state, actions, context))
    if op == "next":
        a0 = np.ascontiguousarray(actions[:, 0])
        a0t = torch.from_numpy(a0)
        feed = {"state": state, "action": a0, "context": context}
        return {"eager": lambda: model.next(st, a0t, ct).numpy(),
                "torchscript": lambda: scripted.next(st, a0t, ct).numpy(),
                "ort": lambda: sessions["next"].run(None, feed)[0]}
    feed = {"state": state, "actions": actions, "context": context}
    return {"eager": lambda: model.rollout(st, at, ct).numpy(),
            "torchscript": lambda: scripted.rollout(st, at, ct).numpy(),
            "ort": lambda: sessions["rollout_h10"].run(None, feed)[0]}


def _reps(repeats: Optional[int], batch: int) -> int:
    return repeats or {256: 200, 1024: 100}.get(batch, 50)


def run(repeats: Optional[int] = None, threads: Sequence[int] = THREADS
        ) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n, max_abs_diff} (diff: vs eager, same inputs)."""
    model, meta = load_artifact(ARTIFACT)
    if model.config.horizon != 10:
        raise RuntimeError("expected a 10-step model, %s has %d" % (meta["version"],
                                                                    model.config.horizon))
    scripted = to_torchscript(model)
    rows: List[Dict[str, object]] = []
    before = torch.get_num_threads()
    try:
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
            next_onnx = os.path.join(tmp, "next.onnx")
            export_next(model, next_onnx)
            for t in threads:
                torch.set_num_threads(int(t))
                sessions = {"next": _session(next_onnx, t),
                            "rollout_h10": _session(os.path.join(ARTIFACT, ONNX), t)}
                for op in OPS:
                    for b in BATCHES:
                        inputs = mppi_inputs(b, model.config.horizon, model.config.context_dim)
                        calls = _calls(op, model, scripted, sessions, *inputs)
                        ref = calls["eager"]()
                        for backend in BACKENDS:
                            out = calls[backend]()
                            diff = float(np.max(np.abs(out - ref)))
                            if out.shape != ref.shape or not diff <= TOLERANCE:
                                raise RuntimeError("%s disagrees with eager: shape %s vs %s, "
                                                   "max |diff| %g" % (case_name(op, b, t, backend),
                                                                      out.shape, ref.shape, diff))
                            # TorchScript's profiling executor optimises after a few calls.
                            samples = time_calls(calls[backend], _reps(repeats, b), warmup=5)
                            rows.append(row(case_name(op, b, t, backend), samples,
                                            max_abs_diff=diff))
    finally:
        torch.set_num_threads(before)
    return rows


def diff_note(r: Mapping[str, object]) -> str:
    d = r.get("max_abs_diff")
    return "" if d is None or r["name"].endswith("/eager") else "max |diff| vs eager %.1e" % d


def _extra_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=lambda s: tuple(int(x) for x in s.split(",")),
                    default=THREADS, help="comma list of thread counts (default 1,2)")


# the last table column in BENCHMARKS.md (run_all.py)
NOTE = diff_note


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, extra_args=_extra_args, peers=PEERS,
                      quick_repeats=10, note=diff_note)


if __name__ == "__main__":
    raise SystemExit(main())
