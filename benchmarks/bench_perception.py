"""Latency of the perception core on Ouster-sized clouds: decode, pipeline, and both.

    python benchmarks/bench_perception.py [--quick]

Prints a markdown table; `run()` returns the rows for an aggregating runner.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import numpy as np

try:
    import wm_perception  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_perception")]

from wm_common.geometry import Pose2D
from wm_common.point_layouts import OUSTER, pack_points
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_perception.pointcloud import decode_points

from benchlib import main as bench_main, row, time_calls

SENSOR_IN_BASE = (0.2, 0.0, 0.4, 0.0)
BASE_IN_ODOM = Pose2D(12.34, -5.67, 0.8)


def warehouse_scan(rings: int, cols: int, seed: int = 0):
    """An organized scan from inside a 20 x 12 m hall with a row of shelves: ray-cast walls,
    floor hits for downward beams and ~5 % dropouts, so the decoder and the crop see the
    proportions a real scan has."""
    rng = np.random.default_rng(seed)
    elev = np.radians(np.linspace(-22.5, 22.5, rings))[:, None]
    az = np.linspace(-np.pi, np.pi, cols, endpoint=False)[None, :]
    dx, dy = np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az)
    dz = np.sin(elev) * np.ones_like(az)
    # A ray parallel to a wall never meets it: its 1/0 is +inf and loses the minimum.
    with np.errstate(divide="ignore"):
        tx = np.where(dx > 0, 8.0, 12.0) / np.abs(dx)   # sensor 2 m off the hall's centre
        ty = 6.0 / np.abs(dy)
        shelf = np.where(dy > 0, 1.5 / np.abs(dy), np.inf)  # a shelf face 1.5 m to the left
        floor = np.where(dz < 0, 0.4 / np.abs(dz), np.inf)  # 0.4 m below the sensor
    t = np.minimum(np.minimum(tx, ty), np.minimum(shelf, floor))
    t = t * (1.0 + rng.normal(0.0, 0.002, t.shape))
    drop = rng.random(t.shape) < 0.05
    xyz = {k: np.where(drop, np.nan, t * d).astype(np.float32).ravel()
           for k, d in (("x", dx), ("y", dy), ("z", dz))}
    n = rings * cols
    columns = dict(xyz, t=(np.arange(n) % cols) * (100_000_000 // cols),
                   ring=np.repeat(np.arange(rings), cols),
                   range=np.where(drop, 0, t * 1000).astype(np.int64).ravel())
    return pack_points(OUSTER, columns, height=rings)


def _bench_cloud(perception: Perception, rings: int, cols: int,
                 repeats: int) -> List[Dict[str, object]]:
    data = warehouse_scan(rings, cols)
    step = OUSTER.point_step

    def decode():
        return decode_points(OUSTER.fields, data, cols, rings, step, cols * step, False,
                             time_field="t")

    xyz = decode().xyz

    def pipeline():
        return perception.process(xyz, SENSOR_IN_BASE, BASE_IN_ODOM)

    def both():
        return perception.process(decode().xyz, SENSOR_IN_BASE, BASE_IN_ODOM)

    tag = "ouster_%dx%d" % (rings, cols)
    return [row("%s/%s" % (tag, what), time_calls(fn, repeats, warmup=3))
            for what, fn in (("decode", decode), ("pipeline", pipeline),
                             ("decode+pipeline", both))]


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} (n: timed repetitions)."""
    perception = Perception(PerceptionConfig())
    rows: List[Dict[str, object]] = []
    for rings, cols, default_repeats in ((16, 1024, 300), (128, 2048, 60)):
        rows += _bench_cloud(perception, rings, cols, repeats or default_repeats)
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
