"""CasADi NMPC (wm_planner.nmpc) on the warehouse distance field: solve time, iterations, and
the hybrid mode (MPPI + a few NLP iterations) against MPPI alone.

    python benchmarks/bench_nmpc.py [--quick] [--draws N]

Every case runs over the same N random draws of a start (free space, random heading and
speed) and a goal 2-7 m away in the 160 x 160 warehouse field of bench_planner, and times
`NMPC.plan` cold (no warm start: pursuit initial guess) and warm (the next cycle: the first
command executed, the previous solution shifted one step), for IPOPT and CasADi's SQP
(sqpmethod + qrqp), with the plain unicycle and with the shipped world model
(worldmodel-1.0.0). The cost column (note) is the MPPI critics' cost of the plan, the same
number MPPI reports. Hybrid: MPPI (K = 512, one iteration) then `NMPC.refine` from its result;
its rows time the refine step alone (the extra time over MPPI) and note how often it was
accepted and the mean cost gain over MPPI's plan. Prints a markdown table; `run()` returns
the rows for an aggregating runner. The NLP build (once per window shape) is untimed.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Dict, List, Optional

import numpy as np

try:
    import wm_planner  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_planner"),
                    os.path.join(_SRC, "wm_world_model")]

from wm_planner.models import Goal, OptimizerSettings
from wm_planner.nmpc import NMPC
from wm_planner.optimizer import MPPI
from wm_world_model.casadi_form import casadi_form
from wm_world_model.motion_model import LearnedMotionModel
from wm_world_model.state import RobotLimits, RobotState

from bench_planner import ROBOT_RADIUS, warehouse_esdf
from benchlib import main as bench_main, row

ARTIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                        "wm_world_model", "models", "worldmodel-1.0.0")
DRAWS = 30


def draws(esdf, n: int, seed: int = 0):
    """n (start, goal) pairs: both at least 0.7 m from obstacles, 2-7 m apart."""
    rng = np.random.default_rng(seed)
    xs, ys = esdf.cell_centers()
    out = []
    while len(out) < n:
        ix, iy = rng.integers(10, esdf.width - 10, size=2)
        jx, jy = rng.integers(10, esdf.width - 10, size=2)
        if esdf.data[iy, ix] < 0.7 or esdf.data[jy, jx] < 0.7:
            continue
        d = math.hypot(xs[jx] - xs[ix], ys[jy] - ys[iy])
        if not 2.0 <= d <= 7.0:
            continue
        start = RobotState(float(xs[ix]), float(ys[iy]), float(rng.uniform(-math.pi, math.pi)),
                           float(rng.uniform(0.0, 0.6)), 0.0)
        out.append((start, Goal(float(xs[jx]), float(ys[jy]), float(rng.uniform(-3, 3)))))
    return out


def _next_state(nmpc: NMPC, state: RobotState, controls) -> RobotState:
    """The state one step later under the NMPC's own model (the warm cycle's input)."""
    traj = nmpc._rollout(state, controls)
    v, w = float(controls[0, 0]), float(controls[0, 1])
    return RobotState(float(traj[1, 0]), float(traj[1, 1]), float(traj[1, 2]), v, w)


def _stats(name: str, times, iters, costs, statuses, **extra) -> Dict[str, object]:
    ok = sum(1 for s in statuses if s == "ok")
    r = row(name, times, iters_median=float(np.median(iters)) if iters else math.nan,
            iters_max=int(max(iters)) if iters else 0,
            cost_mean=float(np.mean(costs)) if costs else math.nan, ok=ok, **extra)
    return r


def bench_solver(solver: str, artifact: str, pairs, esdf) -> List[Dict[str, object]]:
    learned = LearnedMotionModel(artifact, 0.1) if artifact else None
    form = casadi_form(learned.world_model, learned.version, 0.1) if learned else None
    nmpc = NMPC(OptimizerSettings(), RobotLimits(), robot_radius=ROBOT_RADIUS, solver=solver,
                model=form)
    model = "world_model" if artifact else "kinematic"
    nmpc.plan(pairs[0][0], pairs[0][1], esdf)          # build the NLP and solver (untimed)
    cold = {"t": [], "it": [], "c": [], "s": []}
    warm = {"t": [], "it": [], "c": [], "s": []}
    for start, goal in pairs:
        nmpc.reset()
        r = nmpc.plan(start, goal, esdf)
        for k, v in (("t", r.solve_time_ms), ("it", r.iterations), ("c", r.cost),
                     ("s", r.status)):
            cold[k].append(v)
        if r.status != "ok":
            continue
        r2 = nmpc.plan(_next_state(nmpc, start, r.controls), goal, esdf)
        for k, v in (("t", r2.solve_time_ms), ("it", r2.iterations), ("c", r2.cost),
                     ("s", r2.status)):
            warm[k].append(v)
    return [_stats("nmpc/%s,%s,cold" % (solver, model), cold["t"], cold["it"], cold["c"],
                   cold["s"]),
            _stats("nmpc/%s,%s,warm" % (solver, model), warm["t"], warm["it"], warm["c"],
                   warm["s"])]


def bench_hybrid(solver: str, qpsol: str, pairs, esdf, max_iter: int = 3
                 ) -> List[Dict[str, object]]:
    settings = OptimizerSettings(num_samples=512, seed=0)
    mppi = MPPI(settings, RobotLimits(), robot_radius=ROBOT_RADIUS)
    nmpc = NMPC(settings, RobotLimits(), robot_radius=ROBOT_RADIUS, refine_solver=solver,
                qpsol=qpsol, refine_max_iter=max_iter)
    mppi_t, ref_t, gains, accepted, iters = [], [], [], 0, []
    first = True
    for start, goal in pairs:
        mppi.reset()
        nmpc.reset()
        m = mppi.plan(start, goal, esdf)
        if first:   # build the NLP and solver (untimed)
            nmpc.refine(start, goal, esdf, m, cost_to_go=mppi.last_cost_to_go)
            nmpc.reset()
            first = False
        r = nmpc.refine(start, goal, esdf, m, cost_to_go=mppi.last_cost_to_go)
        info = nmpc.last_refine
        mppi_t.append(m.solve_time_ms)
        ref_t.append(info.time_ms)
        iters.append(info.iterations)
        if math.isfinite(info.cost_before):
            after = r.cost if r is not m else info.cost_before
            gains.append((info.cost_before - after) / max(abs(info.cost_before), 1e-9))
        accepted += int(info.accepted)
    tag = solver if solver == "ipopt" else "%s+%s" % (solver, qpsol)
    return [row("mppi/K=512 (hybrid's first stage)", mppi_t),
            row("hybrid_refine/%s,%d iter" % (tag, max_iter), ref_t,
                iters_median=float(np.median(iters)), accepted=accepted,
                gain_pct=100.0 * float(np.mean(gains)) if gains else math.nan,
                gain_max_pct=100.0 * float(np.max(gains)) if gains else math.nan)]


def run(repeats: Optional[int] = None, draws_n: Optional[int] = None
        ) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} plus iterations, costs, refine acceptance."""
    esdf = warehouse_esdf()
    n = draws_n or (max(3, min(repeats, DRAWS)) if repeats else DRAWS)
    pairs = draws(esdf, n)
    rows: List[Dict[str, object]] = []
    for artifact in ("", ARTIFACT):
        for solver in ("ipopt", "sqpmethod"):
            rows += bench_solver(solver, artifact, pairs, esdf)
    hybrid = bench_hybrid("sqpmethod", "qrqp", pairs, esdf)
    rows += hybrid
    rows += bench_hybrid("sqpmethod", "daqp", pairs, esdf)[1:]
    rows += bench_hybrid("ipopt", "qrqp", pairs, esdf)[1:]
    return rows


PEERS = {"nmpc/ipopt,kinematic,warm": "nmpc/ipopt,kinematic,cold",
         "nmpc/sqpmethod,kinematic,warm": "nmpc/sqpmethod,kinematic,cold",
         "nmpc/ipopt,world_model,warm": "nmpc/ipopt,world_model,cold",
         "nmpc/sqpmethod,world_model,warm": "nmpc/sqpmethod,world_model,cold"}


def NOTE(r) -> str:  # noqa: N802 (run_all looks the note function up by this name)
    parts = []
    if "iters_median" in r:
        parts.append("iterations median %.0f" % r["iters_median"])
    if "iters_max" in r:
        parts.append("max %d" % r["iters_max"])
    if "ok" in r:
        parts.append("%d/%d ok" % (r["ok"], r["n"]))
    if "cost_mean" in r:
        parts.append("critic cost mean %.2f" % r["cost_mean"])
    if "accepted" in r:
        parts.append("accepted %d/%d, cost gain over MPPI mean %.2f%% (max %.1f%%)"
                     % (r["accepted"], r["n"], r["gain_pct"], r["gain_max_pct"]))
    return ", ".join(parts)


def main(argv=None) -> int:
    def extra(ap):
        ap.add_argument("--draws", dest="draws_n", type=int, default=None,
                        help="random start/goal draws (default %d; --quick: 10)" % DRAWS)
    return bench_main(run, __doc__, argv, extra_args=extra, peers=PEERS, note=NOTE)


if __name__ == "__main__":
    sys.exit(main())
