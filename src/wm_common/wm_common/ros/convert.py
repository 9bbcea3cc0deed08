"""Message <-> plain-data conversions shared by the nodes (validation included: a message from
the network is untrusted input)."""
from __future__ import annotations

import array
import math
from typing import Tuple

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path

from wm_common.geometry import Pose2D, quaternion_from_yaw, yaw_from_quaternion
from wm_common.grid import Grid2D


def stamp_to_sec(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float) -> Time:
    sec = int(math.floor(t))
    return Time(sec=sec, nanosec=min(int(round((t - sec) * 1e9)), 999999999))


def pose_to_pose2d(pose: Pose) -> Pose2D:
    """Planar pose of a geometry_msgs/Pose; ValueError if it is not finite or not a rotation."""
    p, q = pose.position, pose.orientation
    vals = (p.x, p.y, q.x, q.y, q.z, q.w)
    if not all(math.isfinite(v) for v in vals):
        raise ValueError("pose has non-finite values")
    if abs(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w - 1.0) > 0.1:
        raise ValueError("pose orientation is not a unit quaternion")
    return Pose2D(float(p.x), float(p.y), yaw_from_quaternion(q.x, q.y, q.z, q.w))


class Refused(ValueError):
    """A message refused: `reason` names the diagnostics counter, `detail` the log line."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def odometry_pose(msg: Odometry, odom_frame: str) -> Tuple[float, Pose2D]:
    """(stamp in s, planar pose) of an Odometry in `odom_frame` (an empty frame_id is taken
    to be it); Refused 'odom_frame' for another frame, 'odom_invalid' for a pose that is not
    finite or not a rotation."""
    if msg.header.frame_id and msg.header.frame_id != odom_frame:
        raise Refused("odom_frame", "odom in frame %r, expected %r" % (msg.header.frame_id,
                                                                       odom_frame))
    try:
        pose = pose_to_pose2d(msg.pose.pose)
    except ValueError as e:
        raise Refused("odom_invalid", str(e)) from None
    return stamp_to_sec(msg.header.stamp), pose


def pose2d_to_pose(p: Pose2D, z: float = 0.0) -> Pose:
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = float(p.x), float(p.y), float(z)
    (msg.orientation.x, msg.orientation.y,
     msg.orientation.z, msg.orientation.w) = quaternion_from_yaw(float(p.yaw))
    return msg


def transform_stamped(parent: str, child: str, p: Pose2D, stamp, z: float = 0.0
                      ) -> TransformStamped:
    """geometry_msgs/TransformStamped parent->child of a planar pose (child's pose in parent)
    raised by z, for tf2_msgs/TFMessage."""
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x, t.transform.translation.y = float(p.x), float(p.y)
    t.transform.translation.z = float(z)
    q = quaternion_from_yaw(p.yaw)
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return t


def grid_to_distance_field(grid: Grid2D, msg) -> None:
    """Fill a wm_msgs/DistanceField (header left to the caller)."""
    msg.resolution = float(grid.resolution)
    msg.origin_x = float(grid.origin_x)
    msg.origin_y = float(grid.origin_y)
    msg.height, msg.width = int(grid.height), int(grid.width)
    msg.max_distance = float(grid.outside)
    msg.distances = np.ascontiguousarray(grid.data, dtype=np.float32).ravel()
    unknown = getattr(grid, "unknown", None)
    msg.unknown = array.array("B") if unknown is None else array.array(
        "B", np.ascontiguousarray(unknown, dtype=np.uint8).tobytes())


def distance_field_to_grid(msg) -> Grid2D:
    """Grid2D of a wm_msgs/DistanceField; ValueError on an inconsistent message."""
    w, h = int(msg.width), int(msg.height)
    data = np.asarray(msg.distances, dtype=np.float32)
    if w < 2 or h < 2 or data.size != w * h:
        raise ValueError("distance field size %d does not match %dx%d" % (data.size, w, h))
    if not (math.isfinite(msg.origin_x) and math.isfinite(msg.origin_y)
            and math.isfinite(msg.max_distance)):
        raise ValueError("distance field origin or max_distance is not finite")
    if not np.all(np.isfinite(data)):
        raise ValueError("distance field has non-finite distances")
    unknown = np.frombuffer(memoryview(msg.unknown).tobytes(), dtype=np.uint8)
    if unknown.size and unknown.size != w * h:
        raise ValueError("distance field unknown mask size %d does not match %dx%d" % (
            unknown.size, w, h))
    return Grid2D(msg.origin_x, msg.origin_y, msg.resolution, data.reshape(h, w),
                  outside=float(msg.max_distance), frame_id=msg.header.frame_id,
                  unknown=unknown.reshape(h, w) != 0 if unknown.size else None)


def trajectory_to_path(traj: np.ndarray, frame_id: str, t0: float, dt: float) -> Path:
    """nav_msgs/Path of an (N, 3) [x, y, yaw] trajectory, one stamp per point."""
    path = Path()
    path.header.frame_id = frame_id
    path.header.stamp = sec_to_stamp(t0)
    poses = []
    for i, (x, y, yaw) in enumerate(np.asarray(traj, dtype=np.float64)):
        ps = PoseStamped()
        ps.header.frame_id = frame_id
        ps.header.stamp = sec_to_stamp(t0 + i * dt)
        ps.pose = pose2d_to_pose(Pose2D(x, y, yaw))
        poses.append(ps)
    path.poses = poses
    return path
