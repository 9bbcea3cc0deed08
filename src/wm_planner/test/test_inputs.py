"""The planner node's inputs (wm_planner.inputs, wm_planner.neighbours.neighbour_plans) and
its set-parameters check (wm_planner.params.check_changes): what is refused and why, when an
input is stale, which forecasts and neighbours a cycle gets. Plain Python."""
from __future__ import annotations

import array
import math

import pytest

from wm_common.geometry import Pose2D
from wm_planner.inputs import InputState, check_payload
from wm_planner.neighbours import neighbour_plans
from wm_planner.occupancy_forecast import PredictedOccupancy
from wm_planner.params import check_changes

POSE = Pose2D(0.0, 0.0, 0.0)


def test_odometry_and_fields_in_order_and_stale_when_old():
    inputs = InputState()
    assert inputs.stale(0.0, 0.5, 1.0) == "odometry"
    assert inputs.add_odom(1.0, POSE, 0.2, 0.0) is None
    assert inputs.add_odom(0.9, POSE, 0.2, 0.0)[0] == "odom_out_of_order"
    assert inputs.add_odom(1.1, POSE, math.nan, 0.0) == ("odom_invalid",
                                                         "twist not finite or absurd")
    assert inputs.add_odom(1.1, POSE, 0.0, 25.0)[0] == "odom_invalid"
    assert inputs.odom.latest == (1.0, (POSE, (0.2, 0.0)))
    assert inputs.stale(1.2, 0.5, 1.0) == "distance field"
    assert inputs.add_field(1.0, "field", "stamp") is None
    assert inputs.add_field(0.5, "old", "stamp")[0] == "field_out_of_order"
    assert inputs.latest_field == ("field", "stamp")
    assert inputs.stale(1.2, 0.5, 1.0) is None
    assert inputs.stale(1.6, 0.5, 1.0) == "odometry"          # odometry older than 0.5 s
    inputs.add_odom(2.0, POSE, 0.0, 0.0)
    assert inputs.stale(2.1, 0.5, 1.0) == "distance field"    # field older than 1 s


def test_payload_must_be_a_mass():
    assert check_payload(0.0) is None and check_payload(5000.0) is None
    assert check_payload(-1.0) == "payload -1.0 kg is not a mass in [0, 5000]"
    assert check_payload(math.inf) is not None


def test_forecasts_in_order_and_recent_enough_for_the_state():
    inputs = InputState()
    pred = PredictedOccupancy.from_percent([0, 50, 0, 100], 2, 2, 0.25, 0.0, 0.0, 0.0)
    assert inputs.predictions_for(10.0, 1.0) is None
    assert inputs.add_prediction("a", 10.5, pred) is None
    assert inputs.add_prediction("a", 10.0, pred)[0] == "prediction_out_of_order"
    assert inputs.add_prediction("b", 8.0, pred) is None         # too old at 10.0
    out = inputs.predictions_for(10.0, 1.0)
    assert [p.time_offset for p in out] == [0.5]


def test_fleet_snapshot_fresh_and_neighbours_in_odom():
    inputs = InputState()
    assert inputs.fleet_snapshot(0.0, 1.0) is None
    inputs.add_fleet(5.0, "snapshot")
    assert inputs.fleet_snapshot(5.5, 1.0) == "snapshot"
    assert inputs.fleet_snapshot(6.5, 1.0) is None
    robots = [("r1", [(10.0, 1.0, 0.0), (11.0, 2.0, 0.0)], (9.0, 0.0, 0.0), [(0.3, 0.4)]),
              ("r2", [], (9.5, 5.0, 5.0), []),                         # no plan: stays
              ("r3", [(10.0, 0.0, 0.0), (10.0, 1.0, 0.0)], (9.0, 0.0, 0.0), [])]
    plans, errors = neighbour_plans(robots, Pose2D(1.0, 0.0, 0.0), 10.0)   # odom = map - 1
    assert [n.robot_id for n in plans] == ["r1", "r2"] and len(errors) == 1
    assert "r3" in errors[0]
    r1, r2 = plans
    assert r1.times.tolist() == [0.0, 1.0] and r1.xy.tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert r1.radius == pytest.approx(0.5)
    assert r2.times.tolist() == [-0.5] and r2.xy.tolist() == [[4.0, 5.0]]
    assert r2.radius == 0.05


def test_set_parameters_checked_and_fixed_ones_refused_while_configured():
    changes, why = check_changes([("v_max", 0.5), ("use_sim_time", True)], True)
    assert (changes, why) == ({"v_max": 0.5}, None)
    assert check_changes([("v_max", "fast")], False) == ({}, "v_max: expected a number")
    # rclpy hands numeric arrays as array.array
    changes, why = check_changes([("footprint", array.array("d", [0.3, 0.2, -0.3, 0.2,
                                                                   -0.3, -0.2]))], True)
    assert why is None and changes["footprint"] == [0.3, 0.2, -0.3, 0.2, -0.3, -0.2]
    changes, why = check_changes([("odom_frame", "odom2"), ("map_frame", "m"),
                                  ("v_max", 0.5)], True)
    assert changes == {} and why == ("map_frame, odom_frame can only change while "
                                     "unconfigured (cleanup, set, configure)")
    assert check_changes([("odom_frame", "odom2")], False) == ({"odom_frame": "odom2"}, None)
