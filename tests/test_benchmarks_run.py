"""The in-process benchmarks run against the current code (`--quick`: a few repetitions).
`make bench` is not part of `make test`, so a benchmark calling an API a refactor changed
would otherwise surface only when someone runs the benchmarks (bench_nmpc once passed an
NMPC argument that was gone). Each must exit 0 and print its table; several also check
their own results on the way (peers computing the same thing, outputs against eager).
What they time is not asserted: speed lives in BENCHMARKS.md. The benchmarks over DDS,
Redis, wrk or Dask (and the closed-loop quality one, ~75 s) are left to `make bench`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
IN_PROCESS = ("bench_perception", "bench_voxelize", "bench_encoder", "bench_planner",
              "bench_controller", "bench_global_planner", "bench_nmpc", "bench_world_model",
              "bench_sim", "bench_mujoco")


@pytest.mark.parametrize("name", IN_PROCESS)
def test_benchmark_runs(name):
    r = subprocess.run([sys.executable, str(BENCH / (name + ".py")), "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| case |") and len(rows) >= 3, r.stdout[-2000:]
