import math

import numpy as np
import pytest

from wm_common.geometry import Pose2D, wrap_angle
from wm_sim.dynamics import DiffDriveParams, DiffDriveRobot, RobotDynamics
from wm_sim.odometry import WheelOdometry


def _unicycle(p0, v, w, t):
    if abs(w) < 1e-12:
        return Pose2D(p0.x + v * t * math.cos(p0.yaw), p0.y + v * t * math.sin(p0.yaw), p0.yaw)
    yaw = p0.yaw + w * t
    return Pose2D(p0.x + v / w * (math.sin(yaw) - math.sin(p0.yaw)),
                  p0.y - v / w * (math.cos(yaw) - math.cos(p0.yaw)), float(wrap_angle(yaw)))


def _run(robot, v, w, dt, steps):
    for _ in range(steps):
        robot.step(v, w, dt)
    return robot.pose


def test_interface():
    r = DiffDriveRobot()
    assert isinstance(r, RobotDynamics)
    assert r.pose == Pose2D(0.0, 0.0, 0.0)
    assert r.body_velocity == (0.0, 0.0) and r.wheel_angles == (0.0, 0.0)


@pytest.mark.parametrize("dt", [0.01, 0.1])
def test_ideal_robot_follows_unicycle(dt):
    p0 = Pose2D(1.0, -2.0, 0.7)
    r = DiffDriveRobot(DiffDriveParams.ideal(), p0)
    pose = _run(r, 0.8, 0.4, dt, int(round(4.0 / dt)))
    ref = _unicycle(p0, 0.8, 0.4, 4.0)
    assert pose.x == pytest.approx(ref.x, abs=1e-9)
    assert pose.y == pytest.approx(ref.y, abs=1e-9)
    assert pose.yaw == pytest.approx(ref.yaw, abs=1e-9)
    assert r.body_velocity == pytest.approx((0.8, 0.4))
    # Encoders: each wheel turned by its arc length / radius.
    left, right = r.wheel_angles
    assert left == pytest.approx((0.8 - 0.25 * 0.4) * 4.0 / 0.1)
    assert right == pytest.approx((0.8 + 0.25 * 0.4) * 4.0 / 0.1)


def test_lag_makes_robot_lag_behind():
    ideal = DiffDriveRobot(DiffDriveParams.ideal())
    lagged = DiffDriveRobot(DiffDriveParams.ideal(actuator_tau=0.15))
    _run(ideal, 1.0, 0.0, 0.02, 10)
    _run(lagged, 1.0, 0.0, 0.02, 10)
    assert lagged.pose.x < ideal.pose.x - 0.05
    # First-order response: after one time constant about 63 % of the command.
    r = DiffDriveRobot(DiffDriveParams.ideal(actuator_tau=0.15))
    _run(r, 1.0, 0.0, 0.015, 10)
    assert r.body_velocity[0] == pytest.approx(1.0 - math.exp(-1.0), abs=0.01)
    _run(r, 1.0, 0.0, 0.05, 40)
    assert r.body_velocity[0] == pytest.approx(1.0, abs=1e-3)


def test_slip_under_turns_more_with_payload():
    turned = []
    for payload in (0.0, 0.0, 150.0):
        params = DiffDriveParams(payload_mass=payload) if turned else DiffDriveParams.ideal()
        r = DiffDriveRobot(params)
        _run(r, 0.5, 1.0, 0.05, 40)
        turned.append(r.pose.yaw)
    ideal, light, heavy = turned
    assert light < ideal - 0.05
    assert heavy < light - 0.05
    # Lateral slip pushes the robot outward of a left turn (to its right).
    r = DiffDriveRobot(DiffDriveParams(payload_mass=100.0))
    _run(r, 1.0, 0.8, 0.05, 10)
    assert r.lateral_velocity < 0.0


def test_limits_respected():
    p = DiffDriveParams()
    r = DiffDriveRobot(p)
    # Acceleration limit: one 50 ms step cannot exceed max_wheel_accel * dt at the wheels.
    r.step(10.0, 0.0, 0.05)
    wl, wr = r.wheel_speeds
    assert max(abs(wl), abs(wr)) <= p.max_wheel_accel * 0.05 + 1e-9
    _run(r, 10.0, 0.0, 0.05, 100)
    assert max(abs(s) for s in r.wheel_speeds) <= p.max_wheel_speed + 1e-9
    assert r.body_velocity[0] <= p.max_speed + 1e-9
    # Saturation keeps the commanded curvature: w / v stays 2.0 under an over-speed command.
    r = DiffDriveRobot(DiffDriveParams.ideal())
    _run(r, 4.0, 8.0, 0.05, 10)
    v, w = r.body_velocity
    assert max(abs(s) for s in r.wheel_speeds) == pytest.approx(15.0)
    assert w / v == pytest.approx(2.0)


def test_bad_inputs():
    r = DiffDriveRobot()
    with pytest.raises(ValueError):
        r.step(0.1, 0.0, -0.1)
    r.step(float("nan"), 0.0, 0.1)  # a NaN command is treated as stop, state stays finite
    assert all(math.isfinite(v) for v in r.pose)
    with pytest.raises(ValueError):
        DiffDriveParams(track=0.0)


def _drive(params, seconds=8.0, dt=0.02):
    r = DiffDriveRobot(params, Pose2D(0.0, 0.0, 0.0))
    odo = WheelOdometry(params.wheel_radius, params.track)
    odo.update(*r.wheel_angles, dt)
    t = 0.0
    while t < seconds:
        w = 0.6 * math.sin(0.8 * t)
        r.step(0.8, w, dt)
        odo.update(*r.wheel_angles, dt)
        t += dt
    return r, odo


def test_odometry_matches_truth_without_slip():
    r, odo = _drive(DiffDriveParams(slip_long=0.0, slip_yaw=0.0, slip_turn_gain=0.0,
                                    lateral_slip_gain=0.0))
    err = math.hypot(r.pose.x - odo.pose.x, r.pose.y - odo.pose.y)
    assert err < 5e-3
    assert abs(float(wrap_angle(r.pose.yaw - odo.pose.yaw))) < 1e-3
    assert odo.twist == pytest.approx(r.body_velocity, abs=2e-2)


def test_odometry_drifts_under_slip():
    r, odo = _drive(DiffDriveParams(payload_mass=120.0))
    err = math.hypot(r.pose.x - odo.pose.x, r.pose.y - odo.pose.y)
    assert err > 0.2
    # Odometry believes it went farther than it did (wheels spin, the ground gets less).
    assert odo.distance_travelled > 6.4 * 0.95


def test_odometry_covariance_grows_with_distance():
    odo = WheelOdometry(0.1, 0.5)
    odo.update(0.0, 0.0, 0.1)
    traces = []
    for k in range(1, 51):
        odo.update(k * 0.5, k * 0.5, 0.1)
        traces.append(np.trace(odo.pose_covariance3))
    assert np.all(np.diff(traces) > 0.0)
    cov = np.array(odo.pose_covariance).reshape(6, 6)
    assert len(odo.pose_covariance) == 36 and len(odo.twist_covariance) == 36
    assert np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) >= -1e-12)
    # Straight driving: lateral (y) uncertainty grows faster than along-track once the
    # heading uncertainty has accumulated.
    assert cov[1, 1] > cov[0, 0]
    tw = np.array(odo.twist_covariance).reshape(6, 6)
    assert tw[0, 0] > 0 and tw[5, 5] > 0
    assert odo.distance_travelled == pytest.approx(50 * 0.05)
    assert odo.twist == pytest.approx((0.5, 0.0))


def test_odometry_turn_in_place():
    odo = WheelOdometry(0.1, 0.5)
    odo.update(0.0, 0.0, 0.1)
    # Turn in place by pi: each wheel travels pi * track / 2 along the circle, opposite ways.
    arc = math.pi * 0.5 / 2.0
    odo.update(-arc / 0.1, arc / 0.1, 0.1)
    assert abs(abs(odo.pose.yaw) - math.pi) < 1e-9
    assert odo.pose.x == pytest.approx(0.0, abs=1e-12)
