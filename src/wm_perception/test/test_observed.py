"""Observed space: cells on the rays of real returns are observed, cells behind the first
obstacle a ray meets and beyond every return are not; the memory rolls with the window."""
from __future__ import annotations

import math

import numpy as np

from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_common.ros.convert import distance_field_to_grid, grid_to_distance_field
from wm_msgs.msg import DistanceField
from wm_perception.observed import ObservedWindow, ray_reach
from wm_perception.pipeline import Perception, PerceptionConfig


def _ring(radius, n=720, z=0.0):
    a = np.linspace(-math.pi, math.pi, n, endpoint=False)
    return np.column_stack([radius * np.cos(a), radius * np.sin(a), np.full(n, z)])


def test_rays_stop_at_the_nearest_obstacle_else_reach_the_farthest_return():
    pts = np.array([[3.0, 0.0, 0.0], [5.0, 0.0, -0.4], [0.0, 4.0, -0.4], [0.0, 6.0, -0.4]])
    obstacle = np.array([True, False, False, False])
    reach = ray_reach(pts, obstacle, max_range=5.5, bins=4)
    # bins look along -135, -45, +45, +135 deg: (3, 0) and (5, 0) fall in bin 2 (0..90 deg)
    assert reach[2] == 3.0                    # the obstacle, not the floor behind it
    assert reach[3] == 5.5                    # the floor at 6 m, capped at max_range
    assert reach[0] == reach[1] == 0.0        # nothing returned there


def test_observed_window_clears_rays_and_rolls_with_the_lattice():
    w = ObservedWindow(0.1, 40, 40)
    w.move_to(-2.0, -2.0)                     # a 4 x 4 m window centred on the origin
    reach = np.zeros(720)
    reach[360:540] = 1.0                      # rays 0..90 deg, 1 m long
    w.clear_rays((0.0, 0.0), 0.0, reach)
    assert w.seen[20 + 5, 20 + 5]             # (0.55, 0.55): on a ray
    assert not w.seen[20 + 15, 20 + 15]       # (1.55, 1.55): beyond the rays' reach
    assert not w.seen[20 - 5, 20 + 5]         # (0.55, -0.45): no ray that way
    w.move_to(-1.0, -2.0)                     # the window moved 1 m in +x
    assert w.seen[25, 15] and not w.seen[25, 25]
    assert not w.seen[:, -10:].any()          # the new cells are unseen


def test_pipeline_field_tells_seen_free_from_behind_a_wall():
    cfg = PerceptionConfig(size_xy=8.0, min_range=0.3)
    p = Perception(cfg)
    wall = np.array([[2.0, y, 0.0] for y in np.arange(-1.0, 1.0, 0.02)])    # sensor height 0.4
    floor = _ring(3.5, z=-0.4)                # the floor all round, 3.5 m out
    out = p.process(np.vstack([wall, floor]), (0.0, 0.0, 0.4, 0.0), Pose2D(0.0, 0.0, 0.0))
    f = out.distance_field
    assert f.unknown is not None and f.unknown.shape == f.data.shape

    def unknown_at(x, y):
        ix = int((x - f.origin_x) / f.resolution)
        iy = int((y - f.origin_y) / f.resolution)
        return bool(f.unknown[iy, ix])

    assert not unknown_at(1.0, 0.0)           # between the sensor and the wall
    assert not unknown_at(-2.0, 1.0)          # looked through to the floor
    assert unknown_at(3.0, 0.0)               # behind the wall
    assert unknown_at(3.9, 3.9)               # beyond every return
    # once seen stays seen: the wall taken away, the next cloud sees behind it; then a
    # cloud that sees nothing there does not make it unknown again
    p.process(_ring(3.5, z=-0.4), (0.0, 0.0, 0.4, 0.0), Pose2D(0.0, 0.0, 0.0))
    out = p.process(np.vstack([wall, floor]), (0.0, 0.0, 0.4, 0.0), Pose2D(0.0, 0.0, 0.0))
    f = out.distance_field
    assert not unknown_at(3.0, 0.0)
    assert Perception(PerceptionConfig(track_unknown=False)).process(
        floor, (0.0, 0.0, 0.4, 0.0), Pose2D(0.0, 0.0, 0.0)).distance_field.unknown is None


def test_the_unknown_mask_survives_the_distance_field_message():
    g = Grid2D(1.0, 2.0, 0.1, np.ones((3, 4), dtype=np.float32), outside=3.0)
    msg = DistanceField()
    grid_to_distance_field(g, msg)
    assert len(msg.unknown) == 0 and distance_field_to_grid(msg).unknown is None
    unknown = np.zeros((3, 4), dtype=bool)
    unknown[1, 2] = True
    g = Grid2D(1.0, 2.0, 0.1, np.ones((3, 4), dtype=np.float32), outside=3.0, unknown=unknown)
    grid_to_distance_field(g, msg)
    back = distance_field_to_grid(msg)
    assert np.array_equal(back.unknown, g.unknown)
    msg.unknown = msg.unknown[:5]
    try:
        distance_field_to_grid(msg)
    except ValueError as e:
        assert "unknown mask" in str(e)
    else:
        raise AssertionError("a truncated unknown mask was accepted")
