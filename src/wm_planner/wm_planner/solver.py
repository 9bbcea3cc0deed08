"""One plan with the configured solver (the planner's `solver` parameter), shared by the node
and the in-process episodes of the sweeps so that both plan the same way.

Plain Python; Python 3.8.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

def plan_with(solver: str, optimizer, nmpc, state, target, field, *, route=None,
              predictions: Optional[Sequence[Any]] = None,
              neighbours: Optional[Sequence[Any]] = None):
    """`solver` (one of wm_planner.configure.SOLVERS): mppi, the MPPI; nmpc, the CasADi
    NMPC alone; hybrid, MPPI then an NMPC refine of a successful MPPI plan (its cost-to-go
    reused)."""
    if solver == "nmpc":
        return nmpc.plan(state, target, field)
    result = optimizer.plan(state, target, field, predictions=predictions, route=route,
                            neighbours=neighbours)
    if solver == "hybrid" and result.status == "ok":
        result = nmpc.refine(state, target, field, result,
                             cost_to_go=optimizer.last_cost_to_go, predictions=predictions)
    return result
