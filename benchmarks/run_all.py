"""`make bench`: run every benchmark in one process, one after another, and write
BENCHMARKS.md (median and p99 per case, the machine, ratios where a case has a peer).

Numbers from this script are measured on the machine that runs it, never on a Jetson; the
file says so. The development machine is shared and noisy: compare ratios, not absolutes.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_dds  # noqa: E402
import bench_encoder  # noqa: E402
import bench_mujoco  # noqa: E402
import bench_perception  # noqa: E402
import bench_perception_e2e  # noqa: E402
import bench_planner  # noqa: E402
import bench_sim  # noqa: E402
import bench_voxelize  # noqa: E402
import bench_world_model  # noqa: E402
from benchlib import to_markdown  # noqa: E402

SUITES = [
    ("Perception (PointCloud2 decode, voxel grid, distance field)", bench_perception),
    ("Perception end to end across processes: Ouster cloud at 10 Hz (@20Hz: 20 Hz; 2x: front "
     "and rear LiDARs merged) -> perception node -> voxel_grid / distance_field (latency "
     "from the cloud's stamp, delivered %, rate)",
     bench_perception_e2e),
    ("Voxelization against open3d and spconv (decode + crop + voxelize; peers produce the "
     "same occupied-voxel set, checked)", bench_voxelize),
    ("Scene encoder (sparse conv with spconv vs the dense PyTorch fallback), CPU",
     bench_encoder),
    ("Planner (MPPI, kinematic and world model, all critics; peer: pytorch_mppi)", bench_planner),
    ("Control cycle (wm_planner.controller.Controller.step, recoveries idle) against the "
     "route update + plan it wraps (peer) and the plan alone", __import__("bench_controller")),
    ("Global route planner (config/maps, 0.1 m grid)", __import__("bench_global_planner")),
    ("Planner quality, closed loop: kinematic vs world model", __import__("bench_planner_quality")),
    ("NMPC (CasADi IPOPT / SQP) and the MPPI + NMPC refine hybrid", __import__("bench_nmpc")),
    ("World model (shipped worldmodel-1.0.0), CPU: one step (next) and the 10-step rollout, "
     "eager vs TorchScript vs ONNX Runtime (CPU EP), T = torch / ORT threads (the planner "
     "uses 1); peer: eager; every backend's output checked against eager (1e-4) before "
     "timing", bench_world_model),
    ("Simulator (LiDAR ray casting, analytic)", bench_sim),
    ("Simulator (MuJoCo physics and ray casting; peer: the analytic LiDAR)", bench_mujoco),
    ("DDS: Ouster clouds across processes at 10 Hz (peer: Fast DDS defaults; latency, "
     "delivered %, rate)", bench_dds),
    ("Safety: collision monitor across processes, obstacle cloud -> 'stop' on safety_state "
     "(Ouster 128x1024 and 16x512, cmd_vel_nav at 20 Hz), and the gate's per-cloud work in "
     "process; peer: the 16x512 cloud; planner comparison in the last column",
     __import__("bench_safety")),
    ("Safety: fault drills over DDS, stop time from the fault to zero at the simulated base "
     "(simulated time; one run each)", __import__("bench_drills")),
    ("Fleet through Redis: N simulated robots at 10 Hz (write + read neighbours), one "
     "redis-server and a 3-node Redis Cluster on loopback", __import__("bench_fleet")),
    ("Sweep runner on Dask: one fixed set of in-process closed-loop episodes on a "
     "LocalCluster of 1 and of 2 worker processes (peer: 1 worker), cluster start-up and "
     "per-task scheduling overhead", __import__("bench_sweep")),
    ("World-model service: POST /v1/predict under wrk at rising concurrency (c), dynamic "
     "batching (the default: no window, up to 64; and a 2 ms window) vs one request per model "
     "call (peer); /v1/plan; the median column is wrk's p50, Hz is requests per second",
     __import__("bench_service")),
]


def machine() -> str:
    from wm_common.host import cpu_model

    cpu = cpu_model()
    import numpy
    import scipy
    return ("%s, %d cores, %s %s, Python %s, numpy %s, scipy %s" % (
        cpu, os.cpu_count() or 0, platform.system(), platform.machine(),
        platform.python_version(), numpy.__version__, scipy.__version__))


def device_sections():
    """Results measured on a lent GPU machine (device tool), kept as JSON in
    benchmarks/device/: they cannot be re-measured by `make bench` here, so they are shown
    with their own date and machine."""
    out = []
    for path in sorted((HERE / "device").glob("*.json")):
        doc = json.loads(path.read_text())
        lines = ["| case | median ms | p99 ms | n |", "|---|---:|---:|---:|"]
        for name, r in sorted(doc.get("cases", {}).items()):
            if isinstance(r, dict):
                lines.append("| %s | %.2f | %.2f | %d |" % (name, r["median_ms"], r["p99_ms"],
                                                          r["n"]))
            else:
                lines.append("| %s | error: %s | | |" % (name, r))
        if doc.get("accuracy"):
            lines += ["", "| check | value |", "|---|---|"]
            lines += ["| %s | %s |" % (k, ("%.3g" % v) if isinstance(v, float) else v)
                      for k, v in doc["accuracy"].items()]
        out.append("## On a GPU machine (device tool): %s\n\nSource: `benchmarks/%s.py`, "
                   "results in `benchmarks/device/%s`; %s (torch %s), measured %s. %s\n\n%s\n"
                   % (path.stem, path.stem, path.name, doc.get("device_name"), doc.get("torch"),
                      doc.get("measured", "?"), doc.get("note", ""), "\n".join(lines)))
    return out


def replace_sections(path: Path, sections) -> int:
    """Put freshly run sections into an existing BENCHMARKS.md (same heading: replaced;
    new: appended before the GPU sections), leaving every other suite's numbers alone."""
    text = path.read_text()
    parts = text.split("\n## ")
    head, body = parts[0], ["## " + p for p in parts[1:]]
    for sec in sections:
        title = sec.split("\n", 1)[0]
        idx = [i for i, b in enumerate(body) if b.split("\n", 1)[0] == title]
        if idx:
            body[idx[0]] = sec
        else:
            gpu = [i for i, b in enumerate(body) if b.startswith("## On a GPU machine")]
            body.insert(gpu[0] if gpu else len(body), sec)
    path.write_text("\n".join([head.rstrip("\n") + "\n"] + [b.rstrip("\n") + "\n"
                                                              for b in body]))
    print("updated %d section(s) of %s" % (len(sections), path))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke run)")
    ap.add_argument("--out", default=str(HERE.parent / "BENCHMARKS.md"))
    ap.add_argument("--only", action="append",
                    help="run only suites whose module is named (repeatable) and replace "
                         "their sections in the existing file")
    ap.add_argument("--device-only", action="store_true",
                    help="only refresh the GPU sections from benchmarks/device/*.json")
    args = ap.parse_args(argv)
    if args.device_only:
        return replace_sections(Path(args.out), device_sections())
    sections = []
    for title, mod in SUITES:
        if args.only and mod.__name__ not in args.only:
            continue
        print("== %s" % title, flush=True)
        rows = mod.run(repeats=10 if args.quick else None)
        md = to_markdown(rows, getattr(mod, "PEERS", None), getattr(mod, "NOTE", None))
        print(md, flush=True)
        sections.append("## %s\n\nSource: `benchmarks/%s.py`\n\n%s\n" % (
            title, mod.__name__, md))
    if args.only:
        return replace_sections(Path(args.out), sections)
    sections += device_sections()
    text = (
        "# Benchmarks\n\n"
        "Written by `make bench` (`benchmarks/run_all.py`); do not edit by hand.\n\n"
        "- Date: %s\n- Machine: %s\n"
        "- **Not measured on a Jetson AGX Xavier.** This is the shared 2-core development "
        "machine; absolute numbers are noisy, ratios are what to compare.\n%s\n\n%s" % (
            datetime.date.today().isoformat(), machine(),
            "- Quick run (few repetitions): smoke numbers only.\n" if args.quick else "",
            "\n".join(sections)))
    Path(args.out).write_text(text)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
