"""The in-process closed loop on the controller (wm_eval.episode): the seeds that
livelocked before the control cycle had one notion of the way, two robots reaching a
crossing together, two robots nose to nose, the gap family's scenarios, and the evaluation's
statistics (wm_eval.episode_eval). Plain Python, no ROS."""
from __future__ import annotations

import json
import math

import pytest

from wm_eval.episode import make_spec, run_episode
from wm_eval.episode_eval import failure_class, tasks, wilson

KIN = {"world_model_artifact": "none"}


def first_seed(scenario, pred, limit=200):
    for seed in range(limit):
        spec = make_spec(seed, scenario)
        if pred(spec):
            return seed, spec
    raise AssertionError("no such seed below %d" % limit)


@pytest.mark.parametrize("seed", [9025, 9038])
def test_seeds_that_livelocked_now_arrive(seed):
    """On the controller before this one, these two warehouse_small episodes never left the
    start: 153 and 170 control cycles turning on the spot towards the route and back the
    other way round a shelf with MPPI (the route and the MPC's cost-to-go disagreed)."""
    r = run_episode(seed)
    assert r["error"] == "" and r["reached"], r
    assert r["collisions"] == 0
    # at most one half turn on the spot (pi at rotate_speed 0.6 rad/s: 53 cycles of 0.1 s)
    behaviors = json.loads(r["behaviors"])
    assert behaviors.get("rotate_to_heading", 0) <= math.pi / 0.6 / 0.1 + 5


def test_two_robots_reaching_a_crossing_together():
    sc = {"family": "encounter", "robots_min": 2, "robots_max": 2,
          "nose_to_nose_probability": 0.0}
    seed, spec = first_seed(sc, lambda s: s.kind == "crossing")
    # their straight ways cross, and both get there about when the other does
    (a, b) = spec.robots
    r = run_episode(seed, KIN, scenario=sc)
    assert r["error"] == "" and r["reached"] and r["goals_reached"] == 2, r
    assert r["collisions"] == 0 and r["robot_contacts"] == 0
    assert a.start != b.start


def test_two_robots_nose_to_nose_separate_and_arrive():
    sc = {"family": "encounter", "nose_to_nose_probability": 1.0}
    seed, spec = first_seed(sc, lambda s: s.kind == "nose_to_nose")
    (a, b) = spec.robots
    gap = math.hypot(a.start.x - b.start.x, a.start.y - b.start.y) - 0.7
    assert 0.05 <= gap <= 0.25 + 1e-9         # 5-25 cm between their fronts
    r = run_episode(seed, KIN, scenario=sc)
    assert r["error"] == "" and r["reached"], r
    assert r["collisions"] == 0 and r["robot_contacts"] == 0


def test_gap_family_outcomes_expected():
    sc = {"family": "gap"}
    widths = {make_spec(s, sc).gap_width for s in range(20)}
    assert widths == {0.5, 0.85, 1.0, 1.2}
    narrow = next(make_spec(s, sc) for s in range(20) if make_spec(s, sc).gap_width == 0.5)
    wide = next(make_spec(s, sc) for s in range(20) if make_spec(s, sc).gap_width == 0.85)
    assert narrow.passable is False and wide.passable is True and not wide.mapped
    assert make_spec(1, dict(sc, gap_widths=[0.7])).passable is None   # either is right


def test_wilson_interval_and_failure_classes():
    lo, hi = wilson(995, 1000)
    assert lo == pytest.approx(0.9884, abs=1e-3) and hi == pytest.approx(0.9979, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    base = {"error": "", "collisions": 0, "correct": False, "cycles": 100, "behaviors": "{}"}
    assert failure_class(dict(base, correct=True)) is None
    assert failure_class(dict(base, correct=True, collisions=2)) == "collision"
    assert failure_class(dict(base, error="boom")) == "error"
    assert failure_class(dict(base, family="gap", outcome="no_progress")) == "stall at a gap"
    assert failure_class(dict(base, family="encounter", outcome="blocked")) == "deadlock"
    spin = dict(base, family="single", outcome="no_progress",
                behaviors=json.dumps({"rotate_to_heading": 60}))
    assert failure_class(spin) == "spin livelock"
    assert failure_class(dict(base, family="single", outcome="time_limit")) == "timeout"
    assert failure_class(dict(base, family="single", outcome="no_way")) == "abort: no way"
    # both motion models on every seed, seed-major
    ts = tasks(scale=0.01, families=["gap"])
    assert [t.label for t in ts] == ["gap/world_model", "gap/kinematic"]
    assert ts[0].seed == ts[1].seed
