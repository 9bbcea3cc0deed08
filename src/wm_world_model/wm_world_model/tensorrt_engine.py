"""TensorRT engine of the world model's rollout, built on the target from the artifact's ONNX file.

    python -m wm_world_model.tensorrt_engine --artifact <dir> --batch 512 --out wm.plan --check

Builds an FP16 engine with one fixed batch (the planner's num_samples: a fixed shape lets
TensorRT pick its fastest kernels), then, with --check, runs it against the TorchScript module
on the same GPU on random in-range inputs and prints the largest difference and the timings of
both (median / p99 over repeated calls), as JSON.

Needs `tensorrt` (JetPack 5 ships TensorRT 8.5; the binding-index API is used there, the
named-tensor API of TensorRT >= 8.6 elsewhere) and a CUDA build of torch (its tensors serve
as the engine's device buffers, so no pycuda is needed). Engines are specific to the GPU and
TensorRT version that built them: build on the robot, never copy one between machines.
STATUS: written against TensorRT's documented Python API but never run: no GPU was available
to the session that wrote it and nothing here has run on a Jetson (see README).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .artifact import ONNX, load_artifact, to_torchscript

INPUTS = ("state", "actions", "context")
OUTPUT = "states"


class TensorRTUnavailable(RuntimeError):
    """tensorrt or CUDA is not importable / usable on this machine."""


def _trt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise TensorRTUnavailable("tensorrt is not importable: %s" % e) from e
    import torch

    if not torch.cuda.is_available():
        raise TensorRTUnavailable("torch has no CUDA device here")
    return trt


def build_engine(onnx_path: str, batch: int, horizon: int, context_dim: int,
                 fp16: bool = True, workspace_mb: int = 512) -> bytes:
    """Serialized engine for a fixed batch of `batch` samples."""
    trt = _trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError("TensorRT cannot parse %s: %s" % (onnx_path, errors))
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    else:  # TensorRT < 8.4
        config.max_workspace_size = workspace_mb << 20
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shapes = {"state": (batch, 5), "actions": (batch, horizon, 2),
              "context": (batch, context_dim)}
    for name, shape in shapes.items():
        profile.set_shape(name, shape, shape, shape)
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    return bytes(engine)


class TensorRTRollout:
    """Runs a serialized rollout engine on torch CUDA tensors."""

    def __init__(self, engine: bytes, batch: int, horizon: int, context_dim: int):
        import torch

        trt = _trt()
        self._torch = torch
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine)
        if self.engine is None:
            raise RuntimeError("cannot deserialize the TensorRT engine (other GPU or version?)")
        self.context = self.engine.create_execution_context()
        self.batch, self.horizon = int(batch), int(horizon)
        self.out = torch.empty(self.batch, self.horizon + 1, 5, device="cuda")
        self._named = hasattr(self.engine, "num_io_tensors")   # TensorRT >= 8.6
        shapes = {"state": (batch, 5), "actions": (batch, horizon, 2),
                  "context": (batch, context_dim)}
        if self._named:
            for name, shape in shapes.items():
                self.context.set_input_shape(name, shape)
        else:
            for name, shape in shapes.items():
                self.context.set_binding_shape(self.engine.get_binding_index(name), shape)

    def __call__(self, state, actions, context):
        torch = self._torch
        ins = {"state": state, "actions": actions, "context": context}
        ins = {k: v.to("cuda", torch.float32).contiguous() for k, v in ins.items()}
        if ins["state"].shape[0] != self.batch:
            raise ValueError("engine built for batch %d, got %d" % (self.batch,
                                                                    ins["state"].shape[0]))
        stream = torch.cuda.current_stream()
        if self._named:
            for k, v in ins.items():
                self.context.set_tensor_address(k, v.data_ptr())
            self.context.set_tensor_address(OUTPUT, self.out.data_ptr())
            self.context.execute_async_v3(stream.cuda_stream)
        else:
            bindings = [0] * self.engine.num_bindings
            for k, v in ins.items():
                bindings[self.engine.get_binding_index(k)] = v.data_ptr()
            bindings[self.engine.get_binding_index(OUTPUT)] = self.out.data_ptr()
            self.context.execute_async_v2(bindings, stream.cuda_stream)
        stream.synchronize()
        return self.out


def timings(fn, repeats: int) -> Dict[str, float]:
    """Median and p99 (ms) of a CUDA call, synchronised, after 10 warm-up calls."""
    import torch

    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99))}


def random_inputs(cfg, batch: int, seed: int = 0):
    """(state, actions, context) CPU tensors in the planner's range: headings, speeds and
    commands a robot drives, payloads 0..150 kg (known)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    state = torch.zeros(batch, 5)
    state[:, 2] = (torch.rand(batch, generator=g) * 2 - 1) * 3.14
    state[:, 3] = torch.rand(batch, generator=g)
    state[:, 4] = torch.rand(batch, generator=g) * 2 - 1
    actions = torch.stack([torch.rand(batch, cfg.horizon, generator=g) * 1.2 - 0.2,
                           torch.rand(batch, cfg.horizon, generator=g) * 3 - 1.5], dim=2)
    ctx = torch.zeros(batch, cfg.context_dim)
    ctx[:, 0] = torch.rand(batch, generator=g) * 150
    ctx[:, 1] = 1.0
    return state, actions, ctx


def check(artifact: str, batch: int, engine: bytes, repeats: int = 200,
          seed: int = 0) -> Dict[str, Any]:
    """TensorRT vs TorchScript (CUDA) on random in-range inputs: max difference, timings."""
    import torch


    model, meta = load_artifact(artifact)
    cfg = model.config
    script = to_torchscript(model).to("cuda")
    cuda = [t.to("cuda") for t in random_inputs(cfg, batch, seed)]
    trt_run = TensorRTRollout(engine, batch, cfg.horizon, cfg.context_dim)
    with torch.no_grad():
        ref = script.rollout(*cuda)
        out = trt_run(*cuda)
        diff = (out - ref).abs()
        return {
            "artifact": meta["version"], "batch": batch, "gpu": torch.cuda.get_device_name(),
            "max_abs_diff_position_m": float(diff[..., :2].max()),
            "max_abs_diff_yaw_rad": float(diff[..., 2].max()),
            "torchscript_cuda": timings(lambda: script.rollout(*cuda), repeats),
            "tensorrt": timings(lambda: trt_run(*cuda), repeats),
        }


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_world_model_tensorrt",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--batch", type=int, default=512, help="the planner's num_samples")
    ap.add_argument("--out", default="", help="where to write the serialized engine")
    ap.add_argument("--fp32", action="store_true", help="no FP16")
    ap.add_argument("--check", action="store_true", help="compare with TorchScript, time both")
    a = ap.parse_args(argv)

    model, _ = load_artifact(a.artifact)
    onnx_path = os.path.join(a.artifact, ONNX)
    if not os.path.isfile(onnx_path):
        print("error: %s has no %s" % (a.artifact, ONNX), file=sys.stderr)
        return 1
    try:
        engine = build_engine(onnx_path, a.batch, model.config.horizon, model.config.context_dim,
                              fp16=not a.fp32)
    except TensorRTUnavailable as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if a.out:
        with open(a.out, "wb") as f:
            f.write(engine)
    if a.check:
        print(json.dumps(check(a.artifact, a.batch, engine), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
