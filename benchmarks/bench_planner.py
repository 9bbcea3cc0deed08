"""Latency of the MPPI planning core on a warehouse-like 160 x 160 distance field.

    python benchmarks/bench_planner.py [--quick]

Times `MPPI.plan` (default critics, H = 10, one iteration, cost-to-go included) for
K = 256, 512, 1024, 2048 samples, and the navigation function (`cost_to_go`) alone.
Prints a markdown table; `run()` returns the rows for an aggregating runner.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import numpy as np
from scipy.ndimage import distance_transform_edt

try:
    import wm_planner  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_planner")]

from wm_common.grid import Grid2D
from wm_planner.models import Goal, OptimizerSettings, RobotLimits, RobotState
from wm_planner.navigation_function import cost_to_go
from wm_planner.optimizer import MPPI

from benchlib import main as bench_main, row, time_calls

RES = 0.1
SIZE = 160
ROBOT_RADIUS = 0.35
STATE = RobotState(0.0, 0.0, 0.1, 0.5, 0.1)
# In the next aisle, so the geodesic has to go round the end of a shelf row.
GOAL = Goal(6.0, 3.4, 0.0)


def warehouse_esdf(seed: int = 0) -> Grid2D:
    """A 16 x 16 m window centred on the robot: shelf rows 1 m deep with 2.4 m aisles
    along x (one row ending 5 m ahead of the robot), a wall, and a few pallets; signed
    distance from scipy's EDT like the perception side produces it."""
    rng = np.random.default_rng(seed)
    origin = -SIZE * RES / 2.0
    xs = origin + (np.arange(SIZE) + 0.5) * RES
    x, y = np.meshgrid(xs, xs)
    occ = np.zeros((SIZE, SIZE), dtype=bool)
    for yc in (-6.8, -3.4, 1.7, 5.1):          # shelf rows (robot's aisle: y in -1.2..1.2)
        occ |= (np.abs(y - yc) <= 0.5) & (x >= -7.0) & (x <= 7.0)
    occ |= (np.abs(y - 1.7) <= 0.5) & (x >= -7.0) & (x <= 5.0)
    occ &= ~((np.abs(y - 1.7) <= 0.5) & (x > 5.0))   # the row the route goes round
    occ |= x >= 7.6                                  # end wall
    for _ in range(6):                               # pallets in the aisles
        px, py = rng.uniform(-6.0, 6.0), rng.choice([-5.1, 3.4]) + rng.uniform(-0.4, 0.4)
        occ |= (np.abs(x - px) <= 0.6) & (np.abs(y - py) <= 0.4)
    esdf = (distance_transform_edt(~occ) - distance_transform_edt(occ)) * RES
    return Grid2D(origin, origin, RES, esdf, outside=float(esdf.max()), frame_id="odom")


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} (n: timed repetitions)."""
    esdf = warehouse_esdf()
    rows: List[Dict[str, object]] = []
    reps = repeats or 300
    rows.append(row("cost_to_go/%dx%d" % (SIZE, SIZE), time_calls(
        lambda: cost_to_go(esdf, (GOAL.x, GOAL.y), ROBOT_RADIUS, 0.3), reps, warmup=3)))
    for k in (256, 512, 1024, 2048):
        planner = MPPI(OptimizerSettings(num_samples=k, horizon=10, seed=0), RobotLimits(),
                       robot_radius=ROBOT_RADIUS)
        reps = repeats or (300 if k <= 512 else 150)
        result = planner.plan(STATE, GOAL, esdf)
        if result.status != "ok":
            raise RuntimeError("benchmark scene is broken: plan status %r" % result.status)
        rows.append(row("mppi_plan/K=%d,H=10" % k, time_calls(
            lambda p=planner: p.plan(STATE, GOAL, esdf), reps, warmup=3)))
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
