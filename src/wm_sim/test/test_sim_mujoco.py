"""MuJoCo engine: determinism, drive dynamics (lag, load, slip), LiDAR by ray casting against
analytic ranges, run-time layout changes and contacts."""
import inspect
import math

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_sim.engine import Engine
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.mujoco_engine import CHASSIS_SIZE, MujocoEngine, ObstacleCapacityError
from wm_sim.odometry import WheelOdometry
from wm_sim.world import Box, World, warehouse

DTYPES = {"x": np.float32, "y": np.float32, "z": np.float32, "range_mm": np.uint32,
          "intensity": np.float32, "ring": np.uint16, "t": np.uint32,
          "reflectivity": np.uint16, "ambient": np.uint16}
EMPTY = (-30.0, -30.0, 30.0, 30.0)
HALF_LEN = 0.5 * CHASSIS_SIZE[0]


def _wall_world(face_x=5.0, extra=()):
    """A tall wall whose near face is at x = face_x (the robot starts at the origin)."""
    return World([Box(face_x + 0.1, 0.0, 0.2, 40.0, 0.0, 10.0, "wall", 0.4)] + list(extra),
                 EMPTY)


def _spec(**kw):
    base = dict(range_noise_sigma=0.0, dropout_prob=0.0, columns=512)
    base.update(kw)
    return LidarSpec(**base)


def _drive(engine, rid, v, w, seconds, dt=0.05, odo=None):
    engine.set_command(rid, v, w)
    for _ in range(int(round(seconds / dt))):
        engine.step(dt)
        if odo is not None:
            odo.update(*engine.wheel_angles(rid), dt)


# --- interface and determinism ---------------------------------------------------------------
def test_engine_interface_fully_implemented():
    assert not getattr(MujocoEngine, "__abstractmethods__", None)
    abstract = {n for n, v in inspect.getmembers(Engine) if getattr(v, "__isabstractmethod__",
                                                                     False)}
    assert abstract <= set(vars(MujocoEngine))
    w = warehouse("small")
    spawns = {k: w.spawns[k] for k in ("robot_0", "robot_1")}
    e = MujocoEngine(w, spawns, lidar=_spec(rings=16), payloads={"robot_1": 20.0}, seed=3)
    assert isinstance(e, Engine) and e.robot_ids == ["robot_0", "robot_1"]
    assert e.time == 0.0
    e.set_command("robot_0", 0.5, 0.1)
    e.step(0.1)
    assert e.time == pytest.approx(0.1)
    p = e.pose("robot_0")
    assert isinstance(p, Pose2D) and abs(p.x - 1.2) < 0.1 and abs(p.y - 2.0) < 0.05
    assert e.pose("robot_1").yaw == pytest.approx(math.pi, abs=1e-3) or \
        e.pose("robot_1").yaw == pytest.approx(-math.pi, abs=1e-3)
    v, om = e.body_velocity("robot_0")
    assert 0.0 < v < 0.6 and isinstance(om, float)
    wl, wr = e.wheel_angles("robot_0")
    assert 0.0 < wl < wr  # turning left: the right wheel runs ahead
    assert e.payload("robot_1") == 20.0 and e.payload("robot_0") == 0.0
    e.set_payload("robot_0", 35.0)
    assert e.payload("robot_0") == 35.0
    scan = e.scan("robot_0")
    assert set(scan) == set(DTYPES)
    for k, dt in DTYPES.items():
        assert scan[k].shape == (16, 512) and scan[k].dtype == dt, k
    e.move_obstacle("pallet_0", Pose2D(11.0, 2.5, 0.5))
    e.add_obstacle(Box(15.0, 12.0, 1.0, 1.0, 0.0, 1.0, "dropped"))
    assert e.world.box("pallet_0").cy == 2.5 and e.world.box("dropped").cx == 15.0
    assert e.in_contact("robot_0") is False and e.contacts() == []
    with pytest.raises(KeyError):
        e.move_obstacle("no_such_box", Pose2D(0, 0, 0))


def _scripted_run(seed):
    w = warehouse("small")
    spawns = {k: w.spawns[k] for k in ("robot_0", "robot_2")}
    e = MujocoEngine(w, spawns, lidar=_spec(rings=16, range_noise_sigma=0.02,
                                            dropout_prob=0.05), seed=seed)
    cmds = [(1.0, 0.0), (1.2, 0.8), (0.6, -1.5), (1.5, 0.0), (0.0, 2.0)]
    poses, scans = [], []
    for k, (v, om) in enumerate(cmds):
        e.set_command("robot_0", v, om)
        e.set_command("robot_2", 0.7 * v, -om)
        if k == 2:
            e.set_payload("robot_2", 80.0)
        e.step(0.3)
        poses.append(np.array(e.data.qpos))
        scans.append(e.scan("robot_0"))
    return poses, scans


def test_deterministic_trajectories_and_scans():
    pa, sa = _scripted_run(7)
    pb, sb = _scripted_run(7)
    for a, b in zip(pa, pb):
        assert np.array_equal(a, b)
    for a, b in zip(sa, sb):
        for k in a:
            assert np.array_equal(a[k], b[k], equal_nan=True), k
    assert not np.allclose(pa[0], pa[-1])  # it did move
    _, sc = _scripted_run(8)  # another seed: another noise draw, same physics
    assert not np.array_equal(sa[0]["range_mm"], sc[0]["range_mm"])


# --- drive dynamics --------------------------------------------------------------------------
def test_straight_drive_reaches_speed_and_stops():
    e = MujocoEngine(World([], EMPTY), {"r": Pose2D(0.0, 0.0, 0.0)})
    _drive(e, "r", 1.0, 0.0, 0.05)
    v_early, _ = e.body_velocity("r")
    assert 0.0 < v_early < 0.5  # lag: torque-limited, not a jump
    _drive(e, "r", 1.0, 0.0, 2.0)
    v, om = e.body_velocity("r")
    assert v == pytest.approx(1.0, abs=0.05) and abs(om) < 0.02
    p = e.pose("r")
    assert abs(p.y) < 0.02 and abs(p.yaw) < 0.01 and 1.5 < p.x < 2.1
    _drive(e, "r", 0.0, 0.0, 1.5)
    v, om = e.body_velocity("r")
    assert abs(v) < 0.02 and abs(om) < 0.02
    x_stop = e.pose("r").x
    _drive(e, "r", 0.0, 0.0, 0.5)
    assert abs(e.pose("r").x - x_stop) < 0.01  # stays put


def test_heavier_payload_accelerates_slower():
    vs = {}
    for mass in (0.0, 100.0):
        e = MujocoEngine(World([], EMPTY), {"r": Pose2D(0.0, 0.0, 0.0)},
                         payloads={"r": mass})
        _drive(e, "r", 1.5, 0.0, 0.5)
        vs[mass] = e.body_velocity("r")[0]
    assert vs[100.0] < 0.6 * vs[0.0] and vs[100.0] > 0.1
    # set_payload at run time gives the same dynamics as the payload given at start
    e = MujocoEngine(World([], EMPTY), {"r": Pose2D(0.0, 0.0, 0.0)})
    e.set_payload("r", 100.0)
    _drive(e, "r", 1.5, 0.0, 0.5)
    assert e.body_velocity("r")[0] == pytest.approx(vs[100.0], abs=1e-3)


def _odometry_error(floor_friction, payload, cmds):
    e = MujocoEngine(World([], EMPTY), {"r": Pose2D(0.0, 0.0, 0.0)},
                     payloads={"r": payload}, floor_friction=floor_friction)
    odo = WheelOdometry(e.params.wheel_radius, e.params.track, pose=e.pose("r"))
    odo.update(*e.wheel_angles("r"), 0.0)
    for v, om, seconds in cmds:
        _drive(e, "r", v, om, seconds, odo=odo)
    p, o = e.pose("r"), odo.pose
    return math.hypot(p.x - o.x, p.y - o.y), abs(math.remainder(p.yaw - o.yaw, 2 * math.pi))


def test_odometry_tracks_without_slip_and_drifts_with_slip():
    # Slow straight driving on a grippy floor: the encoders tell the truth.
    pos_err, yaw_err = _odometry_error(0.9, 0.0, [(0.3, 0.0, 3.0), (0.0, 0.0, 0.5)])
    assert pos_err < 0.01 and yaw_err < 0.005
    # Full speed, then a sharp turn: empty, the wheels hold; with 150 kg they slide out
    # (the centripetal demand exceeds the wheels' friction), and more so on a dusty floor.
    sharp = [(1.5, 0.0, 1.5), (1.5, 3.0, 1.5), (0.0, 0.0, 0.5)]
    pos_err, yaw_err = _odometry_error(0.8, 0.0, sharp)
    assert pos_err < 0.02 and yaw_err < 0.02
    pos_loaded, yaw_loaded = _odometry_error(0.8, 150.0, sharp)
    assert pos_loaded > 0.15 and yaw_loaded > 0.1
    pos_dusty, yaw_dusty = _odometry_error(0.3, 150.0, sharp)
    assert yaw_dusty > yaw_loaded


# --- LiDAR -----------------------------------------------------------------------------------
def _analytic_wall_range(spec, face_x):
    """Range to the plane x = face_x from the sensor at the origin (mount x = 0)."""
    el, az = spec.elevations()[:, None], spec.azimuths()[None, :]
    with np.errstate(divide="ignore"):
        d = np.cos(el) * np.cos(az)
        return np.where(d > 1e-6, face_x / np.where(d > 1e-6, d, 1.0), np.inf)


def test_lidar_matches_analytic_wall_ranges_within_noise():
    spec = LidarSpec(rings=16, columns=512, range_noise_sigma=0.01, dropout_prob=0.0)
    e = MujocoEngine(_wall_world(5.0), {"r": Pose2D(0.0, 0.0, 0.0)}, lidar=spec, seed=1)
    e.step(0.1)
    scan = e.scan("r")
    r = scan["range_mm"].astype(np.float64) / 1000.0
    expect = _analytic_wall_range(spec, 5.0)
    # Rays that reach the wall face before the floor, well inside its 40 m width.
    el = spec.elevations()[:, None]
    s_floor = np.where(el < 0, 0.4 / np.tan(-np.minimum(el, -1e-9)), np.inf)
    az = spec.azimuths()[None, :]
    wall = (np.cos(az) > 0.3) & (expect * np.cos(el) < s_floor - 0.2) & (expect < 19.0)
    assert wall.sum() > 1000
    err = r[wall] - expect[wall]
    assert np.abs(np.median(err)) < 0.003
    assert np.std(err) == pytest.approx(0.01, rel=0.25)
    assert np.all(np.abs(err) < 0.06)
    # The points agree with the analytic LiDAR model of the same World, ray by ray.
    truth, refl, _ = Lidar(spec).ranges(e.world, e.pose("r"))
    mj, mrefl, _ = e.ranges("r")
    both = np.isfinite(truth) & (truth < spec.max_range)
    assert np.array_equal(both, np.isfinite(mj) & (mj < spec.max_range))
    assert np.max(np.abs(mj[both] - truth[both])) < 0.01
    assert np.array_equal(refl[both], mrefl[both])
    x = scan["x"][wall]
    assert np.nanmedian(np.abs(x - 5.0)) < 0.01  # sensor frame: the wall at x = 5


def test_lidar_floor_dropouts_and_second_robot():
    spec = LidarSpec(rings=32, columns=512, range_noise_sigma=0.0, dropout_prob=0.2)
    spawns = {"a": Pose2D(0.0, 0.0, 0.0), "b": Pose2D(3.0, 0.0, 0.5)}
    e = MujocoEngine(_wall_world(8.0), spawns, lidar=spec, seed=2)
    e.step(0.1)
    scan = e.scan("a")
    el = spec.elevations()
    # Downward rings looking backwards (away from wall and robot b) hit the floor: z = -0.4.
    az = spec.azimuths()
    back = np.abs(az) > 2.5
    down = el < -np.deg2rad(5.0)
    z = scan["z"][np.ix_(down, back)]
    assert np.isfinite(z).mean() > 0.7
    assert np.nanmax(np.abs(z + 0.4)) < 0.01
    rng = scan["range_mm"][np.ix_(down, back)] / 1000.0
    expect = 0.4 / np.sin(-el[down])[:, None] * np.ones((1, back.sum()))
    ok = rng > 0
    assert np.max(np.abs(rng[ok] - expect[ok])) < 0.01
    assert np.all(scan["reflectivity"][np.ix_(down, back)][ok] == 20)  # floor_reflectivity
    # Dropouts: NaN xyz, zero range, about dropout_prob of the rays that had a return.
    truth, _, _ = e.ranges("a")
    had = np.isfinite(truth) & (truth >= spec.min_range) & (truth <= spec.max_range)
    nan = np.isnan(scan["x"])
    assert np.array_equal(nan, scan["range_mm"] == 0)
    assert np.isnan(scan["y"][nan]).all() and np.isnan(scan["z"][nan]).all()
    assert 0.17 < nan[had].mean() < 0.23
    assert np.all(scan["intensity"][nan] == 0.0)
    # Robot b (3 m ahead, chassis + payload from 0.05 to 0.41 m) shadows the wall for the
    # rings just below the horizontal (the sensor is 0.4 m up) in front.
    front = np.abs(az) < 0.05
    flat = (el <= 0.0) & (el > -np.deg2rad(3.0))
    assert flat.sum() >= 2
    hits = truth[np.ix_(flat, front)]
    assert np.all(hits < 3.0) and np.all(hits > 2.5)
    # ... and robot a itself is invisible to its own sensor (no return below 0.5 m).
    assert np.nanmin(np.where(np.isfinite(truth), truth, np.nan)) > 0.5


# --- layout changes and contacts -------------------------------------------------------------
def _front_range(e, rid="r"):
    truth, _, _ = e.ranges(rid)
    spec = e.lidar_spec
    ring = int(np.argmin(np.abs(spec.elevations())))
    col = int(np.argmin(np.abs(spec.azimuths())))
    return float(truth[ring, col])


def test_move_and_add_obstacle_change_scan_world_and_collisions():
    spec = _spec(rings=16, vertical_fov_deg=(-15.0, 15.0))
    e = MujocoEngine(_wall_world(6.0), {"r": Pose2D(0.0, 0.0, 0.0)}, lidar=spec,
                     spare_obstacles=2)
    e.step(0.05)
    r0 = _front_range(e)
    assert r0 == pytest.approx(6.0, abs=0.05)
    e.move_obstacle("wall", Pose2D(4.1, 0.0, 0.0))
    assert e.world.box("wall").cx == pytest.approx(4.1) and len(e.world.boxes) == 1
    assert _front_range(e) == pytest.approx(4.0, abs=0.05)
    pallet = Box(2.6, 0.0, 0.8, 1.2, 0.0, 1.2, "pallet_dropped", 0.3)
    e.add_obstacle(pallet)
    assert e.world.box("pallet_dropped") == pallet and len(e.world.boxes) == 2
    assert _front_range(e) == pytest.approx(2.2, abs=0.05)
    scan = e.scan("r")
    col = int(np.argmin(np.abs(spec.azimuths())))
    assert np.any(scan["reflectivity"][:, col] == 30)
    # The analytic model on the updated World sees the same layout.
    truth, _, _ = Lidar(spec).ranges(e.world, e.pose("r"))
    mj, _, _ = e.ranges("r")
    finite = np.isfinite(truth) & (truth < spec.max_range)
    assert np.max(np.abs(truth[finite] - mj[finite])) < 0.01
    # The added obstacle is solid: driving into it stops the robot at its face.
    _drive(e, "r", 1.0, 0.0, 3.0)
    assert e.in_contact("r") and ("r", "pallet_dropped") in e.contacts()
    assert e.pose("r").x + HALF_LEN < 2.2 + 0.03
    # Moving it away frees the path; the robot then stops at the moved wall.
    e.move_obstacle("pallet_dropped", Pose2D(-5.0, 5.0, 0.0))
    _drive(e, "r", 1.0, 0.0, 3.0)
    assert ("r", "wall") in e.contacts()
    assert 3.4 < e.pose("r").x + HALF_LEN < 4.0 + 0.03
    e.add_obstacle(Box(-5.0, -5.0, 1.0, 1.0, name="second"))
    assert e.spare_obstacles_left == 0
    with pytest.raises(ObstacleCapacityError):
        e.add_obstacle(Box(-8.0, -5.0, 1.0, 1.0, name="third"))
    assert len(e.world.boxes) == 3


def test_robot_driven_into_wall_reports_contact_and_does_not_tunnel():
    e = MujocoEngine(_wall_world(2.0), {"r": Pose2D(0.0, 0.0, 0.0), "s": Pose2D(0.0, 3.0, 0.0)},
                     payloads={"r": 100.0})
    e.step(0.1)
    assert not e.in_contact("r") and not e.in_contact("s")
    _drive(e, "r", 1.5, 0.0, 4.0)
    assert e.in_contact("r") and not e.in_contact("s")
    assert ("r", "wall") in e.contacts()
    x = e.pose("r").x
    assert 2.0 - 0.1 < x + HALF_LEN < 2.0 + 0.03
    _drive(e, "r", 1.5, 0.0, 2.0)  # keeps pushing: still stuck at the face
    assert abs(e.pose("r").x - x) < 0.03
    # Robot-robot contact: s drives into r's side.
    e.set_command("r", 0.0, 0.0)
    e2 = MujocoEngine(World([], EMPTY), {"a": Pose2D(0.0, 0.0, 0.0),
                                         "b": Pose2D(0.0, 2.0, -math.pi / 2)})
    _drive(e2, "b", 0.8, 0.0, 3.0)
    assert ("b", "a") in e2.contacts() and e2.in_contact("a")
    assert e2.pose("b").y > e2.pose("a").y + 0.5
