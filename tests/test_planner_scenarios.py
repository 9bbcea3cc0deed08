"""The planner-quality scenarios (config/scenarios/planner/, benchmarks/bench_planner_quality.py)
load, and their spawns and goals leave the planner's footprint in free space in every layout
the run goes through; each scenario has the geometry its name promises. Static and fast."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from wm_eval.runner import footprint_clearance, layouts, robot_footprint
from wm_sim.scenario import WORLDS, load_scenario
from wm_sim.world import World

CONFIG = Path(__file__).resolve().parent.parent / "config"
PLANNER = CONFIG / "scenarios" / "planner"
NAMES = ("straight_run", "narrow_aisle", "obstacle_appearing", "robot_crossing",
         "three_aisles")


def footprint():
    return robot_footprint(yaml.safe_load((CONFIG / "robot.yaml").read_text()))


def scenario(name):
    return load_scenario(str(PLANNER / (name + ".yaml")))


def segment(a, b, step=0.05):
    """Poses every `step` m on the straight line a -> b, heading along it."""
    n = max(2, int(math.hypot(b.x - a.x, b.y - a.y) / step) + 1)
    yaw = math.atan2(b.y - a.y, b.x - a.x)
    s = np.linspace(0.0, 1.0, n)
    return np.stack([a.x + s * (b.x - a.x), a.y + s * (b.y - a.y), np.full(n, yaw)], axis=1)


def test_the_five_files_and_only_them():
    assert sorted(p.stem for p in PLANNER.glob("*.yaml")) == sorted(NAMES)
    # `make eval` globs config/scenarios/*.yaml: none of these is there
    assert not {p.stem for p in (CONFIG / "scenarios").glob("*.yaml")} & set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_loads_and_spawns_goals_are_free(name):
    sc = scenario(name)
    assert sc.name == name and sc.world in WORLDS and sc.description
    assert 0.0 < sc.duration <= 60.0
    assert all(r.goals for r in sc.robots)
    assert all(0.0 <= ev.t < sc.duration for ev in sc.events)
    fp = footprint()
    for t, world in layouts(sc):
        for r in sc.robots:
            poses = [[p.x, p.y, p.yaw] for p in [r.spawn] + list(r.goals)]
            gaps = footprint_clearance(world, poses, fp)
            assert np.all(gaps > 0.0), (name, r.id, t, gaps)
            xmin, ymin, xmax, ymax = world.bounds
            assert all(xmin < p[0] < xmax and ymin < p[1] < ymax for p in poses)
    spawns = [r.spawn for r in sc.robots]
    for i, a in enumerate(spawns):
        for b in spawns[i + 1:]:
            assert math.hypot(a.x - b.x, a.y - b.y) > 1.5


def test_straight_run_is_a_long_free_line():
    sc = scenario("straight_run")
    (r,) = sc.robots
    assert math.hypot(r.goals[0].x - r.spawn.x, r.goals[0].y - r.spawn.y) >= 20.0
    gaps = footprint_clearance(sc.load_world(), segment(r.spawn, r.goals[0]), footprint())
    assert gaps.min() > 0.25 and not sc.events


def test_narrow_aisle_gap_is_passable_but_barely():
    sc = scenario("narrow_aisle")
    (r,) = sc.robots
    world = layouts(sc)[-1][1]
    assert all(ev.t == 0.0 for ev in sc.events)  # the pallet is there from the start
    fp = footprint()
    line = segment(r.spawn, r.goals[0])
    gaps = footprint_clearance(world, line, fp)
    # the straight route fits, with 0.275 m either side of the 0.55 m body in the gap
    assert 0.05 < gaps.min() < 0.3
    # the gap itself: free width across the route at the pallet (y = 7.0)
    xs = np.arange(6.0, 10.0, 0.01)
    free = world.signed_distance(np.stack([xs, np.full_like(xs, 7.0)], axis=1)) > 0.0
    width = 0.01 * free.sum()
    body = 2.0 * fp.inscribed_radius  # 0.55 m
    assert body + 0.3 < width < body + 0.6


def test_obstacle_appears_on_the_path_after_the_start():
    sc = scenario("obstacle_appearing")
    (r,) = sc.robots
    (ev,) = sc.events
    assert ev.kind == "add_obstacle" and 1.0 <= ev.t <= 10.0
    (_, before), (_, after) = layouts(sc)
    line = segment(r.spawn, r.goals[0])
    fp = footprint()
    assert footprint_clearance(before, line, fp).min() > 0.0
    assert footprint_clearance(after, line, fp).min() < -0.3  # right on the line
    # the drop point is still ahead of a robot at top speed when it lands
    v_max = yaml.safe_load((CONFIG / "robot.yaml").read_text())[
        "/**/planner"]["ros__parameters"]["v_max"]
    assert ev.box.cx - ev.box.sx / 2 - r.spawn.x > v_max * ev.t + 1.5


def test_robot_crossing_paths_cross_at_right_angles_at_about_the_same_time():
    sc = scenario("robot_crossing")
    a, b = sc.robots
    ya = math.atan2(a.goals[0].y - a.spawn.y, a.goals[0].x - a.spawn.x)
    yb = math.atan2(b.goals[0].y - b.spawn.y, b.goals[0].x - b.spawn.x)
    assert abs(math.cos(ya - yb)) < 1e-3
    # crossing point of the two straight lines (one along x, one along y here)
    cross = (b.spawn.x, a.spawn.y)
    assert min(a.spawn.x, a.goals[0].x) < cross[0] < max(a.spawn.x, a.goals[0].x)
    assert min(b.spawn.y, b.goals[0].y) < cross[1] < max(b.spawn.y, b.goals[0].y)
    da = math.hypot(cross[0] - a.spawn.x, cross[1] - a.spawn.y)
    db = math.hypot(cross[0] - b.spawn.x, cross[1] - b.spawn.y)
    assert abs(da - db) <= 1.0  # within ~1.4 s at top speed
    fp = footprint()
    for r in (a, b):
        gaps = footprint_clearance(sc.load_world(), segment(r.spawn, r.goals[0]), fp)
        assert gaps.min() > 0.0  # both straight routes are free of obstacles


def test_three_aisles_goal_is_behind_three_shelf_rows():
    sc = scenario("three_aisles")
    (r,) = sc.robots
    world = sc.load_world()
    line = segment(r.spawn, r.goals[0])
    hit = set()
    for b in world.boxes:
        if b.name.startswith("shelf_"):
            one = World([b], world.bounds)
            if footprint_clearance(one, line, footprint()).min() < 0.0:
                hit.add(b.name.split("_")[1])  # the row
    assert len(hit) == 3
