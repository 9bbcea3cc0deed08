"""map->odom from localization poses and odometry (wm_common.ros.localization): a parked robot
stays localised however long no pose comes; travel or turn without a pose makes it stale (with
the reason) until the next pose; a pose with no odometry near its stamp is rejected."""
from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import PoseWithCovarianceStamped

from wm_common.geometry import Pose2D, compose
from wm_common.ros.convert import pose2d_to_pose, sec_to_stamp
from wm_common.localization import MapToOdomEstimate
from wm_common.ros.localization import MapToOdom, resolve_use_tf

ODOM_HZ = 20.0


def close(a: Pose2D, b: Pose2D, tol: float = 1e-9) -> bool:
    return (abs(a.x - b.x) < tol and abs(a.y - b.y) < tol
            and abs(math.remainder(a.yaw - b.yaw, 2 * math.pi)) < tol)


def feed(est, t0, t1, pose_at):
    """Odometry at ODOM_HZ over [t0, t1]; returns the last stamp."""
    n = int(round((t1 - t0) * ODOM_HZ))
    for k in range(n + 1):
        t = t0 + k / ODOM_HZ
        assert est.on_odom(t, pose_at(t))
    return t0 + n / ODOM_HZ


def test_map_to_odom_is_map_base_times_inverse_odom_base_at_the_pose_stamp():
    est = MapToOdomEstimate()
    odom_base = Pose2D(1.0, -0.5, 0.2)
    feed(est, 0.0, 1.0, lambda t: odom_base)
    map_base = Pose2D(5.0, 3.0, 0.5)
    assert est.on_localization(0.97, map_base) is None      # nearest odometry: 1.0
    m2o, why = est.state(1.0)
    assert why == "" and close(compose(m2o, odom_base), map_base)


def test_a_parked_robot_stays_localised_without_new_poses():
    """60 s of odometry (a parked EKF jitters by a millimetre) and no pose since the first:
    still usable, the same map->odom."""
    est = MapToOdomEstimate()
    jitter = lambda t: Pose2D(2.0 + 0.001 * math.sin(37.0 * t), 1.0, 0.001 * math.cos(t))  # noqa: E731
    feed(est, 0.0, 0.5, jitter)
    assert est.on_localization(0.5, Pose2D(10.0, 4.0, 1.0)) is None
    first, _ = est.state(0.5)
    last = feed(est, 0.55, 60.5, jitter)
    m2o, why = est.state(last + 0.05)
    assert why == "" and m2o == first
    assert est.travel < 0.01 and est.turn < 0.01


def test_travel_without_a_pose_goes_stale_with_the_reason_until_the_next_pose():
    est = MapToOdomEstimate(max_travel=1.0, max_turn=1.0)
    feed(est, 0.0, 0.5, lambda t: Pose2D(0.0, 0.0, 0.0))
    assert est.on_localization(0.5, Pose2D(3.0, 3.0, 0.0)) is None
    drive = lambda t: Pose2D(0.5 * max(t - 0.5, 0.0), 0.0, 0.0)  # noqa: E731  0.5 m/s
    last = feed(est, 0.55, 2.3, drive)                 # 0.9 m: still within the bound
    assert est.state(last)[1] == ""
    last = feed(est, last + 0.05, 2.9, drive)          # 1.2 m: four AMCL updates missed
    m2o, why = est.state(last)
    assert m2o is None and "travelled 1.20 m" in why and "max 1.00 m" in why
    # driving back to where the pose was does not restore trust: only a pose does
    back = lambda t: Pose2D(1.2 - 0.5 * (t - 2.9), 0.0, 0.0)  # noqa: E731
    last = feed(est, last + 0.05, 5.3, back)
    assert est.state(last)[0] is None
    assert est.on_localization(last, Pose2D(3.05, 3.0, 0.0)) is None
    m2o, why = est.state(last)
    assert why == "" and close(compose(m2o, back(last)), Pose2D(3.05, 3.0, 0.0))


def test_turning_without_a_pose_goes_stale():
    est = MapToOdomEstimate(max_turn=1.0)
    feed(est, 0.0, 0.2, lambda t: Pose2D(0.0, 0.0, 3.0))
    assert est.on_localization(0.2, Pose2D(0.0, 0.0, 0.0)) is None
    spin = lambda t: Pose2D(0.0, 0.0, 3.0 + 0.5 * (t - 0.2))  # noqa: E731  across +-pi
    last = feed(est, 0.25, 2.2, spin)                  # 0.975 rad
    assert est.state(last)[1] == ""
    last = feed(est, last + 0.05, 2.6, spin)           # 1.2 rad
    assert est.state(last)[0] is None and "turned 1.20 rad" in est.state(last)[1]


def test_a_pose_with_no_odometry_near_its_stamp_is_rejected():
    est = MapToOdomEstimate()
    assert est.on_localization(1.0, Pose2D(1.0, 1.0, 0.0))[0] == "localization_no_odom"
    feed(est, 0.0, 1.0, lambda t: Pose2D(0.0, 0.0, 0.0))
    reason, detail = est.on_localization(1.5, Pose2D(1.0, 1.0, 0.0))   # 0.5 s after
    assert reason == "localization_no_odom" and "1.500" in detail
    assert est.state(1.0) == (None, "no localization pose yet")
    assert est.on_localization(1.0, Pose2D(1.0, 1.0, 0.0)) is None
    assert est.on_localization(0.9, Pose2D(1.0, 1.0, 0.0))[0] == "localization_out_of_order"


def test_no_fresh_odometry_is_not_usable():
    est = MapToOdomEstimate(odom_timeout=0.5)
    assert est.state(0.0)[1] == "no localization pose yet"
    feed(est, 0.0, 1.0, lambda t: Pose2D(0.0, 0.0, 0.0))
    assert est.on_localization(1.0, Pose2D(1.0, 1.0, 0.0)) is None
    assert est.state(1.4)[0] is not None
    m2o, why = est.state(1.6)
    assert m2o is None and why.startswith("odometry 0.60 s old")


def test_a_late_pose_counts_the_odometry_that_came_before_it():
    """AMCL's pose arrives after odometry has moved on: the motion since its stamp counts."""
    est = MapToOdomEstimate(max_travel=1.0)
    drive = lambda t: Pose2D(1.0 * t, 0.0, 0.0)  # noqa: E731  1 m/s
    feed(est, 0.0, 2.0, drive)
    assert est.on_localization(0.9, Pose2D(0.9, 0.0, 0.0)) is None
    assert est.travel == pytest.approx(1.1)
    assert "travelled 1.10 m" in est.state(2.0)[1]


def test_use_tf_modes():
    assert resolve_use_tf("auto", have_tf2=False) is False
    assert resolve_use_tf("auto", have_tf2=True) is True
    assert resolve_use_tf("topic", have_tf2=True) is False
    assert resolve_use_tf("tf", have_tf2=True) is True
    with pytest.raises(ValueError, match="not importable"):
        resolve_use_tf("tf", have_tf2=False)
    with pytest.raises(ValueError, match="must be auto, tf or topic"):
        resolve_use_tf("yes")


class FakeNode:
    def __init__(self):
        self.subs, self.destroyed = [], []

    def create_subscription(self, msg_type, topic, callback, qos):
        self.subs.append((msg_type, topic, callback))
        return len(self.subs)

    def destroy_subscription(self, sub):
        self.destroyed.append(sub)


class FakeDiag:
    def __init__(self):
        self.rejected, self.values = [], {}

    def reject(self, reason, detail=""):
        self.rejected.append(reason)

    def set_value(self, key, value):
        self.values[key] = str(value)


def loc_msg(t, pose, frame="map"):
    m = PoseWithCovarianceStamped()
    m.header.stamp, m.header.frame_id = sec_to_stamp(t), frame
    m.pose.pose = pose2d_to_pose(pose)
    return m


def test_the_ros_helper_subscribes_checks_and_reports():
    node, diag = FakeNode(), FakeDiag()
    loc = MapToOdom(node, "map", "odom", False, diag)
    assert loc.source == "localization_pose"
    (msg_type, topic, callback), = node.subs
    assert msg_type is PoseWithCovarianceStamped and topic == "localization_pose"
    assert loc.map_pose(0.0) is None and loc.reason == "no localization pose yet"
    for k in range(11):
        loc.on_odom(0.1 * k, Pose2D(1.0, 0.0, 0.0))
    callback(loc_msg(1.0, Pose2D(2.0, 0.0, 0.0), frame="odom"))      # wrong frame
    bad = loc_msg(1.0, Pose2D(2.0, 0.0, 0.0))
    bad.pose.pose.orientation.w = 3.0                                 # not a rotation
    callback(bad)
    callback(loc_msg(5.0, Pose2D(2.0, 0.0, 0.0)))                     # no odometry then
    assert diag.rejected == ["localization_frame", "localization_invalid",
                             "localization_no_odom"]
    callback(loc_msg(1.0, Pose2D(2.0, 0.0, 0.0)))
    assert loc.map_pose(1.0) == Pose2D(2.0, 0.0, 0.0)
    assert diag.values["map_to_odom"] == "ok (localization_pose)"
    assert loc.map_pose(2.0) is None and "odometry" in diag.values["map_to_odom"]
    loc.destroy()
    assert node.destroyed == [1]
