import math

import numpy as np
import pytest

from wm_common.geometry import Pose2D, transform_points
from wm_sim.lidar import Lidar, LidarSpec, lidar_fault
from wm_sim.world import Box, World, robot_box, warehouse

DTYPES = {"x": np.float32, "y": np.float32, "z": np.float32, "range_mm": np.uint32,
          "intensity": np.float32, "ring": np.uint16, "t": np.uint32,
          "reflectivity": np.uint16, "ambient": np.uint16}


def _wall_world(dist=5.0):
    """A tall wall whose near face is `dist` m ahead of the origin along +x."""
    return World([Box(dist + 0.1, 0.0, 0.2, 40.0, 0.0, 10.0, "wall")], (-30, -30, 30, 30))


def _spec(**kw):
    base = dict(range_noise_sigma=0.0, dropout_prob=0.0)
    base.update(kw)
    return LidarSpec(**base)


def test_organized_layout_and_dtypes():
    spec = LidarSpec()
    scan = Lidar(spec, seed=0).scan(warehouse("small"), Pose2D(8.0, 5.5, 0.0))
    assert set(scan) == set(DTYPES)
    for k, dt in DTYPES.items():
        assert scan[k].shape == (16, 1024) and scan[k].dtype == dt, k
    assert np.all(scan["ring"] == np.arange(16)[:, None])
    # Column-major sweep: one timestamp per column, increasing, within one 100 ms scan.
    t = scan["t"].astype(np.int64)
    assert np.all(t == t[:1]) and np.all(np.diff(t[0]) > 0) and t[0, -1] < 100_000_000
    # No return <=> NaN xyz <=> range 0.
    nan = np.isnan(scan["x"])
    assert np.array_equal(nan, np.isnan(scan["y"])) and np.array_equal(nan, np.isnan(scan["z"]))
    assert np.array_equal(nan, scan["range_mm"] == 0)


def test_wall_at_known_distance():
    sigma = 0.01
    lid = Lidar(_spec(range_noise_sigma=sigma, mount=(0.0, 0.0, 1.0, 0.0)), seed=1)
    scan = lid.scan(_wall_world(5.0), Pose2D(0.0, 0.0, 0.0))
    # Column 512 looks straight ahead (azimuth 0); rings that do not reach the floor first
    # (1 m mount height: steeper than atan(1/5) down) hit the wall at 5 / cos(el) / cos(az).
    el = lid.spec.elevations()
    rings = el > -math.atan2(1.0, 5.0)
    assert rings.sum() >= 12
    el = el[rings]
    cols = slice(500, 525)
    az = lid.spec.azimuths()[cols]
    expected = 5.0 / (np.cos(el)[:, None] * np.cos(az)[None, :])
    r = scan["range_mm"][rings, cols] / 1000.0
    assert np.all(np.abs(r - expected) < 5 * sigma + 1e-3)
    assert np.std(r - expected) == pytest.approx(sigma, rel=0.3)
    x = scan["x"][rings, cols]
    assert np.all(np.abs(x - 5.0) < 5 * sigma)
    # The steep rings see the floor in front of the wall instead.
    steep = ~rings
    assert np.all(np.abs(scan["z"][steep, cols] + 1.0) < 5 * sigma)
    # Looking backwards (column 0) the upward rings see nothing.
    assert np.all(np.isnan(scan["x"][lid.spec.elevations() >= 0, 0]))


def test_floor_returns_for_downward_rings():
    z0 = 0.4
    lid = Lidar(_spec(mount=(0.0, 0.0, z0, 0.0)), seed=0)
    scan = lid.scan(World([], (-30, -30, 30, 30)), Pose2D(1.0, 2.0, 0.5))
    el = lid.spec.elevations()
    # Downward rings whose floor hit is within max_range return; the one 1.1 deg below the
    # horizon meets the floor at 20.7 m, beyond range, like the up-looking rings.
    down = (el < 0) & (z0 / np.tan(np.maximum(-el, 1e-9)) <= lid.spec.max_range)
    assert down.sum() == 7
    assert np.all(np.isfinite(scan["z"][down]))
    assert np.all(np.isnan(scan["z"][~down]))
    np.testing.assert_allclose(scan["z"][down], -z0, atol=1e-5)
    horiz = np.hypot(scan["x"][down], scan["y"][down])
    expected = z0 / np.tan(-el[down])
    np.testing.assert_allclose(horiz, np.repeat(expected[:, None], 1024, 1), rtol=1e-5)


def test_dropouts_and_range_limits_are_nan():
    lid = Lidar(_spec(dropout_prob=0.3), seed=2)
    scan = lid.scan(_wall_world(3.0), Pose2D(0.0, 0.0, 0.0))
    ahead = scan["x"][:, 480:545]
    frac = np.isnan(ahead).mean()
    assert 0.2 < frac < 0.4
    assert np.all(scan["range_mm"][:, 480:545][np.isnan(ahead)] == 0)
    assert np.all(scan["intensity"][:, 480:545][np.isnan(ahead)] == 0)
    # Beyond max_range and inside min_range: no return either.
    far = Lidar(_spec(max_range=2.0), seed=0).scan(_wall_world(3.0), Pose2D(0, 0, 0))
    assert np.all(np.isnan(far["x"][:8, 500:525]))
    near = Lidar(_spec(min_range=0.5), seed=0).scan(_wall_world(0.3), Pose2D(0, 0, 0))
    assert np.all(np.isnan(near["x"][:, 500:525]))


def test_points_in_sensor_frame_with_rotated_robot():
    yaw = 2.2
    world = World([Box(-3.0, 4.0, 1.0, 1.0, 0.4, 3.0, "b")], (-30, -30, 30, 30))
    mount = (0.2, -0.1, 0.5, 0.3)
    lid = Lidar(_spec(mount=mount), seed=0)
    base = Pose2D(-1.0, 1.0, yaw)
    scan = lid.scan(world, base)
    ok = np.isfinite(scan["x"])
    sp = lid.sensor_pose(base)
    xy_map = transform_points(sp, np.stack([scan["x"][ok], scan["y"][ok]], axis=-1))
    z_map = scan["z"][ok] + mount[2]
    on_floor = np.abs(z_map) < 1e-4
    assert on_floor.any() and (~on_floor).any()
    # Every non-floor point lies on the box surface (sides or lid).
    sd = world.signed_distance(xy_map[~on_floor])
    assert np.all(np.abs(sd) < 1e-3)
    assert np.all(z_map[~on_floor] <= 3.0 + 1e-3)
    # Sensor-frame bearing to the box centre: the hits cluster around it.
    rel = np.array([-3.0, 4.0]) - np.array([sp.x, sp.y])
    bearing = math.atan2(rel[1], rel[0]) - sp.yaw
    pts = np.stack([scan["x"][ok][~on_floor], scan["y"][ok][~on_floor]], axis=-1)
    ang = np.arctan2(pts[:, 1], pts[:, 0])
    diff = (ang - bearing + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(diff).max() < 0.4 and np.abs(np.median(diff)) < 0.1


def test_other_robots_are_seen_and_occlude():
    world = _wall_world(6.0)
    lid = Lidar(_spec(mount=(0.0, 0.0, 0.3, 0.0)), seed=0)
    other = robot_box(Pose2D(2.0, 0.0, 0.0), 0.6, 0.6, 0.5)
    scan = lid.scan(world, Pose2D(0.0, 0.0, 0.0), extra_boxes=[other])
    mid_ring = int(np.argmin(np.abs(lid.spec.elevations())))
    assert scan["x"][mid_ring, 512] == pytest.approx(1.7, abs=1e-3)
    clean = lid.scan(world, Pose2D(0.0, 0.0, 0.0))
    assert clean["x"][mid_ring, 512] == pytest.approx(6.0, abs=1e-3)


def test_box_lid_and_intensity():
    # A low pallet seen from above: downward rings land on its top at z = height.
    world = World([Box(1.5, 0.0, 1.2, 3.0, 0.0, 0.2, "pallet", 0.3)], (-30, -30, 30, 30))
    lid = Lidar(_spec(mount=(0.0, 0.0, 0.6, 0.0)), seed=0)
    scan = lid.scan(world, Pose2D(0.0, 0.0, 0.0))
    z = scan["z"][:, 512] + 0.6
    assert np.any(np.abs(z - 0.2) < 1e-4)
    ok = np.isfinite(scan["x"])
    assert np.all(scan["intensity"][ok] > 0) and np.all(scan["reflectivity"][ok] > 0)


def test_lidar_faults_as_failing_sensors_deliver_them():
    scan = Lidar(LidarSpec(dropout_prob=0.0), seed=1).scan(warehouse(), Pose2D(5.0, 5.0, 0.0))
    valid = np.isfinite(scan["x"])
    assert valid.mean() > 0.4
    zero = lidar_fault(scan, "zero")
    assert np.all(zero["x"] == 0) and np.all(zero["range_mm"] == 0)
    assert zero["x"].shape == scan["x"].shape and np.isfinite(scan["x"]).sum() == valid.sum()
    assert np.all(np.isnan(lidar_fault(scan, "nan")["z"]))
    assert lidar_fault(scan, "empty")["x"].size == 0
    half = lidar_fault(scan, "front_dark")
    az = np.arctan2(scan["y"], scan["x"])
    ahead = valid & (np.abs(az) < 0.5 * math.pi)
    assert ahead.any() and np.all(half["x"][ahead] == 0) and np.all(half["range_mm"][ahead] == 0)
    behind = valid & ~ahead
    assert np.array_equal(half["x"][behind], scan["x"][behind])
    assert lidar_fault(scan, "") is scan
    with pytest.raises(ValueError):
        lidar_fault(scan, "smoke")
