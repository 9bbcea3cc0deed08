"""Scene-encoder forward time on a GPU (dense PyTorch backend; spconv-cuXXX is not on the
device image), next to the same model on that machine's CPU, for the device tool:

    python3 benchmarks/gpu_encoder.py --out DIR     (writes DIR/gpu_encoder.json)

A data-centre GPU says nothing about the Xavier: the numbers are labelled with the device.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "src", p)
                for p in ("wm_common", "wm_sim", "wm_perception")] + [HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_encoder import typical_input  # noqa: E402
from wm_perception.encoder import EncoderConfig, SceneModel  # noqa: E402


def timed(fn, device, repeats=50, warmup=5):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(out)), "p99_ms": float(np.percentile(out, 99)),
            "n": len(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=".")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    cfg = EncoderConfig()
    coords, feats, n_active = typical_input(cfg)
    motions = torch.zeros(1, 2, 5)
    motions[:, :, 0] = 0.4
    model = SceneModel(cfg, backend="dense").eval()
    results = {"device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available()
               else "none", "torch": torch.__version__, "active_cells": int(n_active),
               "cases": {}}
    with torch.no_grad():
        for device in ("cpu", "cuda"):
            if device == "cuda" and not torch.cuda.is_available():
                continue
            m = model.to(device)
            c, f, mo = coords.to(device), feats.to(device), motions.to(device)
            try:
                results["cases"]["%s/encode" % device] = timed(
                    lambda m=m, c=c, f=f: m.encode(c, f, 1), device)
                results["cases"]["%s/predict_k2" % device] = timed(
                    lambda m=m, c=c, f=f, mo=mo: m.predict(c, f, mo), device)
            except Exception as e:  # report, do not hide: the CPU numbers still come back
                results["cases"]["%s/error" % device] = repr(e)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_encoder.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
