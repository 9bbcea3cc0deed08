"""The closed-loop KPIs computed from ground truth and the simulator's cycle reports."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wm_common.footprint import Footprint
from wm_eval.runner import (contact_points, footprint_clearance, kpis, robot_footprint,
                               layouts)
from wm_sim.scenario import parse_scenario

SCENE = {"name": "k", "world": "test_scene", "robots": [
    {"id": "r1", "spawn": [0.0, 0.0, 0.0], "goals": [[4.0, 0.0, 0.0], [8.0, 0.0, 0.0]]}],
    "events": [{"t": 1.0, "move_obstacle": "block", "to": [5.0, 6.0, 0.0]}]}


def synthetic():
    # the robot drives at 0.4 m/s for 10 s, stands still 2 s after the layout change at t=1
    truth = []
    for i in range(0, 600):
        t = i * 0.02
        v = 0.0 if 1.0 <= t < 3.0 else 0.4
        truth.append((t, 0.4 * t, 0.0, 0.0, v))
    cycles = [{"t": round(0.1 * i, 1), "wall": 100.0 + 0.05 * i,
               "latency_ms": {"r1": 20.0 + (i % 5)},
               "contact": {"r1": i in (30, 31, 32, 50)}} for i in range(120)]
    goals = {"r1": [
        {"goal": [4.0, 0.0, 0.0], "t_start": 0.0, "start": [0.0, 0.0], "status": "reached",
         "t_end": 10.0, "final": [4.03, 0.04], "error_cm": 5.0},
        {"goal": [8.0, 0.0, 0.0], "t_start": 10.0, "start": [4.0, 0.0], "status": "timeout",
         "t_end": 12.0}]}
    return truth, cycles, goals


def test_kpis_from_truth_and_cycles():
    truth, cycles, goals = synthetic()
    k = kpis(parse_scenario(SCENE), {"r1": truth}, cycles, goals, v_max=0.8)
    assert k["goals"] == 2 and k["goals_reached"] == 1 and k["success_rate"] == 0.5
    assert k["contacts"] == 2  # two contact episodes (cycles 30-32 and 50), not 4 samples
    assert k["collisions_per_1000_moves"] == pytest.approx(1000.0)
    assert k["nav_error_cm_mean"] == pytest.approx(5.0)
    # 4 m in 10 s against 4 m / 0.8 m/s = 5 s
    assert k["time_vs_straight_line"] == pytest.approx(2.0)
    assert 0.3 < k["mean_speed_fraction"] < 0.45  # 0.4 m/s most of the time, 0 for 2 s
    assert k["seconds_lost_after_layout_change"] == pytest.approx(2.0, abs=0.05)
    assert k["latency_ms_p50"] == pytest.approx(22.0)
    assert k["sim_seconds"] == pytest.approx(11.9) and k["real_time_factor"] > 1.0


def test_contact_points_mark_where_episodes_begin():
    truth, cycles, _ = synthetic()
    pts = contact_points({"r1": truth}, cycles)["r1"]
    assert len(pts) == 2
    assert pts[0][0] == pytest.approx(0.4 * 3.0, abs=0.02)


# ----------------------------------------------------------------- minimum clearance
# test_scene: walls' inner faces at x = 0.2 / 9.8 and y = 0.2 / 7.8; "block" is 0.6 x 1.6 m
# at (5, 4): x 4.7..5.3, y 3.2..4.8. The synthetic robot drives along y = 2 from x = 2 to 8
# (x = 2 + 0.5 t, t = 0..12), so its nearest obstacle is the block, 3.2 - 2.0 = 1.2 m away.
ONE_CIRCLE = Footprint.circle(0.33, sides=256)   # a round robot of radius 0.33


def scene(events=()):
    return parse_scenario({"name": "c", "world": "test_scene", "events": list(events),
                           "robots": [{"id": "r1", "spawn": [2.0, 2.0, 0.0],
                                       "goals": [[8.0, 2.0, 0.0]]}]})


def drive(y=2.0, yaw=0.0):
    return [(0.02 * i, 2.0 + 0.01 * i, y, yaw, 0.5) for i in range(601)]


def clearance(sc, truth, circles=ONE_CIRCLE):
    return kpis(sc, truth, [], {r: [] for r in truth}, v_max=0.7, footprint=circles)


def test_min_clearance_past_a_box_at_known_distance():
    k = clearance(scene(), {"r1": drive()})
    assert k["min_clearance_m"] == pytest.approx(1.2 - 0.33, abs=1e-3)
    assert k["min_clearance_m_per_robot"] == {"r1": pytest.approx(1.2 - 0.33, abs=1e-3)}
    # robot.yaml's footprint, the 0.7 x 0.55 m rectangle: along the path its side is
    # 0.275 m from the centre; turned across it (yaw 90 deg) its front is 0.35 m.
    fp = robot_footprint()
    assert fp.inscribed_radius == pytest.approx(0.275)
    assert fp.circumscribed_radius == pytest.approx(math.hypot(0.35, 0.275))
    assert clearance(scene(), {"r1": drive()}, fp)["min_clearance_m"] == pytest.approx(0.925)
    k = clearance(scene(), {"r1": drive(yaw=math.pi / 2)}, fp)
    assert k["min_clearance_m"] == pytest.approx(1.2 - 0.35)
    # the default footprint is robot.yaml's
    k = kpis(scene(), {"r1": drive(yaw=math.pi / 2)}, [], {"r1": []}, v_max=0.7)
    assert k["min_clearance_m"] == pytest.approx(1.2 - 0.35)


def test_min_clearance_negative_when_the_footprint_overlaps():
    k = clearance(scene(), {"r1": drive(y=3.0)})  # circle reaches y 3.33, block from 3.2
    assert k["min_clearance_m"] == pytest.approx(-0.13, abs=1e-3)


def test_min_clearance_per_robot_and_overall_minimum():
    k = clearance(scene(), {"r1": drive(), "r2": drive(y=1.0), "r3": []})
    per = k["min_clearance_m_per_robot"]
    assert per["r1"] == pytest.approx(0.87, abs=1e-3)
    assert per["r2"] == pytest.approx(0.8 - 0.33, abs=1e-3)  # the south wall at y = 0.2
    assert per["r3"] is None
    assert k["min_clearance_m"] == pytest.approx(0.8 - 0.33, abs=1e-3)
    assert clearance(scene(), {"r1": []})["min_clearance_m"] is None


def test_min_clearance_box_added_by_an_event_counts_only_after_its_time():
    # a pallet dropped right on the path at x = 3, which the robot passed at t = 2
    drop = {"add_obstacle": {"name": "p", "center": [3.0, 2.0], "size": [0.4, 0.4]}}
    before = clearance(scene([dict(drop, t=1.0)]), {"r1": drive()})["min_clearance_m"]
    assert before < -0.15  # it lands on the robot (x = 2.5 at t = 1): inside its outline
    after = clearance(scene([dict(drop, t=6.0)]), {"r1": drive()})["min_clearance_m"]
    assert after == pytest.approx(0.87, abs=1e-3)  # at t >= 6 the robot is 1.8 m away
    # ... and from t on it does count: dropped beside the path ahead of the robot
    side = {"t": 5.0, "add_obstacle": {"name": "q", "center": [6.0, 1.4], "size": [0.4, 0.4]}}
    k = clearance(scene([side]), {"r1": drive()})
    assert k["min_clearance_m"] == pytest.approx(2.0 - 1.6 - 0.33, abs=1e-3)
    # an event exactly at a sample's time applies to that sample (as the simulator does)
    lay = layouts(scene([dict(drop, t=6.0)]))
    assert [t for t, _ in lay] == [-math.inf, 6.0]
    assert [len(w.boxes) for _, w in lay] == [5, 6]  # 4 walls + block, then the pallet
    on_it = {"r1": [(5.98, 3.0, 2.0, 0.0, 0.0), (6.0, 3.0, 2.0, 0.0, 0.0)]}
    assert clearance(scene([dict(drop, t=6.0)]), on_it)["min_clearance_m"] < 0.0  # swallowed
    on_it = {"r1": [(5.98, 3.0, 2.0, 0.0, 0.0)]}
    assert clearance(scene([dict(drop, t=6.0)]), on_it)["min_clearance_m"] > 0.8


def test_min_clearance_follows_moved_obstacles_and_ignores_payload_events():
    moved = scene([{"t": 1.0, "move_obstacle": "block", "to": [5.0, 6.5, 0.0]},
                   {"t": 2.0, "set_payload": {"robot": "r1", "mass": 50.0}}])
    k = clearance(moved, {"r1": drive()})
    assert k["min_clearance_m"] == pytest.approx(1.8 - 0.33, abs=1e-3)  # the wall
    assert len(layouts(moved)) == 2
    # moved into the path after the robot passed: does not count before it is there
    late = scene([{"t": 11.5, "move_obstacle": "block", "to": [3.0, 2.0, 0.0]}])
    assert clearance(late, {"r1": drive()})["min_clearance_m"] == pytest.approx(0.87, abs=1e-3)


def test_footprint_clearance_rotates_the_polygon():
    from wm_sim.world import Box, World
    world = World([Box(0.0, 2.0, 1.0, 1.0)], (-5, -5, 5, 5))  # faces at y = 1.5
    # a body reaching 0.6 m ahead of base_link, 0.1 m to either side and behind
    fp = Footprint(np.array([[0.6, 0.1], [0.6, -0.1], [-0.1, -0.1], [-0.1, 0.1]]), 0.02)
    gaps = footprint_clearance(world, [[0.0, 0.0, 0.0], [0.0, 0.0, math.pi / 2]], fp)
    assert gaps == pytest.approx([1.5 - 0.1, 1.5 - 0.6])
