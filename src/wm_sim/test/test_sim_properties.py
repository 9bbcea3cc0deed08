"""Property checks of the geometry against independent brute-force computations."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wm_common.geometry import Pose2D, transform_points
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.world import Box, World

coord = st.floats(-5.0, 5.0)
size = st.floats(0.2, 3.0)
angle = st.floats(-3.2, 3.2)


def _seg_dist(p, a, b):
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t * ab))


def _cross(u, v):
    return u[0] * v[1] - u[1] * v[0]


@settings(max_examples=60, deadline=None)
@given(coord, coord, size, size, angle, coord, coord)
def test_signed_distance_matches_polygon_edges(cx, cy, sx, sy, yaw, px, py):
    b = Box(cx, cy, sx, sy, yaw)
    w = World([b], (-10, -10, 10, 10))
    c = b.corners()
    p = np.array([px, py])
    d_edges = min(_seg_dist(p, c[i], c[(i + 1) % 4]) for i in range(4))
    # Inside test: the point is left of every counter-clockwise edge.
    inside = all(_cross(c[(i + 1) % 4] - c[i], p - c[i]) > 0 for i in range(4))
    expected = -d_edges if inside else d_edges
    assert abs(float(w.signed_distance(p)) - expected) < 1e-9


@settings(max_examples=20, deadline=None)
@given(st.floats(2.0, 6.0), st.floats(-3.0, 3.0), size, size, angle, st.floats(0.3, 2.5),
       angle)
def test_lidar_hits_lie_on_surfaces(cx, cy, sx, sy, yaw, h, robot_yaw):
    world = World([Box(cx, cy, sx, sy, yaw, h)], (-20, -20, 20, 20))
    lid = Lidar(LidarSpec(columns=256, range_noise_sigma=0.0, dropout_prob=0.0,
                          mount=(0.1, 0.0, 0.4, 0.2)), seed=0)
    base = Pose2D(-0.5, 0.3, robot_yaw)
    scan = lid.scan(world, base)
    ok = np.isfinite(scan["x"])
    xy = transform_points(lid.sensor_pose(base),
                          np.stack([scan["x"][ok], scan["y"][ok]], axis=-1))
    z = scan["z"][ok] + 0.4
    on_floor = np.abs(z) < 1e-4
    sd = world.signed_distance(xy)
    # Floor hits are never under the box; box hits are on its sides or its lid.
    assert np.all(sd[on_floor] >= -1e-4)
    box = ~on_floor
    on_side = np.abs(sd[box]) < 1e-3
    on_lid = (np.abs(z[box] - h) < 1e-3) & (sd[box] <= 1e-3)
    assert np.all(on_side | on_lid)
    assert np.all(z[box] <= h + 1e-3)
