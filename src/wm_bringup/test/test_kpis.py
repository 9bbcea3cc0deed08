"""The closed-loop KPIs computed from ground truth and the simulator's cycle reports."""
from __future__ import annotations

import pytest

from wm_bringup.runner import contact_points, kpis
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
