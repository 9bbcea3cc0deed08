"""Perception's occupancy forecast in the planner: grid look-ups, time alignment, staleness,
and the optimizer keeping clear of where something is predicted to be."""
import math

import numpy as np
import pytest

from wm_planner.critic_data import CriticData
from wm_planner.critics import DEFAULT_CRITICS, PredictedOccupancyCritic, make_critics
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.occupancy_forecast import PredictedOccupancy
from wm_planner.optimizer import MPPI
from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld

H, DT = 10, 0.1


def blob(cx, cy, half, time_offset, p=0.95, res=0.1, n=80, origin=(-4.0, -4.0)):
    """An axis-aligned forecast with a square of probability p, side 2 * half, at (cx, cy)."""
    xs = origin[0] + (np.arange(n) + 0.5) * res
    ys = origin[1] + (np.arange(n) + 0.5) * res
    prob = np.zeros((n, n), dtype=np.float32)
    prob[(np.abs(xs[None, :] - cx) <= half) & (np.abs(ys[:, None] - cy) <= half)] = p
    return PredictedOccupancy(time_offset, prob, res, origin[0], origin[1], 0.0)


def make_data(controls, predictions, state=None, footprint=None, esdf=None):
    state = state or RobotState(0.0, 0.0, 0.0)
    controls = np.asarray(controls, dtype=np.float64)
    return CriticData(state=state, goal=Goal(5.0, 0.0, 0.0), controls=controls,
                      trajectories=unicycle_rollout(state, controls, DT),
                      dt=DT, limits=RobotLimits(),
                      robot_radius=0.3, footprint=footprint, esdf=esdf,
                      predictions=predictions)


def const(*speeds):
    return np.array([np.tile([v, 0.0], (H, 1)) for v in speeds])


def test_lookup_matches_hand_computed_cells_on_a_rotated_grid():
    # 4 columns x 3 rows of 0.5 m, origin (1, 2), turned 90 deg: the grid's +x is odom +y,
    # its +y is odom -x. Cell (i, j) centre: (1 - (j + 0.5) * 0.5, 2 + (i + 0.5) * 0.5).
    prob = (np.arange(12, dtype=np.float32) / 12.0).reshape(3, 4)
    grid = PredictedOccupancy(0.5, prob, 0.5, 1.0, 2.0, math.pi / 2)
    for j in range(3):
        for i in range(4):
            centre = (1.0 - (j + 0.5) * 0.5, 2.0 + (i + 0.5) * 0.5)
            assert grid.probability_at(np.array(centre)) == pytest.approx(prob[j, i])
    # column 3, row 1 by hand: odom (0.6, 3.9) -> grid (1.9, 0.4) m -> cell (3, 0)
    assert grid.probability_at(np.array([0.6, 3.9])) == pytest.approx(prob[0, 3])
    # odom (0.6, 3.9) read as if the grid were not rotated would be outside; (1.1, 2.1) is
    # on the wrong side of the rotated grid's y axis: outside, 0.
    assert grid.probability_at(np.array([1.1, 2.1])) == 0.0
    assert grid.probability_at(np.array([0.9, 4.1])) == 0.0  # past the last column
    assert grid.probability_at(np.array([-0.6, 2.1])) == 0.0  # past the last row
    # vectorised over any leading shape
    pts = np.array([[[0.75, 2.25], [0.25, 3.75]], [[9.0, 9.0], [-0.25, 2.25]]])
    np.testing.assert_allclose(grid.probability_at(pts),
                               [[prob[0, 0], prob[1, 3]], [0.0, prob[2, 0]]], rtol=1e-6)
    # an arbitrary yaw: cell (2, 1) centre by composing the pose by hand
    yaw = 0.7
    grid = PredictedOccupancy(0.5, prob, 0.5, 1.0, 2.0, yaw)
    lx, ly = 2.5 * 0.5, 1.5 * 0.5
    x = 1.0 + math.cos(yaw) * lx - math.sin(yaw) * ly
    y = 2.0 + math.sin(yaw) * lx + math.cos(yaw) * ly
    assert grid.probability_at(np.array([x, y])) == pytest.approx(prob[1, 2])


def test_from_percent_and_validation():
    g = PredictedOccupancy.from_percent([0, 50, -1, 100, 7, 0], 3, 2, 0.25, 0.0, 0.0, 0.0, 0.5)
    np.testing.assert_allclose(g.probability, [[0.0, 0.5, 0.0], [1.0, 0.07, 0.0]], atol=1e-6)
    assert g.probability.dtype == np.float32 and g.time_offset == 0.5
    with pytest.raises(ValueError, match="values"):
        PredictedOccupancy.from_percent([0, 101, 0, 0], 2, 2, 0.25, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="5 values"):
        PredictedOccupancy.from_percent([0] * 5, 2, 2, 0.25, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="resolution"):
        PredictedOccupancy.from_percent([0] * 4, 2, 2, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        PredictedOccupancy.from_percent([0] * 4, 2, 2, 0.25, float("nan"), 0.0, 0.0)


def test_dilation_covers_the_circle():
    g = blob(0.05, 0.05, 0.04, 0.5)   # one 0.1 m cell, centre (0.05, 0.05)
    assert g.probability_at(np.array([0.05, 0.05])) == pytest.approx(0.95)
    assert g.probability_at(np.array([0.25, 0.05])) == 0.0
    d = g.dilated(0.2)   # cells whose centres are within 0.2 + 0.05 m
    assert d.probability_at(np.array([0.25, 0.05])) == pytest.approx(0.95)
    assert d.probability_at(np.array([0.19, 0.19])) == pytest.approx(0.95)
    assert d.probability_at(np.array([0.25, 0.25])) == 0.0   # 0.28 m centre to centre
    assert d.probability_at(np.array([0.45, 0.05])) == 0.0
    assert g.dilated(0.0) is g


def test_no_prediction_costs_nothing():
    critic = PredictedOccupancyCritic()
    for preds in (None, []):
        data = make_data(const(0.8, 0.0), preds)
        np.testing.assert_array_equal(critic.score(data), 0.0)
        assert data.in_collision is None
    assert "predicted_occupancy" in DEFAULT_CRITICS
    assert isinstance(make_critics()[-1], PredictedOccupancyCritic)


def test_cost_follows_the_time_the_cell_is_occupied():
    # Something predicted at x = 2 m, 0.5 s ahead, gone by 1 s. The fast trajectory
    # (4 m/s) is there at 0.5 s; the slow one (2 m/s) passes the same spot at 1 s.
    there_at_05 = [blob(2.0, 0.0, 0.05, 0.5), blob(2.0, 0.0, -1.0, 1.0)]
    critic = PredictedOccupancyCritic()
    c = critic.score(make_data(const(4.0, 2.0), there_at_05))
    assert c[0] > 0.0 and c[1] == 0.0, c
    # The same spot predicted occupied at 1 s instead: now the slow one pays.
    there_at_10 = [blob(2.0, 0.0, -1.0, 0.5), blob(2.0, 0.0, 0.05, 1.0)]
    data = make_data(const(4.0, 2.0), there_at_10)
    c = critic.score(data)
    assert c[1] > 0.0 and c[0] == 0.0, c
    assert data.in_collision is None, "a learned forecast must never flag a collision"


def test_cost_shape_threshold_and_footprint():
    critic = PredictedOccupancyCritic(weight=1.0, threshold=0.5)
    still = const(0.0)
    at_robot = [blob(0.0, 0.0, 0.05, 0.5, p=0.75)]
    # every step within max_age of the forecast, each (0.75 - 0.5) / 0.5 = 0.5
    assert critic.score(make_data(still, at_robot))[0] == pytest.approx(0.5 * H)
    assert critic.score(make_data(still, [blob(0.0, 0.0, 0.05, 0.5, p=0.5)]))[0] == 0.0
    # a footprint circle 0.5 m ahead reaches a cell the centre does not
    ahead = [blob(0.5, 0.0, 0.05, 0.5)]
    one = np.array([[0.0, 0.0, 0.05]])
    two = np.array([[0.0, 0.0, 0.05], [0.5, 0.0, 0.05]])
    assert critic.score(make_data(still, ahead, footprint=one))[0] == 0.0
    assert critic.score(make_data(still, ahead, footprint=two))[0] > 0.0
    # time_power > 0 weighs the near steps more; the weights still sum to H
    front = PredictedOccupancyCritic(weight=1.0, time_power=1.0)
    assert front.score(make_data(still, at_robot))[0] == pytest.approx(0.5 * H)
    with pytest.raises(ValueError):
        PredictedOccupancyCritic(threshold=1.0)


def test_stale_prediction_is_ignored():
    # A forecast for 1 s before the state, right on the path: ignored with max_age 0.5 s.
    stale = [blob(0.4, 0.0, 0.3, -1.0)]
    data = make_data(const(0.8), stale)
    np.testing.assert_array_equal(PredictedOccupancyCritic().score(data), 0.0)
    assert PredictedOccupancyCritic(max_age=2.0).score(data)[0] > 0.0


def test_optimizer_keeps_away_from_a_region_predicted_occupied():
    # Driving at 0.5 m/s toward a goal 4 m ahead; something is predicted 0.8 m ahead at
    # 0.5 s and gone at 1 s (crossing). Without the forecast the plan drives into it.
    esdf = BoxWorld([]).window(0.0, 0.0)
    state, goal = RobotState(0.0, 0.0, 0.0, 0.5, 0.0), Goal(4.0, 0.0, 0.0)
    preds = [blob(0.8, 0.0, 0.15, 0.5), blob(0.8, 0.0, -1.0, 1.0)]
    critic = PredictedOccupancyCritic()

    def met(result):
        data = make_data(result.controls[None], preds, state=state)
        return float(critic.probability(data).max()), result.trajectory

    for seed in range(3):
        without = MPPI(OptimizerSettings(seed=seed), RobotLimits(), robot_radius=0.3)
        with_ = MPPI(OptimizerSettings(seed=seed), RobotLimits(), robot_radius=0.3)
        p_without, traj_without = met(without.plan(state, goal, esdf))
        r = with_.plan(state, goal, esdf, predictions=preds)
        assert r.status == "ok"
        p_with, traj_with = met(r)
        assert p_without > 0.5, "the scenario should put the unaware plan into the region"
        assert p_with < 0.5, (seed, p_with, traj_with)
        # it yields (slows) rather than stopping for good: still moving toward the goal
        assert traj_with[-1, 0] > 0.1


def forecast(marked, yaw, res=0.25, n=64, centre=(0.0, 0.0), time_offset=0.5, p=0.95):
    """A forecast like perception's: n x n cells of res, centred on `centre` and turned by
    the robot's yaw, p where marked(x, y) holds at the cell's odom centre (composed here by
    hand, not with the code under test)."""
    c, s = math.cos(yaw), math.sin(yaw)
    half = 0.5 * n * res
    ox = centre[0] - c * half + s * half
    oy = centre[1] - s * half - c * half
    g = (np.arange(n) + 0.5) * res
    x = ox + c * g[None, :] - s * g[:, None]
    y = oy + s * g[None, :] + c * g[:, None]
    prob = np.where(marked(x, y), p, 0.0).astype(np.float32)
    return PredictedOccupancy(time_offset, prob, res, ox, oy, yaw)


# A wall along the path, its face 0.4 m to the left of the robot's centre line.
WALL = (-3.0, 6.0, 0.4, 0.6)


def on_wall(x, y, smear=0.125):
    """The wall as a learned forecast sees it: every cell that overlaps it (half a cell)."""
    x0, x1, y0, y1 = WALL
    return (x >= x0 - smear) & (x <= x1 + smear) & (y >= y0 - smear) & (y <= y1 + smear)


def person(x, y):
    """Someone predicted on the path 0.6 m ahead, where the distance field sees free space."""
    return np.hypot(x - 0.6, y + 0.05) <= 0.2


def test_static_cells_cost_nothing_moving_ones_still_do():
    # The forecast is robot-aligned (yaw 0.3 here), the esdf odom-aligned: the mask has to
    # compose the forecast's pose, or the wall's cells would be looked up in the wrong place.
    esdf = BoxWorld([WALL]).window(0.0, 0.0)
    drive = const(0.8)
    critic = PredictedOccupancyCritic()
    for yaw in (0.0, 0.3):
        wall = [forecast(on_wall, yaw)]
        both = [forecast(lambda x, y: on_wall(x, y) | person(x, y), yaw)]
        alone = [forecast(person, yaw)]
        g = both[0]
        np.testing.assert_array_equal(g.probability_at(g.cell_centres()), g.probability)
        # without a distance field the old behaviour: the wall beside the path costs
        assert critic.score(make_data(drive, wall))[0] > 0.0, yaw
        np.testing.assert_array_equal(critic.score(make_data(drive, wall, esdf=esdf)), 0.0)
        c = critic.score(make_data(drive, both, esdf=esdf))[0]
        assert c > 0.0, yaw
        data = make_data(drive, alone, esdf=esdf)
        assert critic.score(data)[0] == pytest.approx(c)
        assert data.in_collision is None


def test_static_margin_is_applied_before_the_footprint_dilation():
    # Wall cells 0.25 m (one cell) off the face are dropped even though the 0.3 m footprint
    # would reach them; a margin of 0 keeps the smear outside the wall, which then costs.
    esdf = BoxWorld([WALL]).window(0.0, 0.0)
    data = make_data(const(0.8), [forecast(on_wall, 0.0)], esdf=esdf)
    assert PredictedOccupancyCritic().score(data)[0] == 0.0
    assert PredictedOccupancyCritic(static_margin=0.0).score(data)[0] > 0.0
    with pytest.raises(ValueError):
        PredictedOccupancyCritic(static_margin=-0.1)


def test_static_mask_is_built_once_per_forecast_and_field():
    def counted(esdf):
        sample, esdf.calls = esdf.sample, []
        esdf.sample = lambda xy: esdf.calls.append(1) or sample(xy)
        return esdf

    esdf = counted(BoxWorld([WALL]).window(0.0, 0.0))
    preds = [forecast(on_wall, 0.3, time_offset=0.5), forecast(person, 0.3, time_offset=1.0)]
    critic = PredictedOccupancyCritic()
    scores = [critic.score(make_data(controls, preds, esdf=esdf))  # two calls of one plan
              for controls in (const(0.8, 0.4), const(0.2, 0.6, 0.0))]
    assert len(esdf.calls) == 2, "one mask per forecast, reused by the second call"
    assert scores[0][0] > 0.0 and scores[1][2] == 0.0
    # a new field (the next plan) is masked afresh, with the same result for the same values
    other = counted(BoxWorld([WALL]).window(0.0, 0.0))
    np.testing.assert_array_equal(critic.score(make_data(const(0.8, 0.4), preds, esdf=other)),
                                  scores[0])
    assert len(other.calls) == 2 and len(esdf.calls) == 2
    assert len(critic._grids) <= critic.CACHE_SIZE
