"""Closed-loop scenarios with the real nodes as separate processes over DDS, the MuJoCo
simulator owning /clock (CI-sized; the full suite is `make eval`)."""
from __future__ import annotations

import math
import os
import random
import time

from rosutil import CONFIG

from wm_eval.runner import run_scenario
from wm_sim.scenario import load_scenario, parse_scenario


def domain_env():
    # the runner reads its own domain; keep it apart from this pytest run's nodes
    os.environ["WM_RUN_DOMAIN_ID"] = str(random.SystemRandom().randint(150, 200))


def test_three_robots_cross_one_aisle(tmp_path):
    """Three robots crossing in one aisle all reach their goals with zero contacts within
    the scenario's bounded simulated time (90 s)."""
    domain_env()
    sc = load_scenario(str(CONFIG / "scenarios" / "aisle_crossing.yaml"))
    assert len(sc.robots) == 3
    t0 = time.monotonic()
    s = run_scenario(sc, tmp_path, engine="mujoco", wall_timeout=170.0, quiet=True)
    k = s["kpis"]
    logs = "\n".join("%s: %s" % (p.name, p.read_text()[-1500:])
                     for p in sorted((tmp_path / "logs").glob("*.log")))
    assert k["goals_reached"] == 3, (s["goals"], logs)
    assert k["contacts"] == 0, k["contacts_per_robot"]
    assert k["sim_seconds"] <= sc.duration
    assert k["nav_error_cm_max"] < 15.0  # goal tolerance 8 cm + what odometry/localization miss
    assert k["mean_speed_fraction"] >= 0.5, "robots crawled: %s" % k["mean_speed_fraction"]
    assert k["latency_ms_p50"] is not None and k["cycles"] > 100
    assert time.monotonic() - t0 < 180.0


# Start and goal 0.5 m north of the block's centre line (the block spans y 3.2..4.8): the way
# round above is about 1 m shorter than below, so the route has one answer. On the centre
# line (y 4.0) the two ways are equally long: which one a run takes, and how long it hesitates
# at the fork first, is decided by DDS delivery order (measured: 11.5 s and 17.6 s to the goal
# in one `make test` pair), which is a test of the tie, not of reproducibility.
LANE_Y = 4.5
SCENE = {
    "name": "repeat", "world": "test_scene", "duration": 40, "seed": 5,
    "robots": [{"id": "robot1", "spawn": [2.5, LANE_Y, 0.0], "goals": [[7.5, LANE_Y, 0.0]]}],
}


def test_closed_loop_runs_are_reproducible(tmp_path):
    """Same scenario, seeds and planner seed through DDS twice.

    Stated tolerance: both reach the goal without contact, round the block on its shorter
    side (north: start and goal lie 0.5 m north of its centre line, see SCENE);
    the true path lengths agree within 15 % (measured 12.5 % apart once: the run that
    hesitated at the fork, below, first edged towards the other side); the true final
    positions within 24 cm (the robot stops anywhere within the
    8 cm goal tolerance *of its localization*, which is itself up to about 4 cm (2 sigma) off
    the truth: twice 12 cm; measured 17.6 cm once, beyond the 16 cm this test had assumed by
    forgetting localization); the time to the goal within 5 s (measured up to 1.6 s apart
    when both runs drive straight through, since the last centimetres are driven slowly; and
    3.5 s and 3.8 s apart in two full `make test` runs, where one run hesitated 1-2 s in front
    of the block, at the fork between going round it above or below, before going the same
    way round as the other: same route, same path length within 4 %).

    Paced at real time at most (max_real_time_factor 1.0, as the fault drills run): unpaced,
    3 of 10 pairs failed here, with the code before and after issue 18 alike (time to goal
    10.7-25.5 s; perception refused clouds for want of odometry and the planner stopped on
    stale inputs as the simulation ran at x3); paced, 8 runs took 11.4-14.5 s.

    Lockstep makes the command sequence independent of machine speed; what still varies
    between runs is DDS delivery order (which odometry sample a cloud is paired with), and
    MPPI amplifies such differences (measured: two runs drifted up to 0.84 m apart at equal
    times before converging on the goal), so runs are close in outcome, not point by point.
    The simulator core alone is bit-identical (src/wm_sim/test/test_sim_mujoco.py).
    """
    domain_env()
    runs, paths = [], []
    for i in range(2):
        # at most real time: lockstep waits for the gate's command, which the gate sends on
        # its own timer, so an unpaced simulation (x3 here) outruns perception and planner
        # (clouds refused for want of odometry, stale-input stops) by amounts that vary
        s = run_scenario(parse_scenario(SCENE), tmp_path / str(i), engine="mujoco",
                         wall_timeout=120.0, quiet=True, planner_params={"seed": 7},
                         node_params={"simulator": {"max_real_time_factor": "1.0"}})
        g = s["goals"]["robot1"][0]
        assert g["status"] == "reached", s["goals"]
        assert s["kpis"]["contacts"] == 0
        runs.append(g)
        paths.append(s["paths"]["robot1"])
    a, b = runs
    assert abs((a["t_end"] - a["t_start"]) - (b["t_end"] - b["t_start"])) <= 5.0, (a, b)
    gap = math.hypot(a["final"][0] - b["final"][0], a["final"][1] - b["final"][1])
    assert gap <= 0.24, (a, b)
    lengths = [sum(math.hypot(q[1] - p[1], q[2] - p[2]) for p, q in zip(path, path[1:]))
               for path in paths]
    assert min(lengths) > 4.5  # went around the block: the straight line is 5 m
    # the same way round, the shorter one: the side of the block's centre line (y = 4) each
    # run strayed furthest to
    sides = [max((q[2] - 4.0 for q in path), key=abs) > 0.0 for path in paths]
    assert sides == [True, True], sides
    assert abs(lengths[0] - lengths[1]) <= 0.15 * max(lengths), lengths
