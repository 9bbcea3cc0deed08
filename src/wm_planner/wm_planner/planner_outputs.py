"""The planner node's publishers and the messages it builds from a control cycle.

cmd_vel (geometry_msgs/Twist, or TwistStamped with `cmd_vel_stamped`), local_plan
(nav_msgs/Path: the MPC's predicted trajectory, or the robot's pose held over the horizon
while it turns, recovers, waits or stops), plan_status (wm_msgs/PlanStatus), markers
(visualization_msgs/MarkerArray: sampled rollouts) and global_plan (nav_msgs/Path: the
route), all lifecycle publishers of the node (wm_planner.planner_node).
"""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Path
from visualization_msgs.msg import Marker, MarkerArray

from wm_common.ros.convert import sec_to_stamp, trajectory_to_path
from wm_common.ros.qos import CMD_VEL_QOS, STATUS_QOS
from wm_msgs.msg import PlanStatus
from wm_planner import controller as ctl

# A cycle's status (wm_planner.controller) -> PlanStatus.status
STATUS_CODES = {ctl.IDLE: PlanStatus.STATUS_IDLE, ctl.OK: PlanStatus.STATUS_OK,
                ctl.GOAL_REACHED: PlanStatus.STATUS_GOAL_REACHED,
                ctl.FAILED: PlanStatus.STATUS_FAILED,
                ctl.RECOVERING: PlanStatus.STATUS_RECOVERING,
                ctl.WAITING: PlanStatus.STATUS_WAITING, ctl.ABORTED: PlanStatus.STATUS_ABORTED,
                ctl.STALE: PlanStatus.STATUS_STALE_INPUTS,
                ctl.NO_TRANSFORM: PlanStatus.STATUS_NO_TRANSFORM}
MARKER_EVERY = 5   # sampled rollouts are drawn every this many cycles


class PlannerOutputs:
    """Publishes for `node` (a PlannerNode, configured): created in on_configure, destroyed in
    on_cleanup. Remembers the last command (`last_cmd_t`, node-clock seconds; `stopped`)."""

    def __init__(self, node):
        self.node = node
        p = node.p
        self.cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.cmd_pub = node.create_lifecycle_publisher(self.cmd_type, "cmd_vel", CMD_VEL_QOS)
        self.plan_pub = node.create_lifecycle_publisher(Path, "local_plan", STATUS_QOS)
        self.status_pub = node.create_lifecycle_publisher(PlanStatus, "plan_status", STATUS_QOS)
        self.marker_pub = node.create_lifecycle_publisher(MarkerArray, "markers", STATUS_QOS)
        self.route_pub = node.create_lifecycle_publisher(Path, "global_plan", STATUS_QOS)
        self.last_cmd_t = None
        self.stopped = True

    def destroy(self) -> None:
        for pub in (self.cmd_pub, self.plan_pub, self.status_pub, self.marker_pub,
                    self.route_pub):
            self.node.destroy_lifecycle_publisher(pub)

    def command(self, v: float, w: float, t: float) -> None:
        """Publish (v, w) on cmd_vel as it is (callers pass the command limiter's output and
        the time it stepped to, `t`: a TwistStamped carries that time, so consecutive
        stamps show the steps the limiter allowed, not when a loaded machine got round to
        publishing them)."""
        p = self.node.p
        if p["cmd_vel_stamped"]:
            msg = TwistStamped()
            msg.header.stamp = sec_to_stamp(t)
            msg.header.frame_id = p["base_frame"]
            tw = msg.twist
        else:
            msg = tw = Twist()
        tw.linear.x, tw.angular.z = v, w
        self.cmd_pub.publish(msg)
        self.last_cmd_t = self.node.now()
        self.stopped = v == 0.0 and w == 0.0

    def status_msg(self, status: int, input_stamp, stamp=None) -> PlanStatus:
        """A PlanStatus stamped now (or at `stamp`, a rclpy Time) in the odom frame."""
        p = self.node.p
        msg = PlanStatus()
        msg.header.stamp = (stamp or self.node.get_clock().now()).to_msg()
        msg.header.frame_id = p["odom_frame"]
        msg.status = status
        msg.solver = p["solver"]
        if input_stamp is not None:
            msg.input_stamp = input_stamp
        return msg

    def failed(self, input_stamp) -> None:
        """plan_status of a cycle whose planner raised."""
        self.status_pub.publish(self.status_msg(PlanStatus.STATUS_FAILED, input_stamp))

    def cycle(self, out: ctl.CycleOutput, input_stamp, here) -> None:
        """local_plan and plan_status of a cycle: the solve's plan, or (turning, recovering,
        waiting, stopping) the robot's odom pose `here` held over the horizon, which the fleet
        shares as its intended path (None: no local_plan)."""
        status = STATUS_CODES[out.status]
        if out.result is not None and out.status in (ctl.OK, ctl.FAILED):
            return self._plan(out, status, input_stamp)
        p = self.node.p
        stamp = self.node.get_clock().now()
        if here is not None:
            held = np.array([[here.x, here.y, here.yaw]] * (p["horizon"] + 1))
            self.plan_pub.publish(trajectory_to_path(
                held, p["odom_frame"], stamp.nanoseconds * 1e-9, p["dt"]))
        msg = self.status_msg(status, input_stamp, stamp)
        msg.behavior = out.behavior
        msg.recoveries = int(out.recoveries)
        if math.isfinite(out.distance_remaining):
            msg.distance_to_goal = float(out.distance_remaining)
        self.status_pub.publish(msg)

    def _plan(self, out: ctl.CycleOutput, status: int, input_stamp) -> None:
        node, p, result = self.node, self.node.p, out.result
        stamp = node.get_clock().now()
        path = trajectory_to_path(result.trajectory, p["odom_frame"],
                                  stamp.nanoseconds * 1e-9, p["dt"])
        self.plan_pub.publish(path)
        msg = self.status_msg(status, input_stamp, stamp)
        msg.cost = float(result.cost)
        msg.iterations = int(result.iterations)
        msg.num_samples = int(p["num_samples"])
        msg.solve_time_ms = float(result.solve_time_ms)
        msg.distance_to_goal = float(out.distance_remaining)
        msg.behavior = out.behavior
        msg.recoveries = int(out.recoveries)
        msg.predicted_trajectory = path
        self.status_pub.publish(msg)
        node.diag.set_value("solve_time_ms", "%.2f" % result.solve_time_ms)
        if p["sampled_trajectories_shown"] > 0 and node.cycle % MARKER_EVERY == 0:
            self.marker_pub.publish(self.markers(result, stamp.to_msg()))

    def markers(self, result, stamp) -> MarkerArray:
        """The first sampled_trajectories_shown sampled rollouts as one LINE_LIST."""
        p = self.node.p
        m = Marker()
        m.header.frame_id = p["odom_frame"]
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = "sampled", 0, Marker.LINE_LIST, Marker.ADD
        m.scale.x = 0.01
        m.color.r, m.color.g, m.color.b, m.color.a = 0.2, 0.6, 1.0, 0.4
        m.pose.orientation.w = 1.0
        pts = []
        for traj in list(result.sampled_trajectories)[: p["sampled_trajectories_shown"]]:
            for a, b in zip(traj[:-1], traj[1:]):
                pts.append(Point(x=float(a[0]), y=float(a[1])))
                pts.append(Point(x=float(b[0]), y=float(b[1])))
        m.points = pts
        return MarkerArray(markers=[m])

    def route(self, xy, frame: str) -> None:
        """global_plan: the route's points (N, 2) in `frame`, unoriented."""
        msg = Path()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame
        for x, y in np.asarray(xy):
            ps = PoseStamped()
            ps.header = msg.header
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            ps.pose.orientation.w = 1.0
            msg.poses.append(ps)
        self.route_pub.publish(msg)
