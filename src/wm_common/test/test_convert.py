"""Message conversions that refuse untrusted input (wm_common.ros.convert)."""
import math

import pytest
from nav_msgs.msg import Odometry

from wm_common.ros.convert import Refused, odometry_pose


def odom(frame="odom", x=1.0, qz=0.0, qw=1.0, sec=5, nanosec=250_000_000):
    m = Odometry()
    m.header.frame_id, m.header.stamp.sec, m.header.stamp.nanosec = frame, sec, nanosec
    m.pose.pose.position.x = x
    m.pose.pose.orientation.z, m.pose.pose.orientation.w = qz, qw
    return m


def test_odometry_in_the_odom_frame_or_unnamed_is_taken():
    s = math.sin(0.25)
    for frame in ("odom", ""):
        t, pose = odometry_pose(odom(frame, 2.0, s, math.cos(0.25)), "odom")
        assert t == pytest.approx(5.25) and pose.x == 2.0 and pose.yaw == pytest.approx(0.5)


@pytest.mark.parametrize("msg,reason", [
    (odom(frame="base_link"), "odom_frame"),
    (odom(x=math.nan), "odom_invalid"),
    (odom(qw=0.5), "odom_invalid"),            # not a unit quaternion
])
def test_other_frames_and_broken_poses_are_refused_by_reason(msg, reason):
    with pytest.raises(Refused) as e:
        odometry_pose(msg, "odom")
    assert e.value.reason == reason and e.value.detail
