"""The one interface the control cycle plans through, whatever the planner's `solver`
parameter chose: the MPPI sampler (wm_planner.optimizer.MPPI), the CasADi NMPC
(wm_planner.nmpc.NMPC) or the hybrid of both (MPPI, then an NMPC refine of its plan).

A Solver takes the robot's state, the goal, the distance field and what the critics read
(the route, perception's occupancy forecasts, the fleet's neighbours), and returns a
PlanResult; `reset` forgets its warm start. MPPI and NMPC implement it themselves; Hybrid
composes them. The critics, the settings, the limits and the motion model come from the
same parameters for every solver (wm_planner.configure, nmpc.build_nmpc), so switching the
solver changes how the cost is minimised, not what it is.

Plain Python; Python 3.8.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol, Sequence

import numpy as np

from wm_common.grid import Grid2D
from wm_world_model.state import RobotState

from .models import Goal, PlanResult
from .nmpc import NMPC
from .optimizer import MPPI


class Solver(Protocol):
    """What the controller plans with (see the module docstring)."""

    def plan(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D] = None, *,
             predictions: Optional[Sequence[Any]] = None,
             route: Optional[np.ndarray] = None,
             neighbours: Optional[Sequence[Any]] = None) -> PlanResult: ...

    def reset(self) -> None: ...


class Hybrid:
    """MPPI's plan, refined by a few NMPC iterations when MPPI succeeded (its cost-to-go
    reused); NMPC.refine keeps the MPPI plan unless the refined one is feasible and cheaper
    under all the critics."""

    def __init__(self, mppi: MPPI, nmpc: NMPC):
        self.mppi, self.nmpc = mppi, nmpc

    def plan(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D] = None, *,
             predictions: Optional[Sequence[Any]] = None,
             route: Optional[np.ndarray] = None,
             neighbours: Optional[Sequence[Any]] = None) -> PlanResult:
        result = self.mppi.plan(state, goal, esdf, predictions=predictions, route=route,
                                neighbours=neighbours)
        if result.status != "ok":
            return result
        return self.nmpc.refine(state, goal, esdf, result,
                                cost_to_go=self.mppi.last_cost_to_go, predictions=predictions)

    def reset(self) -> None:
        self.mppi.reset()
        self.nmpc.reset()


def build_solver(p: Mapping[str, Any], mppi: MPPI, nmpc: Optional[NMPC]) -> Solver:
    """The solver the `solver` parameter names, from the MPPI and the NMPC built from the
    same parameters (nmpc None for solver mppi)."""
    name = p.get("solver", "mppi")
    if name == "mppi":
        return mppi
    if nmpc is None:
        raise ValueError("solver %r needs the NMPC (nmpc.build_nmpc)" % (name,))
    return nmpc if name == "nmpc" else Hybrid(mppi, nmpc)
