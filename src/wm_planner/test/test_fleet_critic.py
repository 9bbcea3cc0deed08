"""The fleet critic: other robots' predicted paths as moving obstacles, aligned in time."""
from __future__ import annotations

import numpy as np
import pytest

from wm_planner.critic_data import CriticData
from wm_planner.critics import FleetCritic
from wm_planner.models import Goal
from wm_planner.neighbours import NeighbourPlan
from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState

DT, H = 0.1, 10


def data(controls, neighbours, footprint=None):
    state = RobotState()
    controls = np.asarray(controls, dtype=np.float64)
    return CriticData(state=state, goal=Goal(5.0, 0.0), controls=controls,
                      trajectories=unicycle_rollout(state, controls, DT),
                      dt=DT, limits=RobotLimits(),
                      robot_radius=0.3, neighbours=neighbours, footprint=footprint)


def crossing(t_cross: float, x: float = 1.0) -> NeighbourPlan:
    """A robot crossing our x axis at `x`, downward at 1 m/s, at time t_cross."""
    t = np.linspace(-0.5, 3.0, 36)
    return NeighbourPlan("r2", t, np.stack([np.full_like(t, x), (t_cross - t) * 1.0], 1), 0.3)


def test_positions_at_interpolates_and_holds():
    n = NeighbourPlan("r2", [0.0, 1.0], [[0.0, 0.0], [1.0, 2.0]], 0.3)
    np.testing.assert_allclose(n.positions_at([-1.0, 0.5, 3.0]), [[0, 0], [0.5, 1.0], [1, 2]])
    with pytest.raises(ValueError):
        NeighbourPlan("r3", [0.0, 0.0], [[0, 0], [1, 1]], 0.3)
    with pytest.raises(ValueError):
        NeighbourPlan("r3", [0.0, 1.0], [[0, np.nan], [1, 1]], 0.3)


def test_time_alignment_decides_who_pays():
    fast = np.tile([1.0, 0.0], (H, 1))    # reaches x = 1.0 at t = 1.0 s
    slow = np.tile([0.25, 0.0], (H, 1))   # at x = 0.25 then, 0.75 m short of the crossing
    critic = FleetCritic()
    # The neighbour crosses x = 1.0 at t = 1.0 s: the fast sample meets it there and then;
    # the slow one only comes within the safety margin (soft cost, no overlap).
    c = critic.score(data([fast, slow], [crossing(1.0)]))
    assert c[0] > critic.overlap_cost and 0.0 < c[1] < critic.overlap_cost
    # Same paths, the neighbour crosses 2 s later: nobody is there at the same time.
    c_late = critic.score(data([fast, slow], [crossing(3.0)]))
    assert np.all(c_late == 0.0)


def test_no_neighbours_cost_nothing_and_footprint_counts():
    fast = np.tile([1.0, 0.0], (H, 1))
    assert np.all(FleetCritic().score(data([fast], None)) == 0.0)
    assert np.all(FleetCritic().score(data([fast], [])) == 0.0)
    # A neighbour standing 0.9 m to the side of our path: clear for one 0.3 m circle (gap
    # 0.3 = the margin), inside the margin with a wide payload circle (r 0.5).
    side = NeighbourPlan("r2", [0.0, 5.0], [[0.5, 0.9], [0.5, 0.9]], 0.3)
    narrow = FleetCritic().cost(data([fast], [side]))[0]
    wide = FleetCritic().cost(data([fast], [side], footprint=[[0.0, 0.0, 0.5]]))[0]
    assert narrow == pytest.approx(0.0, abs=1e-9) and wide > 0.5


def test_weight_never_discounts_an_overlap():
    fast = np.tile([1.0, 0.0], (H, 1))
    d = data([fast], [crossing(1.0)])
    low = FleetCritic(weight=0.01).score(d)[0]
    assert low >= FleetCritic().overlap_cost


def test_mppi_yields_to_a_neighbour_crossing_its_path():
    """Through the optimizer: with a neighbour crossing 1 m ahead at 0.5-1 s, the plan's
    trajectory keeps its distance from the neighbour at every step."""
    from wm_planner.critics import make_critics
    from wm_planner.models import OptimizerSettings
    from wm_planner.optimizer import MPPI

    state = RobotState(v=0.7)
    goal = Goal(4.0, 0.0)
    n = crossing(0.8, x=0.9)
    opt = MPPI(OptimizerSettings(num_samples=512, seed=2),
               critics=make_critics({"goal": {}, "fleet": {}, "control_effort": {}}))
    res = opt.plan(state, goal, neighbours=[n])
    t = np.arange(1, H + 1) * DT
    gaps = np.hypot(*(res.trajectory[1:, :2] - n.positions_at(t)).T) - 0.3 - 0.3
    assert gaps.min() > 0.0, gaps
    plain = MPPI(OptimizerSettings(num_samples=512, seed=2),
                 critics=make_critics({"goal": {}, "control_effort": {}}))
    res0 = plain.plan(state, goal)
    gaps0 = np.hypot(*(res0.trajectory[1:, :2] - n.positions_at(t)).T) - 0.6
    assert gaps0.min() < 0.0   # without the fleet critic it would drive into the neighbour
