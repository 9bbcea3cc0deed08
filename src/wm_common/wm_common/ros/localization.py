"""Where the robot is in the map (map->odom): one home for every node that needs it.

Every node uses tf2 when present, localization included: AMCL and slam_toolbox publish
map->odom on tf continuously, so where tf2_ros is importable (`use_tf` auto or tf) `MapToOdom`
looks it up there. Where it is not (the PyPI install these tests run on) map->odom is derived
from the localizer's pose topic (`localization_pose`, PoseWithCovarianceStamped in map) and the
node's odometry by wm_common.localization.MapToOdomEstimate, the plain class with the rule of
when it holds.

    loc = MapToOdom(node, "map", "odom", resolve_use_tf(p["use_tf"]), diag,
                    max_travel=p["localization_max_travel"],
                    max_turn=p["localization_max_turn"], odom_timeout=p["odom_timeout"])
    loc.on_odom(t, pose)        # from the node's own odometry callback, after its checks
    m2o = loc.lookup(now)       # map->odom, or None (loc.reason says why)
    pose = loc.map_pose(now)    # the robot (base) in map, or None
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.time import Time

from wm_common.geometry import Pose2D, compose, yaw_from_quaternion
from wm_common.localization import MapToOdomEstimate
from wm_common.ros.convert import pose_to_pose2d, stamp_to_sec
from wm_common.ros.qos import STATUS_QOS

try:  # tf2 on robots with a full ROS 2 install; not installable from PyPI here
    import tf2_ros
    HAVE_TF2 = True
except ImportError:  # pragma: no cover - depends on the install
    tf2_ros = None
    HAVE_TF2 = False

USE_TF_MODES = ("auto", "tf", "topic")


def resolve_use_tf(mode: str, have_tf2: bool = HAVE_TF2) -> bool:
    """The `use_tf` parameter ('auto': tf2 if importable, 'tf', 'topic') -> whether map->odom
    comes from tf2; ValueError (the node's configure fails) for another value or for 'tf'
    where tf2_ros is not importable."""
    if mode not in USE_TF_MODES:
        raise ValueError("use_tf must be auto, tf or topic")
    if mode == "tf" and not have_tf2:
        raise ValueError("use_tf=tf but tf2_ros is not importable")
    return mode == "tf" or (mode == "auto" and have_tf2)


class MapToOdom:
    """map->odom for a node: tf2's where `use_tf` (tf2_ros importable and chosen), else a
    `MapToOdomEstimate` fed from `localization_pose` (subscribed here) and the odometry the
    node passes to `on_odom`. Rejected inputs go to the node's DiagnosticsReporter.

    With tf2, map->odom is the localizer's latest as published (AMCL and slam_toolbox publish
    it continuously, parked or not; a static transform stamped 0 counts too); odometry is
    still needed for `map_pose`.
    """

    def __init__(self, node, map_frame: str, odom_frame: str, use_tf: bool, diag,
                 max_travel: float = 1.0, max_turn: float = 1.0, odom_timeout: float = 0.5,
                 topic: str = "localization_pose", qos=STATUS_QOS):
        if use_tf and not HAVE_TF2:
            raise ValueError("use_tf=tf but tf2_ros is not importable")
        self.node = node
        self.map_frame, self.odom_frame = map_frame, odom_frame
        self.use_tf = bool(use_tf)
        self.diag = diag
        self.estimate = MapToOdomEstimate(max_travel, max_turn, odom_timeout)
        self.reason = "not looked up yet"
        self._sub = None
        self.tf_buffer = self.tf_listener = None
        if self.use_tf:
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, node)
        else:
            self._sub = node.create_subscription(PoseWithCovarianceStamped, topic,
                                                 self.on_localization, qos)

    @property
    def source(self) -> str:
        """Where map->odom comes from, for the node's log line."""
        return "tf2" if self.use_tf else "localization_pose"

    def on_odom(self, stamp: float, pose: Pose2D) -> bool:
        """The node's odometry (odom->base, already checked by the node); False if older
        than the latest."""
        return self.estimate.on_odom(stamp, pose)

    def on_localization(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.map_frame:
            self.diag.reject("localization_frame", "pose in %r, expected %r" % (
                msg.header.frame_id, self.map_frame))
            return
        try:
            map_base = pose_to_pose2d(msg.pose.pose)
        except ValueError as e:
            self.diag.reject("localization_invalid", str(e))
            return
        rejected = self.estimate.on_localization(stamp_to_sec(msg.header.stamp), map_base)
        if rejected is not None:
            self.diag.reject(*rejected)

    def lookup(self, now: float) -> Optional[Pose2D]:
        """map->odom at node-clock time `now`, or None (`reason` says why)."""
        if self.use_tf:
            m2o, self.reason = self._from_tf()
        else:
            m2o, self.reason = self.estimate.state(now)
        self.diag.set_value("map_to_odom", self.reason or "ok (%s)" % self.source)
        return m2o

    def odom_stale(self, now: float) -> str:
        """Why the node's odometry cannot be used at `now` ('' when it can)."""
        return self.estimate.odom_stale(now)

    def map_pose(self, now: float) -> Optional[Pose2D]:
        """The robot in map (map->odom * the latest odom->base), or None: map->odom unknown
        or odometry not fresh (`reason` says which)."""
        m2o = self.lookup(now)
        if m2o is None:
            return None
        stale = self.odom_stale(now)
        if stale:
            self.reason = stale
            self.diag.set_value("map_to_odom", stale)
            return None
        return compose(m2o, self.estimate.latest_odom[1])

    def _from_tf(self) -> Tuple[Optional[Pose2D], str]:
        try:
            tf = self.tf_buffer.lookup_transform(self.map_frame, self.odom_frame, Time())
        except Exception as e:  # tf2 raises several lookup exceptions; all mean 'unknown'
            return None, "no %s->%s on tf (%s)" % (self.map_frame, self.odom_frame,
                                                   type(e).__name__)
        t, q = tf.transform.translation, tf.transform.rotation
        vals = (t.x, t.y, q.x, q.y, q.z, q.w)
        if not all(math.isfinite(v) for v in vals) or \
                abs(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w - 1.0) > 0.1:
            self.diag.reject("map_to_odom_invalid", "%s->%s on tf: %r" % (
                self.map_frame, self.odom_frame, vals))
            return None, "%s->%s on tf is not a valid transform" % (self.map_frame,
                                                                   self.odom_frame)
        return Pose2D(float(t.x), float(t.y), yaw_from_quaternion(q.x, q.y, q.z, q.w)), ""

    def destroy(self) -> None:
        """Drop the subscription or the tf listener (a node's cleanup)."""
        if self._sub is not None:
            self.node.destroy_subscription(self._sub)
            self._sub = None
        if self.tf_listener is not None:
            unregister = getattr(self.tf_listener, "unregister", None)
            if unregister is not None:
                unregister()
            self.tf_listener = None
