"""In-process closed-loop episodes (wm_eval.episode) and the Dask sweep runner
(wm_eval.sweep): determinism per seed, arrival with both motion models, no collision
with a pallet in the way, the same rows from a 2-worker LocalCluster as inline, and
failures reported as rows."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wm_eval.episode import (WORLD_MODEL, make_spec, planner_params,
                                run_episode)
from wm_eval.sweep import (SweepError, Task, configurations, dask_client, run_inline,
                              run_tasks, seeds_of, tasks_of, write_results)
from wm_common.geometry import Pose2D
from wm_sim.world import Box, BoxArrays, World, boxes_signed_distance, chassis_overlaps

KIN = {"world_model_artifact": "none"}
WM = {"world_model_artifact": WORLD_MODEL}
EASY = 57      # 3.7 m in open floor, no added boxes
BLOCKED = 25   # 3.6 m with a pallet across the straight line (route 5.2 m)
TIMING = ("wall_s", "cpu_s", "solve_ms_mean", "solve_ms_p99")


def same(a, b):
    """Rows equal apart from wall-clock timings."""
    return {k: v for k, v in a.items() if k not in TIMING} == \
        {k: v for k, v in b.items() if k not in TIMING}


@pytest.fixture(scope="module")
def easy_kinematic():
    return run_episode(EASY, KIN, "kin")


def test_episode_is_deterministic_per_seed(easy_kinematic):
    again = run_episode(EASY, KIN, "kin")
    assert easy_kinematic["error"] == ""
    assert same(easy_kinematic, again)
    json.dumps(easy_kinematic)   # a flat, JSON-serialisable row
    assert all(not isinstance(v, (dict, list)) for v in easy_kinematic.values())


@pytest.mark.parametrize("overrides,model", [(KIN, "kinematic"), (WM, "world_model")])
def test_both_motion_models_reach_an_easy_goal(easy_kinematic, overrides, model):
    r = easy_kinematic if model == "kinematic" else run_episode(EASY, overrides, model)
    assert r["error"] == "" and r["motion_model"] == model
    assert r["reached"] and r["collisions"] == 0 and r["plan_failures"] == 0
    assert r["final_error_m"] <= planner_params(overrides)["xy_goal_tolerance"]
    assert 0.0 < r["time_to_goal_s"] < 15.0
    assert r["path_length_m"] >= r["distance_m"] - 0.1
    assert r["min_clearance_m"] > 0.0 and r["solve_ms_mean"] > 0.0


def test_pallet_in_the_way_is_passed_without_collision():
    spec = make_spec(BLOCKED)
    assert spec.blocking and spec.obstacles
    line = np.linspace(spec.start[:2], spec.goal[:2], 200)
    assert boxes_signed_distance(BoxArrays(list(spec.obstacles)), line).min() < 0.0
    r = run_episode(BLOCKED, KIN, "kin")
    assert r["error"] == "" and r["reached"]
    assert r["collisions"] == 0 and r["min_clearance_m"] > 0.0
    assert r["path_length_m"] > r["distance_m"] + 0.5   # it went around


def test_scenario_depends_on_the_seed_only():
    a, b = make_spec(3), make_spec(3)
    assert a == b and make_spec(4) != a
    assert math.hypot(a.goal.x - a.start.x, a.goal.y - a.start.y) >= 3.0


def test_chassis_overlap():
    world = World([Box(0.0, 0.0, 1.0, 1.0, 0.0)], (-5, -5, 5, 5))
    assert chassis_overlaps(world.arrays, Pose2D(0.8, 0.0, 0.0))        # 0.35 + 0.5 > 0.8
    assert not chassis_overlaps(world.arrays, Pose2D(0.9, 0.0, 0.0))
    assert chassis_overlaps(world.arrays, Pose2D(0.0, 0.7, 0.0))        # 0.275 + 0.5 > 0.7
    assert not chassis_overlaps(world.arrays, Pose2D(0.0, 0.8, 0.0))        # 0.775 < 0.8
    assert chassis_overlaps(world.arrays, Pose2D(0.0, 0.8, math.pi / 2))    # now 0.35 + 0.5
    # a box rotated by 45 deg reaches 0.707 along x
    world = World([Box(0.0, 0.0, 1.0, 1.0, math.pi / 4)], (-5, -5, 5, 5))
    assert chassis_overlaps(world.arrays, Pose2D(1.0, 0.0, 0.0))
    assert not chassis_overlaps(world.arrays, Pose2D(1.1, 0.0, 0.0))


def test_invalid_override_is_an_error_row():
    r = run_episode(1, {"obstacle.wieght": 1.0}, "typo")
    assert r["config"] == "typo" and r["seed"] == 1
    assert "unknown planner parameter 'obstacle.wieght'" in r["error"]
    r = run_episode(1, {"horizon": 0}, "bad")
    assert "horizon" in r["error"] and "minimum" in r["error"]
    # a YAML integer for a floating-point parameter is that float
    assert planner_params({"obstacle.weight": 2})["obstacle.weight"] == 2.0


def test_configurations():
    doc = {"base": {"num_samples": 256},
           "grid": {"m": {"kin": KIN, "wm": WM}, "h": {"H8": {"horizon": 8},
                                                       "H10": {"horizon": 10}}},
           "cases": [{"name": "x", "overrides": {"obstacle.weight": 0.5}}]}
    configs = configurations(doc)
    assert [c[0] for c in configs] == ["kin/H8", "kin/H10", "wm/H8", "wm/H10", "x"]
    assert configs[2][1] == {"num_samples": 256, "world_model_artifact": WORLD_MODEL,
                             "horizon": 8}
    assert configs[4][1] == {"num_samples": 256, "obstacle.weight": 0.5}
    with pytest.raises(SweepError):
        configurations({"cases": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(SweepError, match="obstacle.wieght"):
        tasks_of({"cases": [{"name": "a", "overrides": {"obstacle.wieght": 1.0}}]})
    assert len(tasks_of(doc, count=2)) == 2 * len(configs)
    assert seeds_of({"seeds": {"start": 5, "count": 3}}) == [5, 6, 7]
    assert seeds_of({"seeds": [3, 1, 3, 2]}, count=2) == [3, 1]


def test_local_cluster_rows_equal_inline(tmp_path):
    short = {"time_limit": 3.0}   # 30 cycles: cheap, and still the whole closed loop
    tasks = [Task(label, seed, ov, short, {}) for seed in (EASY, BLOCKED)
             for label, ov in (("kinematic", KIN), ("world_model", WM))]
    bad = Task("typo", 1, {"no_such_param": 1}, short, {})
    with dask_client(workers=2) as client:
        assert len(client.nthreads()) == 2
        rows = list(run_tasks(client, tasks + [bad], max_in_flight=3))
        lost = list(run_tasks(client, tasks[:1], fn=lambda *a: 1 / 0))
    by = {(r["config"], r["seed"]): r for r in rows}
    assert len(by) == len(tasks) + 1
    for task, expected in zip(tasks, run_inline(tasks)):
        got = by[(task.label, task.seed)]
        assert got["error"] == "" and same(got, expected), task.key
    assert "unknown planner parameter 'no_such_param'" in by[("typo", 1)]["error"]
    assert lost[0]["config"] == "kinematic" and lost[0]["seed"] == EASY
    assert "ZeroDivisionError" in lost[0]["error"]

    meta = {"name": "t", "config": "t.yaml", "date": "today", "seeds": 2, "cluster": "local",
            "wall_s": 1.0, "machine": "m", "python": "3"}
    write_results(rows, ["kinematic", "world_model", "typo"], meta, tmp_path)
    for name in ("results.csv", "results.json", "SWEEP.md", "success.png", "time_to_goal.png"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "SWEEP.md").read_text()
    assert "| kinematic | world_model | 2 |" in md and "no_such_param" in md
    assert len((tmp_path / "results.csv").read_text().strip().splitlines()) == len(rows) + 1
