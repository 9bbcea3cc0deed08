"""fleet_client: shares this robot's state and intended path through Redis and hands the
neighbours' to the planner (a thin rclpy adapter around client.py).

In: odom (nav_msgs/Odometry), map->odom from tf2 where it is installed, else from
localization_pose (PoseWithCovarianceStamped in map; wm_common.ros.localization: a parked
robot stays localised), local_plan (nav_msgs/Path in odom, one stamp per pose: the planner's
predicted trajectory).
Out: fleet/neighbours (wm_msgs/FleetSnapshot in map: the planner's fleet critic),
fleet/markers (visualization_msgs/MarkerArray: the fleet in RViz), speed_limit
(nav2_msgs/SpeedLimit, or wm_msgs' stand-in, absolute m/s to the safety gate:
`stale_speed_limit` while the fleet link is down, 0 = none), /diagnostics (link state,
map->odom state, counters, rejected entries by reason).

Each cycle (at `rate`): write this robot's entry, read the neighbours within `radius`. When
Redis does not answer the robot keeps driving on its own sensing, slower; the client retries
with backoff and the link comes back without a restart.
"""
from __future__ import annotations

import math
import os
import time
from typing import List, Optional

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point, Point32, PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.logging import LoggingSeverity
from visualization_msgs.msg import Marker, MarkerArray

from wm_common.geometry import Pose2D, compose, polygon_from_flat
from wm_common.ros import lifecycle
from wm_common.ros.convert import (Refused, odometry_pose, pose2d_to_pose, sec_to_stamp,
                                   stamp_to_sec)
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.localization import MapToOdom, resolve_use_tf
from wm_common.ros.nav2 import SpeedLimit
from wm_common.ros.params import declare_params, read_params
from wm_common.ros.qos import SENSOR_QOS, STATUS_QOS
from wm_common.stamped_buffer import StampedBuffer
from wm_fleet import schema
from wm_fleet.client import FleetClient
from wm_fleet.connection import RedisConfig, connect, redacted
from wm_fleet.deadlock import DeadlockConfig, YieldArbiter, parse_places
from wm_fleet.params import FLEET_PARAMS
from wm_msgs.msg import FleetSnapshot, PlanStatus, RobotState


def redis_from_params(p: dict):
    """A redis-py client from the node's parameters (None: sharing is off)."""
    url = p["redis_url"] or os.environ.get("WM_REDIS_URL", "")
    if not url:
        return None, ""
    cfg = RedisConfig.from_params({
        "url": url, "username": p["username"], "password_file": p["password_file"],
        "password_env": p["password_env"], "tls_ca_file": p["tls_ca_file"],
        "tls_cert_file": p["tls_cert_file"], "tls_key_file": p["tls_key_file"],
        "sentinels": [s for s in p["sentinels"] if s], "sentinel_master": p["sentinel_master"],
        "cluster": p["cluster"]})
    # built on first use, inside the client's error handling (see FleetClient)
    return (lambda: connect(cfg)), redacted(url)


def entry_to_msg(e: schema.RobotEntry) -> RobotState:
    m = RobotState()
    m.header.stamp = sec_to_stamp(e.stamp)
    m.header.frame_id = e.frame
    m.robot_id = e.robot_id
    m.pose = pose2d_to_pose(Pose2D(*e.pose))
    m.velocity.linear.x, m.velocity.angular.z = e.velocity
    m.footprint.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in e.footprint]
    m.task_priority = e.priority
    for t, x, y in e.trajectory:
        ps = PoseStamped()
        ps.header.stamp = sec_to_stamp(t)
        ps.header.frame_id = e.frame
        ps.pose.position.x, ps.pose.position.y = x, y
        ps.pose.orientation.w = 1.0
        m.predicted_trajectory.append(ps)
    m.model_version = e.model
    return m


class FleetNode(lifecycle.ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("fleet_client", **kwargs)
        declare_params(self, FLEET_PARAMS)
        self.fleet: Optional[FleetClient] = None

    def on_configure(self, state):
        p = self.p = read_params(self, FLEET_PARAMS)
        self.robot_id = self.get_namespace().strip("/").split("/")[-1] or "robot"
        try:
            self.footprint = tuple((float(x), float(y))
                                   for x, y in polygon_from_flat(p["footprint"]))
            self.places = parse_places(p["passing_places"])
            self.deadlock = DeadlockConfig(
                time=p["deadlock_time"], radius=p["deadlock_radius"],
                timeout=p["yield_timeout"], progress_time=p["deadlock_progress_time"],
                progress_distance=p["deadlock_progress_distance"],
                release_hold=p["yield_release_hold"])
            client, where = redis_from_params(p)
            if client is not None:
                self.fleet = FleetClient(client, p["fleet"], self.robot_id, ttl=p["ttl"],
                                         frame=p["map_frame"], max_age=p["max_age"],
                                         time_tolerance=p["time_tolerance"])
            use_tf = resolve_use_tf(p["use_tf"])
        except (ValueError, OSError) as e:
            self.get_logger().error("configure failed: %s" % e)
            return lifecycle.FAILURE
        self.diag = DiagnosticsReporter(self, "fleet client")
        self.odom = StampedBuffer(maxlen=200)   # (Pose2D in odom, (v, w))
        self.localization = MapToOdom(
            self, p["map_frame"], p["odom_frame"], use_tf, self.diag,
            max_travel=p["localization_max_travel"], max_turn=p["localization_max_turn"],
            odom_timeout=p["odom_timeout"])
        self.plan: List = []
        self.link_was_up = None
        self.arbiter = YieldArbiter(self.robot_id, self.deadlock, self.places)
        self.goal_active_t = -math.inf
        self.distance_to_goal: Optional[float] = None   # the planner's, while not yielding
        self.subs = [
            self.create_subscription(PlanStatus, "plan_status", self._on_status, STATUS_QOS),
            self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS),
            self.create_subscription(Path, "local_plan", self._on_plan, STATUS_QOS),
        ]
        self.snap_pub = self.create_lifecycle_publisher(FleetSnapshot, "fleet/neighbours",
                                                        STATUS_QOS)
        self.marker_pub = self.create_lifecycle_publisher(MarkerArray, "fleet/markers",
                                                          STATUS_QOS)
        self.limit_pub = self.create_lifecycle_publisher(SpeedLimit, "speed_limit", STATUS_QOS)
        self.yield_pub = self.create_lifecycle_publisher(PoseStamped, "fleet/yield_goal",
                                                         STATUS_QOS)
        self.timer = self.create_timer(1.0 / p["rate"], self._cycle)
        self.get_logger().info(
            "configured: %s as %r in fleet %r, TTL %.1f s, radius %.0f m, map->odom from %s"
            % (where or "fleet sharing OFF (no redis_url, no WM_REDIS_URL)", self.robot_id,
               p["fleet"], p["ttl"], p["radius"], self.localization.source))
        return lifecycle.SUCCESS

    def on_cleanup(self, state):
        for s in self.subs:
            self.destroy_subscription(s)
        self.localization.destroy()
        self.destroy_timer(self.timer)
        return lifecycle.SUCCESS

    def destroy_node(self):
        if self.fleet is not None:
            self.fleet.remove()  # leave the fleet at once rather than after the TTL
        return super().destroy_node()

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_odom(self, msg: Odometry) -> None:
        try:
            t, pose = odometry_pose(msg, self.p["odom_frame"])
        except Refused as e:
            return self.diag.reject(e.reason, e.detail)
        v, w = msg.twist.twist.linear.x, msg.twist.twist.angular.z
        if not (math.isfinite(v) and math.isfinite(w)) or max(abs(v), abs(w)) > 20.0:
            return self.diag.reject("odom_invalid", "twist not finite or absurd")
        if self.odom.push(t, (pose, (float(v), float(w)))):
            self.localization.on_odom(t, pose)

    def _on_status(self, msg: PlanStatus) -> None:
        # planning toward a goal (including stale-input and failed cycles: still wanted)
        if msg.status not in (PlanStatus.STATUS_IDLE, PlanStatus.STATUS_GOAL_REACHED,
                              PlanStatus.STATUS_ABORTED):
            self.goal_active_t = self._now()
            self.distance_to_goal = float(msg.distance_to_goal)

    def _on_plan(self, msg: Path) -> None:
        if msg.header.frame_id != self.p["odom_frame"]:
            return self.diag.reject("plan_frame", msg.header.frame_id)
        pts = []
        for ps in msg.poses[:schema.MAX_TRAJECTORY]:
            x, y, t = ps.pose.position.x, ps.pose.position.y, stamp_to_sec(ps.header.stamp)
            if not (math.isfinite(x) and math.isfinite(y)) or (pts and t <= pts[-1][0]):
                return self.diag.reject("plan_invalid", "non-finite or unordered plan")
            pts.append((t, x, y))
        self.plan = pts

    # ---------------------------------------------------------------- cycle
    def _own_entry(self, now: float) -> Optional[schema.RobotEntry]:
        if self.odom.latest is None:
            self.diag.set_value("sharing", "waiting for odometry")
            return None
        m2o = self.localization.lookup(now)
        why = self.localization.reason if m2o is None else self.localization.odom_stale(now)
        if why:
            self.diag.set_value("sharing", "not localised (%s): nothing shared" % why)
            return None
        self.diag.set_value("sharing", "on")
        t, (pose_o, vel) = self.odom.latest
        pose = compose(m2o, pose_o)
        traj = []
        for tp, x, y in self.plan:
            if tp > t - 0.05:  # the part of the plan still ahead
                q = compose(m2o, Pose2D(x, y, 0.0))
                traj.append((tp, q.x, q.y))
        return schema.RobotEntry(self.robot_id, self.p["map_frame"], t, time.time(),
                                 (pose.x, pose.y, pose.yaw), vel, self.footprint,
                                 self.p["priority"], tuple(traj), self.p["model_version"])

    def _cycle(self) -> None:
        if not self.active:
            return
        now = self._now()
        limit = 0.0
        neighbours = []
        if self.fleet is not None:
            own = self._own_entry(now)
            if own is not None:
                self.fleet.publish(own)
                got = self.fleet.neighbours(own.pose[0], own.pose[1], self.p["radius"], now)
                neighbours = got or []
                if got is not None:
                    self._deadlocks(now, own, neighbours)
            if not self.fleet.up and self.fleet.down_since is not None:
                limit = self.p["stale_speed_limit"]
            if self.fleet.up or self.fleet.down_since is not None:  # once tried
                self._report_link()
        self.limit_pub.publish(self._speed_limit(now, limit))
        snap = FleetSnapshot()
        snap.header.stamp = sec_to_stamp(now)
        snap.header.frame_id = self.p["map_frame"]
        snap.robots = [entry_to_msg(e) for e in neighbours]
        self.snap_pub.publish(snap)
        self.marker_pub.publish(self._markers(neighbours, snap.header.stamp))

    @staticmethod
    def _speed_limit(now: float, limit: float) -> SpeedLimit:
        """Nav2's SpeedLimit in absolute form (m/s; 0 = none), as Nav2's speed filter sends
        it to the controller server."""
        msg = SpeedLimit()
        msg.header.stamp = sec_to_stamp(now)
        msg.percentage = False
        msg.speed_limit = float(limit)
        return msg

    # ---------------------------------------------------------------- deadlocks
    def _deadlocks(self, now: float, own: schema.RobotEntry, neighbours) -> None:
        goal_active = now - self.goal_active_t < 1.0
        action = self.arbiter.update(
            now, own, neighbours, goal_active, self.distance_to_goal,
            decide=lambda other, proposed: self.fleet.decide_yield(other, proposed))
        if action is None:
            return
        if action.kind == "release":
            self.get_logger().info("yield to %s over (%s): back to the goal" % (
                action.other, action.note))
            release = PoseStamped()
            release.header.stamp = sec_to_stamp(now)
            self.yield_pub.publish(release)   # empty frame_id: released
        elif action.kind == "deadlock":
            self.diag.count("deadlocks")
            if action.note == "no passing place on this side":
                self.get_logger().log("deadlock with %s: no passing place on this side"
                                      % action.other, LoggingSeverity.WARN,
                                      throttle_duration_sec=5.0)
            else:
                self.get_logger().info("deadlock with %s: %s" % (action.other, action.note),
                                       throttle_duration_sec=5.0)
        else:
            place = action.place
            self.diag.count("deadlocks")
            self.get_logger().info(
                "deadlock with %s at (%.2f, %.2f): yielding from (%.2f, %.2f), to the passing "
                "place (%.2f, %.2f)" % (action.other, action.other_at[0], action.other_at[1],
                                        own.pose[0], own.pose[1], place[0], place[1]))
            self.diag.count("yields")
            goal = PoseStamped()
            goal.header.stamp = sec_to_stamp(now)
            goal.header.frame_id = self.p["map_frame"]
            goal.pose = pose2d_to_pose(Pose2D(place[0], place[1], own.pose[2]))
            self.yield_pub.publish(goal)

    def _report_link(self) -> None:
        up = self.fleet.up
        for k, v in self.fleet.status().items():
            self.diag.set_value(k, v)
        if up != self.link_was_up:
            if up:
                self.get_logger().info("fleet link up")
                self.diag.set_level(DiagnosticStatus.OK, "fleet link up")
            else:
                self.get_logger().log("fleet link down (%s): neighbours stale, speed limited "
                                      "to %.2f m/s, retrying" % (self.fleet.last_error,
                                                                 self.p["stale_speed_limit"]),
                                      LoggingSeverity.WARN)
                self.diag.set_level(DiagnosticStatus.WARN, "fleet link down")
            self.link_was_up = up

    def _markers(self, neighbours, stamp) -> MarkerArray:
        out = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        out.markers.append(clear)
        for i, e in enumerate(neighbours):
            body = Marker()
            body.header.stamp, body.header.frame_id = stamp, e.frame
            body.ns, body.id, body.type = "fleet", 2 * i, Marker.CYLINDER
            body.pose = pose2d_to_pose(Pose2D(*e.pose))
            body.scale.x = body.scale.y = 2.0 * e.radius
            body.scale.z = 0.3
            body.color.r, body.color.g, body.color.b, body.color.a = 0.2, 0.5, 1.0, 0.6
            out.markers.append(body)
            path = Marker()
            path.header.stamp, path.header.frame_id = stamp, e.frame
            path.ns, path.id, path.type = "fleet", 2 * i + 1, Marker.LINE_STRIP
            path.pose.orientation.w = 1.0
            path.scale.x = 0.05
            path.color.r, path.color.g, path.color.b, path.color.a = 0.2, 0.5, 1.0, 1.0
            path.points = [Point(x=x, y=y, z=0.1) for _, x, y in e.trajectory]
            out.markers.append(path)
        return out


def main(args=None):
    return lifecycle.run(FleetNode, args=args)


if __name__ == "__main__":
    main()
