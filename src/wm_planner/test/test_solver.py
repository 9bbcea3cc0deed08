"""One solver interface: the MPPI, the NMPC and the hybrid are built from the same
parameters and called the same way (wm_planner.solver)."""
from __future__ import annotations

import math

import pytest

from planner_world import BoxWorld
from wm_planner.configure import build_optimizer, planner_params
from wm_planner.models import Goal
from wm_planner.nmpc import NMPC, build_nmpc
from wm_planner.optimizer import MPPI
from wm_planner.solver import Hybrid, build_solver
from wm_world_model.state import RobotState


def solvers():
    built = {}
    for name in ("mppi", "nmpc", "hybrid"):
        p = planner_params({"solver": name, "world_model_artifact": "", "seed": 3})
        mppi = build_optimizer(p)
        built[name] = build_solver(p, mppi, build_nmpc(p, mppi.motion_model))
    return built


def test_each_solver_is_what_its_parameter_names_and_shares_the_critics():
    s = solvers()
    assert isinstance(s["mppi"], MPPI) and isinstance(s["nmpc"], NMPC)
    assert isinstance(s["hybrid"], Hybrid)
    names = [c.name for c in s["mppi"].critics]
    assert [c.name for c in s["nmpc"].critics] == names
    assert [c.name for c in s["hybrid"].nmpc.critics] == names
    with pytest.raises(ValueError, match="needs the NMPC"):
        build_solver({"solver": "hybrid"}, s["mppi"], None)


def test_every_solver_plans_through_the_same_call():
    field = BoxWorld([(1.6, 2.2, -0.4, 0.4)]).window(0.0, 0.0)
    state, goal = RobotState(0.0, 0.0, 0.0, 0.3, 0.0), Goal(4.0, 0.0, 0.0)
    route = [[0.0, 0.0], [2.0, 0.8], [4.0, 0.0]]
    for name, solver in solvers().items():
        solver.reset()
        r = solver.plan(state, goal, field, route=route, predictions=[], neighbours=[])
        assert r.status == "ok", name
        assert r.controls.shape == (10, 2) and r.trajectory.shape == (11, 3), name
        end = r.trajectory[-1]
        assert math.hypot(4.0 - end[0], end[1]) < 4.0 - 0.2, name   # it makes progress
