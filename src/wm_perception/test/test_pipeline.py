from __future__ import annotations

import math

import numpy as np
import pytest

from wm_common.geometry import Pose2D, inverse, transform_points
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_perception.voxel_grid import occupancy_2d


def wall(x0, y_lo, y_hi, z_lo=0.1, z_hi=1.5, step=0.03):
    """Points on a vertical wall a few cm thick around x = x0 (odom/base frame)."""
    ys = np.arange(y_lo, y_hi, step)
    zs = np.arange(z_lo, z_hi, step)
    yy, zz = np.meshgrid(ys, zs)
    pts = np.stack([np.full(yy.size, x0), yy.ravel(), zz.ravel()], axis=1)
    return pts


def to_sensor(pts_odom, sensor_in_base, base_in_odom):
    """Express odom points in the sensor frame (the inverse of what process() does)."""
    sx, sy, sz, syaw = sensor_in_base
    base = transform_points(inverse(base_in_odom), pts_odom[:, :2])
    sensor = transform_points(inverse(Pose2D(sx, sy, syaw)), base)
    return np.column_stack([sensor, pts_odom[:, 2] - sz]).astype(np.float32)


def test_wall_gives_expected_distances():
    p = Perception(PerceptionConfig())
    pts = wall(2.05, -3.0, 3.0)
    out = p.process(pts.astype(np.float32), (0.0, 0.0, 0.0, 0.0), Pose2D(0.0, 0.0, 0.0))
    f = out.distance_field
    assert f.frame_id == "odom" and f.width == 160 and f.height == 160
    # outside, the field comes from a 0.05 m occupancy (field_subdivision 2): the wall's
    # float32 points at x = 2.05 (2.0499...) fill the fine cells [2.0, 2.05), surface 2.0;
    # inside the voxel column, the voxel field's depth
    assert f.sample(np.array([[0.5, 0.0]]))[0] == pytest.approx(1.5, abs=0.02)
    assert f.sample(np.array([[2.05, 0.0]]))[0] < 0
    # Beyond the wall's end, distance is to its corner.
    assert f.sample(np.array([[2.05, 4.0]]))[0] == pytest.approx(1.0, abs=0.06)
    # Outside the window, unknown space reads max_distance.
    assert f.sample(np.array([[50.0, 0.0]]))[0] == pytest.approx(3.0)
    assert out.n_points_in == len(pts) == out.n_points_used
    assert out.voxels.origin.tolist() == pytest.approx([-8.0, -8.0, 0.05])
    assert out.voxels.dims.tolist() == [160, 160, 18]


def test_moving_rotated_robot_with_offset_sensor():
    cfg = PerceptionConfig()
    p = Perception(cfg)
    base = Pose2D(103.47, -51.22, 2.3)
    sensor = (0.3, -0.1, 0.45, -math.pi / 2)
    pts = wall(100.03, -56.0, -46.0)  # occupies the cells [100.0, 100.1)
    out = p.process(to_sensor(pts, sensor, base), sensor, base)
    f = out.distance_field
    # the fine cells [100.0, 100.05): surface at 100.05 (truth 100.03)
    assert f.sample(np.array([[101.5, -51.0]]))[0] == pytest.approx(1.45, abs=0.02)
    assert f.sample(np.array([[100.05, -51.0]]))[0] < 0
    occ = occupancy_2d(out.voxels)
    ix, iy, inside = f.world_to_cell(np.array([[100.05, -51.0], [100.25, -51.0]]))
    assert inside.all() and occ[iy[0], ix[0]] and not occ[iy[1], ix[1]]
    # Voxel centres fall on the wall in odom.
    np.testing.assert_allclose(out.voxels.centers()[:, 0], 100.05, atol=1e-6)


def test_window_snaps_to_lattice_and_is_centred():
    p = Perception(PerceptionConfig(resolution=0.1, size_xy=16.0))
    seen = set()
    for x in np.linspace(5.0, 5.09, 10):
        o = p.window_origin(Pose2D(x, -2.01, 0.0))
        assert o[0] / 0.1 == pytest.approx(round(o[0] / 0.1), abs=1e-9)
        assert abs(o[0] + 8.0 - x) <= 0.05 + 1e-9 and abs(o[1] + 8.0 + 2.01) <= 0.05 + 1e-9
        seen.add(round(o[0], 6))
    assert len(seen) <= 2


def test_floor_body_ceiling_and_far_points_are_dropped():
    p = Perception(PerceptionConfig())
    pts = np.array([
        [3.0, 0.0, 0.0],     # floor
        [0.2, 0.1, 0.5],     # the robot's own body
        [3.0, 0.0, 2.5],     # overhead
        [7.9, 0.0, 0.5],     # kept
        [4.0, 4.0, 0.5],     # kept
        [15.5, 0.0, 0.5],    # beyond max_range (and the window)
    ], np.float32)
    out = p.process(pts, (0.0, 0.0, 0.0, 0.0), Pose2D(0.0, 0.0, 0.0))
    assert out.n_points_in == 6 and out.n_points_used == 2
    occ = occupancy_2d(out.voxels)
    assert occ.sum() == 2


def test_sensor_height_moves_points_into_the_band():
    p = Perception(PerceptionConfig())
    pts = np.array([[3.0, 0.0, -0.3]], np.float32)  # 0.3 m below a sensor mounted at 0.4 m
    assert p.process(pts, (0, 0, 0.4, 0), Pose2D(0, 0, 0)).n_points_used == 1
    assert p.process(pts, (0, 0, 0.0, 0), Pose2D(0, 0, 0)).n_points_used == 0


def test_empty_cloud_is_all_free():
    p = Perception(PerceptionConfig(max_distance=2.5))
    out = p.process(np.zeros((0, 3), np.float32), (0, 0, 0, 0), Pose2D(1.0, 2.0, 0.3))
    assert out.n_points_used == 0 and out.voxels.n_voxels == 0
    assert (out.distance_field.data == 2.5).all()


def test_bad_inputs_and_config():
    p = Perception(PerceptionConfig())
    with pytest.raises(ValueError):
        p.process(np.zeros((4, 2)), (0, 0, 0, 0), Pose2D(0, 0, 0))
    with pytest.raises(ValueError):
        Perception(PerceptionConfig(z_min=1.0, z_max=0.5))
    with pytest.raises(ValueError):
        Perception(PerceptionConfig(min_range=20.0))


@pytest.mark.parametrize("x_wall", [2.01, 2.03, 2.05, 2.07, 2.09])
def test_the_finer_field_is_half_as_conservative_as_the_voxels(x_wall):
    """A wall anywhere within a 0.1 m voxel: the voxel field puts its surface at the voxel's
    near edge (up to 0.1 m early); the default, from a 0.05 m occupancy, at most 0.05 m
    early, and never late (never closer to the truth than safe)."""
    pts = wall(x_wall, -3.0, 3.0)
    fine = Perception(PerceptionConfig()).process(
        pts.astype(np.float32), (0.0, 0.0, 0.0, 0.0), Pose2D(0.0, 0.0, 0.0)).distance_field
    coarse = Perception(PerceptionConfig(field_subdivision=1)).process(
        pts.astype(np.float32), (0.0, 0.0, 0.0, 0.0), Pose2D(0.0, 0.0, 0.0)).distance_field
    truth = x_wall - 0.55          # from the cell centre x = 0.55
    d_fine = float(fine.sample(np.array([[0.55, 0.0]]))[0])
    d_coarse = float(coarse.sample(np.array([[0.55, 0.0]]))[0])
    assert truth - 0.05 - 1e-6 <= d_fine <= truth + 1e-6
    assert truth - 0.1 - 1e-6 <= d_coarse <= truth + 1e-6
    assert d_fine >= d_coarse - 1e-6
