import json

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_sim.evaluation import Kpis, clearance, collision, robot_collisions
from wm_sim.world import Box, World, test_scene as make_test_scene


def _world():
    return World([Box(5.0, 0.0, 1.0, 1.0, 0.0, 1.0, "b")], (-10, -10, 10, 10))


def test_collision_uses_footprint_radius():
    w = _world()
    assert not collision(w, Pose2D(3.0, 0.0, 0.0), 0.4)      # gap 1.5 - 0.4
    assert collision(w, Pose2D(4.2, 0.0, 0.0), 0.4)          # 0.3 from the face
    assert collision(w, Pose2D(5.0, 0.0, 0.0), 0.4)          # inside
    assert clearance(w, Pose2D(3.0, 0.0, 0.0), 0.4) == pytest.approx(1.1)


def test_robot_collisions_pairs():
    poses = {"a": Pose2D(0, 0, 0), "b": Pose2D(0.5, 0, 0), "c": Pose2D(5, 5, 0),
             "d": Pose2D(0.0, 0.55, 0)}
    pairs = robot_collisions(poses, 0.3)
    assert sorted(pairs) == [("a", "b"), ("a", "d")]
    assert robot_collisions({"a": Pose2D(0, 0, 0)}, 0.3) == []


def test_collision_episode_counted_once():
    w = _world()
    k = Kpis(w, footprint_radius=0.4, goal_tolerance=0.2)
    k.set_goal("r", Pose2D(8.0, 3.0, 0.0), 0.0)
    t = 0.0
    # Drive into the box, stay in contact for many samples, back out, hit again.
    xs = list(np.linspace(2.0, 4.3, 24)) + [4.3] * 50 + list(np.linspace(4.3, 3.0, 10)) \
        + list(np.linspace(3.0, 4.4, 10))
    for x in xs:
        k.update(t, {"r": Pose2D(float(x), 0.0, 0.0)})
        t += 0.1
    s = k.summary()["robots"]["r"]
    assert s["world_collisions"] == 2 and s["collisions"] == 2
    assert s["min_clearance"] == pytest.approx(-0.3)
    assert s["goals_reached"] == 0 and s["time_to_goal"] is None and s["goal_pending"]
    assert len(k.collision_points["r"]) == 2


def test_path_length_goal_time_and_robot_contacts():
    w = make_test_scene()
    k = Kpis(w, footprint_radius=0.3, goal_tolerance=0.25)
    k.set_goal("a", Pose2D(2.0, 2.0, 0.0), 1.0)
    t = 1.0
    for i in range(31):  # a from (2, 5) down to (2, 2); b parks next to a's path
        y = 5.0 - 0.1 * i
        k.update(t, {"a": Pose2D(2.0, y, 0.0), "b": Pose2D(2.4, 3.5, 0.0)})
        t += 0.1
    s = k.summary()
    a = s["robots"]["a"]
    assert a["path_length"] == pytest.approx(3.0)
    assert a["goals_reached"] == 1
    assert a["time_to_goal"] == pytest.approx(2.8, abs=1e-6)   # within 0.25 at y = 2.2
    # a passes b: one contact episode for the pair and for each robot.
    assert s["totals"]["robot_pair_collisions"] == 1
    assert a["robot_collisions"] == 1 and s["robots"]["b"]["robot_collisions"] == 1
    assert s["robots"]["b"]["path_length"] == 0.0
    json.dumps(s)  # plain data, ready for a report
