"""collision_monitor: the last gate before the wheels (a thin rclpy adapter around gate.py).

In: points (sensor_msgs/PointCloud2, the raw LiDAR; not perception's products; several
LiDARs: point_topics, each with its extrinsic, all of which must see), optionally
scan (sensor_msgs/LaserScan), cmd_vel_nav (Twist, the planner), cmd_vel_teleop (Twist, a
joystick), estop (std_msgs/Bool: True engages and latches), payload (std_msgs/Float32 kg:
the footprint grows with the overhang), speed_limit (nav2_msgs/SpeedLimit, or wm_msgs'
stand-in: a percentage of max_linear or absolute m/s on navigation, 0 = none; the fleet
client's while Redis is unreachable, or Nav2's speed filter). With a speed-zone layer: odom
(nav_msgs/Odometry) and map->odom from tf2 where it is installed, else localization_pose
(PoseWithCovarianceStamped in map), for the robot's map position (wm_common.ros.localization:
a parked robot stays localised).
Services: pause (std_srvs/SetBool), resume (std_srvs/Trigger: releases a latched e-stop).
Out: cmd_vel (Twist or TwistStamped), safety_state (wm_msgs/SafetyState), safety_zones
(safety_zones/{footprint,stop,slowdown}: geometry_msgs/PolygonStamped, for RViz), /diagnostics
(rejection counters, `action.<action>` and `escapes`: each escape from the stop zone started,
with a throttled warning in the log).

When it publishes: on every navigation/teleop command of the selected source; on every cloud
when nothing drives or an obstacle appeared (the base does not wait for the planner); and from
a timer at `rate` while nothing drives, so zero goes out continuously when the planner is
silent. Time is the node clock (sim time in simulation): in lockstep simulation the world
stops with the clock, and so does this node; a separate wall-clock check reports a stalled
clock in diagnostics.

Blindness: each LiDAR's clouds are checked for returns (wm_perception.blindness, as perception
does, but on the gate's own input): fresh clouds with (almost) no returns for blind_time hold
the robot ("blind", braked at decel_linear) with /diagnostics ERROR until returns come back;
dark azimuth sectors are walled off at blind_sector_range, so the zones see an obstacle there.

NOT a certified safety function: under ISO 3691-4 that remains the safety-rated scanner
fields and the safety PLC. This node is the model-free software layer in front of them.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Tuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point32, PolygonStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.logging import LoggingSeverity
from sensor_msgs.msg import LaserScan, PointCloud2
from std_msgs.msg import Bool, Float32
from std_srvs.srv import SetBool, Trigger

from wm_common.map_io import MapError
from wm_common.ros import lifecycle
from wm_common.ros.convert import Refused, odometry_pose, sec_to_stamp, stamp_to_sec
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.localization import MapToOdom, resolve_use_tf
from wm_common.ros.nav2 import SpeedLimit
from wm_common.ros.params import declare_params, read_params
from wm_common.ros.qos import CMD_VEL_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_msgs.msg import SafetyState
from wm_perception.blindness import ReturnMonitor
from wm_perception.pointcloud import CloudError, decode_points
from wm_safety.configure import build_gate
from wm_safety.gate import GateOutput, SafetyGate
from wm_safety.mux import NAV, TELEOP
from wm_safety.params import SAFETY_PARAMS
from wm_safety.speed_zones import external_limit
from wm_safety.zones import Zones

ABSURD_SPEED = 20.0  # |v| or |w| above this in a command is a corrupt message, not a wish


def sensor_points_to_base(xyz: np.ndarray, extrinsic, z_min: float, z_max: float
                          ) -> np.ndarray:
    """(M, 3) sensor-frame points -> (K, 2) base_link xy of those within [z_min, z_max]."""
    x, y, z, yaw = extrinsic
    c, s = math.cos(yaw), math.sin(yaw)
    zb = xyz[:, 2] + z
    keep = (zb >= z_min) & (zb <= z_max)
    p = xyz[keep]
    return np.stack([c * p[:, 0] - s * p[:, 1] + x, s * p[:, 0] + c * p[:, 1] + y], axis=1)


class CollisionMonitorNode(lifecycle.ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("collision_monitor", **kwargs)
        declare_params(self, SAFETY_PARAMS)
        self.gate: Optional[SafetyGate] = None

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state):
        p = self.p = read_params(self, SAFETY_PARAMS)
        try:
            self.gate, self.zone_spec = build_gate(p)
            self.topics = [str(t) for t in p["point_topics"]]
            ext = [float(v) for v in p["sensor_extrinsic"]]
            if len(ext) != 4 * len(self.topics) or not all(math.isfinite(v) for v in ext):
                raise ValueError("sensor_extrinsic must be 4 finite numbers [x, y, z, yaw] per "
                                 "point_topics entry (%d)" % len(self.topics))
            self.extrinsics = {t: ext[4 * i:4 * i + 4] for i, t in enumerate(self.topics)}
            self.extrinsic = self.extrinsics[self.topics[0]]   # the 2D scan's mount
            self.returns = {t: ReturnMonitor.from_params(p) for t in self.topics}
            use_tf = resolve_use_tf(p["use_tf"])
        except (ValueError, MapError) as e:
            self.get_logger().error("configure failed: %s" % e)
            return lifecycle.FAILURE
        self.diag = DiagnosticsReporter(self, "collision monitor")
        self.payload_kg = -1.0
        self.last_cloud_t = {}  # sensor -> newest stamp
        self.last_output_t = -math.inf
        self.last_action = ""
        self.last_ros_now = None
        self.last_ros_wall = time.monotonic()
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.cmd_pub = self.create_lifecycle_publisher(cmd_type, "cmd_vel", CMD_VEL_QOS)
        self.state_pub = self.create_lifecycle_publisher(SafetyState, "safety_state",
                                                         STATUS_QOS)
        self.zone_pubs = {name: self.create_lifecycle_publisher(
            PolygonStamped, "safety_zones/" + name, STATUS_QOS)
            for name in ("footprint", "stop", "slowdown")}
        self.subs = [
            self.create_subscription(PointCloud2, topic,
                                     lambda m, topic=topic: self._on_cloud(topic, m), SENSOR_QOS)
            for topic in self.topics]
        self.subs += [
            self.create_subscription(Twist, "cmd_vel_nav",
                                     lambda m: self._on_command(NAV, m), CMD_VEL_QOS),
            self.create_subscription(Twist, "cmd_vel_teleop",
                                     lambda m: self._on_command(TELEOP, m), CMD_VEL_QOS),
            self.create_subscription(Bool, "estop", self._on_estop, STATUS_QOS),
            self.create_subscription(Float32, "payload", self._on_payload, MAP_QOS),
            self.create_subscription(SpeedLimit, "speed_limit", self._on_speed_limit,
                                     STATUS_QOS),
        ]
        # the robot's map position: only the speed-zone layer needs it
        self.localization: Optional[MapToOdom] = None
        if self.gate.speed_zones is not None:
            self.localization = MapToOdom(
                self, p["map_frame"], p["odom_frame"], use_tf, self.diag,
                max_travel=p["localization_max_travel"], max_turn=p["localization_max_turn"],
                odom_timeout=p["odom_timeout"])
            self.subs.append(self.create_subscription(Odometry, "odom", self._on_odom,
                                                      SENSOR_QOS))
        if p["use_scan"]:
            self.subs.append(self.create_subscription(LaserScan, "scan", self._on_scan,
                                                      SENSOR_QOS))
        self.srvs = [self.create_service(SetBool, "pause", self._on_pause),
                         self.create_service(Trigger, "resume", self._on_resume)]
        self.timer = self.create_timer(1.0 / p["rate"], self._on_timer)
        # wall-clock: notices a stalled /clock, which the node-clock timer cannot
        self.clock_check = self.create_timer(1.0, self._on_clock_check,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.zones_timer = self.create_timer(1.0, self._publish_zones)
        self.diag.set_value("speed_zones", p["speed_zones"] or "none")
        self.get_logger().info(
            "configured: stop/slowdown/approach zones around a %d-vertex footprint, "
            "nav timeout %.2f s, limits v [%.2f, %.2f] m/s a %.2f m/s^2, cmd_vel as %s%s" % (
                len(self.zone_spec["chassis"]), p["nav_timeout"], p["min_linear"],
                p["max_linear"], p["decel_linear"], cmd_type.__name__,
                ", speed zones %s (map->odom from %s)" % (
                    p["speed_zones"], self.localization.source)
                if self.localization is not None else ""))
        return lifecycle.SUCCESS

    def on_deactivate(self, state):
        # the base gets zero at once: a deactivated gate must not leave a command behind
        if self.gate is not None:
            self.gate.smoother.emergency_stop()
            self._publish_cmd(0.0, 0.0)
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for s in self.subs:
            self.destroy_subscription(s)
        for s in self.srvs:
            self.destroy_service(s)
        for t in (self.timer, self.clock_check, self.zones_timer):
            self.destroy_timer(t)
        if self.localization is not None:
            self.localization.destroy()
            self.localization = None
        self.gate = None
        return lifecycle.SUCCESS

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, reason: str, detail: str) -> None:
        self.diag.reject(reason, detail)

    def _cloud_stamp_ok(self, t: float, now: float, sensor: str = "points") -> bool:
        if t - now > self.p["max_future"]:
            self._reject("future_stamp", "cloud stamped %.3f s ahead" % (t - now))
            return False
        if now - t > self.p["points_timeout"]:
            self._reject("stale", "cloud is %.3f s old" % (now - t))
            return False
        last = self.last_cloud_t.get(sensor)
        if last is not None and t < last:
            self._reject("out_of_order", "%s stamp %.3f before %.3f" % (sensor, t, last))
            return False
        return True

    def _on_cloud(self, topic: str, msg: PointCloud2) -> None:
        if not self.active:
            return
        now, t = self._now(), stamp_to_sec(msg.header.stamp)
        if not self._cloud_stamp_ok(t, now, topic):
            return
        try:
            cloud = decode_points(msg.fields, msg.data, msg.width, msg.height, msg.point_step,
                                  msg.row_step, msg.is_bigendian,
                                  max_points=self.p["max_points"], allow_empty=True)
        except CloudError as e:
            return self._reject(e.reason, str(e))
        ext = self.extrinsics[topic]
        mon = self.returns[topic]
        xyz = cloud.xyz
        blind, why = mon.update_cloud(t, xyz, cloud.n_points)
        if blind:
            self.diag.count("blind_clouds")
            self.diag.set_level(DiagnosticStatus.ERROR, "LiDAR %s blind: %s" % (topic, why))
            self.get_logger().error("LiDAR %s blind: %s; holding the robot until returns "
                                    "come back" % (topic, why), throttle_duration_sec=2.0)
            return self._new_points(np.zeros((0, 2)), t, now, topic, blind=why)
        if mon.blind_sectors:
            p = self.p
            xyz = np.concatenate([xyz, mon.wall(p["blind_sector_range"], p["z_min"],
                                                p["z_max"], ext[2], 0.05)])
            self.diag.count("blind_sector_clouds")
            self.get_logger().warn("LiDAR %s partly blind, walled off at %.2f m: %s" % (
                topic, p["blind_sector_range"], mon.sectors_why()), throttle_duration_sec=2.0)
        xy = sensor_points_to_base(xyz, ext, self.p["z_min"], self.p["z_max"])
        self._new_points(xy, t, now, topic, dark=mon.dark_intervals(ext[3]))

    def _on_scan(self, msg: LaserScan) -> None:
        if not self.active:
            return
        now, t = self._now(), stamp_to_sec(msg.header.stamp)
        if not self._cloud_stamp_ok(t, now, "scan"):
            return
        r = np.asarray(msg.ranges, dtype=np.float64)
        if r.size > self.p["max_points"] or not math.isfinite(msg.angle_increment):
            return self._reject("bad_scan", "%d ranges, increment %r" % (
                r.size, msg.angle_increment))
        a = msg.angle_min + msg.angle_increment * np.arange(r.size)
        ok = np.isfinite(r) & (r >= msg.range_min) & (r <= msg.range_max)
        xyz = np.stack([r[ok] * np.cos(a[ok]), r[ok] * np.sin(a[ok]),
                        np.zeros(int(ok.sum()))], axis=1)
        self._new_points(sensor_points_to_base(xyz, self.extrinsic, -math.inf, math.inf),
                         t, now, "scan")

    def _new_points(self, xy: np.ndarray, t: float, now: float, sensor: str = "points",
                    blind: str = "", dark=()) -> None:
        self.gate.set_points(xy, t, sensor, blind, dark)
        self.last_cloud_t[sensor] = t
        self.diag.count("clouds")
        if blind or self.gate.needs_update(now):
            self._output(now)

    def _on_command(self, source: str, msg: Twist) -> None:
        if not self.active:
            return
        v, w = msg.linear.x, msg.angular.z
        if not (math.isfinite(v) and math.isfinite(w)) or max(abs(v), abs(w)) > ABSURD_SPEED:
            # treated as silence from that source: it times out and the robot stops
            return self._reject("%s_invalid" % source, "cmd (%r, %r)" % (v, w))
        now = self._now()
        self.gate.mux.command(source, v, w, now)
        if self.gate.mux.select(now).source == source:
            self._output(now)

    def _on_estop(self, msg: Bool) -> None:
        if not self.active:
            return
        if msg.data and not self.gate.mux.estop:
            self.get_logger().error("E-STOP engaged: zero at once; call resume to release")
        self.gate.mux.estop_input(bool(msg.data), self._now())
        if msg.data:
            self._output(self._now())

    def _on_pause(self, request, response):
        if self.gate is None or not self.active:
            response.success, response.message = False, "collision monitor is not active"
            return response
        self.gate.mux.paused = bool(request.data)
        self.get_logger().info("paused by service" if request.data else "pause released")
        response.success = True
        response.message = "paused" if request.data else "running"
        self._output(self._now())
        return response

    def _on_resume(self, request, response):
        if self.gate is None or not self.active:
            response.success, response.message = False, "collision monitor is not active"
            return response
        ok, why = self.gate.mux.resume(self._now())
        response.success, response.message = ok, why
        if ok:
            self.get_logger().info("resume: %s" % why)
        else:  # rclpy refuses one log call site with two severities: a call each
            self.get_logger().log("resume refused: %s" % why, LoggingSeverity.WARN)
        return response

    def _on_payload(self, msg: Float32) -> None:
        if self.gate is None:
            return
        kg = float(msg.data)
        if not math.isfinite(kg) or kg < 0.0 or kg > 10000.0:
            # unknown payload: Zones.build assumes the largest overhang
            self._reject("payload_invalid", "payload %r kg" % kg)
            kg = -1.0
        self.payload_kg = kg
        self.gate.set_zones(Zones.build(payload_kg=kg, **self.zone_spec))
        self._publish_zones()

    def _on_speed_limit(self, msg: SpeedLimit) -> None:
        """A limit on navigation's |v| (Nav2's SpeedLimit: a percentage of max_linear, or
        m/s); 0 lifts it. An invalid one (NaN, negative, above 100 %) is rejected and the
        limit in force stays."""
        if self.gate is None:
            return
        try:
            limit = external_limit(msg.speed_limit, msg.percentage, self.p["max_linear"])
        except ValueError as e:
            return self._reject("speed_limit_invalid", str(e))
        self.gate.external_limit = limit
        self.diag.set_value("external_speed_limit",
                            "%.2f m/s" % limit if math.isfinite(limit) else "none")

    def _on_odom(self, msg: Odometry) -> None:
        try:
            t, pose = odometry_pose(msg, self.p["odom_frame"])
        except Refused as e:
            return self._reject(e.reason, e.detail)
        if not self.localization.on_odom(t, pose):
            self._reject("odom_out_of_order", "stamp %.3f older than the latest" % t)

    def _position(self, now: float) -> Optional[Tuple[float, float]]:
        """The robot in the speed zones' map frame, None when not localised (the layer's
        slowest limit applies)."""
        if self.localization is None:
            return None
        pose = self.localization.map_pose(now)
        return None if pose is None else (pose.x, pose.y)

    def _on_timer(self) -> None:
        if not self.active or self.gate is None:
            return
        now = self._now()
        if now - self.last_output_t < 0.9 / self.p["rate"]:
            return
        sel = self.gate.mux.select(now)
        if sel.source not in (NAV, TELEOP) or self.gate.blind(now):
            self._output(now)

    def _on_clock_check(self) -> None:
        now = self._now()
        wall = time.monotonic()
        if now != self.last_ros_now:
            self.last_ros_now, self.last_ros_wall = now, wall
        elif wall - self.last_ros_wall > 2.0 and self.active:
            self.diag.set_level(DiagnosticStatus.WARN, "clock stalled for %.0f s (sim time?)"
                                % (wall - self.last_ros_wall))
            self.diag.count("clock_stall_checks")

    # ---------------------------------------------------------------- outputs
    def _output(self, now: float) -> None:
        out = self.gate.update(now, self._position(now))
        # stamped with the time the smoother stepped to, so the steps can be checked
        self._publish_cmd(*out.cmd, stamp=sec_to_stamp(now))
        self.last_output_t = now
        self._publish_state(out, sec_to_stamp(now))
        if out.action != self.last_action:
            self._report(out)
            self.last_action = out.action

    def _report(self, out: GateOutput) -> None:
        self.diag.count("action." + out.action)
        self.diag.set_value("action", out.action)
        self.diag.set_value("source", out.source)
        if out.action == "blind":
            why = self.gate.blind_reason(self.last_output_t) or self.gate.dark_in_the_way(
                *out.requested)
            self.diag.set_level(DiagnosticStatus.ERROR, "robot held: blind (%s)" % why)
            self.get_logger().log("holding the robot: cannot see (%s)" % why,
                                  LoggingSeverity.WARN, throttle_duration_sec=1.0)
        elif out.action in ("stop", "estop"):
            self.diag.set_level(DiagnosticStatus.WARN if out.action != "estop"
                                else DiagnosticStatus.ERROR, "robot held: " + out.action)
            self.get_logger().log("holding the robot: %s (source %s, %d points in the stop "
                                  "zone)" % (out.action, out.source, out.points_stop),
                                  LoggingSeverity.WARN, throttle_duration_sec=1.0)
        elif out.action == "escape":
            # a stop being passed by a creep that increases clearance (gate.py): counted,
            # logged, and a warning while it lasts
            self.diag.count("escapes")
            self.diag.set_level(DiagnosticStatus.WARN, "escape: creeping out of the stop zone")
            self.get_logger().log(
                "escape: %s command (%.3f m/s, %.3f rad/s) passes the stop as a creep at "
                "%.0f %% (%d points in the stop zone, clearance %.3f m)" % (
                    out.source, out.requested[0], out.requested[1], 100.0 * out.scale,
                    out.points_stop, out.clearance if out.clearance is not None else -1.0),
                LoggingSeverity.WARN, throttle_duration_sec=1.0)
        else:
            self.diag.set_level(DiagnosticStatus.OK, out.action)

    def _publish_cmd(self, v: float, w: float, stamp=None) -> None:
        if self.p["cmd_vel_stamped"]:
            msg = TwistStamped()
            msg.header.stamp = stamp or self.get_clock().now().to_msg()
            msg.header.frame_id = self.p["base_frame"]
            tw = msg.twist
        else:
            msg = tw = Twist()
        tw.linear.x, tw.angular.z = float(v), float(w)
        self.cmd_pub.publish(msg)

    def _publish_state(self, out: GateOutput, stamp) -> None:
        m = SafetyState()
        m.header.stamp = stamp
        m.header.frame_id = self.p["base_frame"]
        m.source, m.action = out.source, out.action
        m.scale = float(out.scale)
        m.speed_limit = float(out.speed_limit)
        m.points_stop, m.points_slowdown = out.points_stop, out.points_slowdown
        m.time_to_collision = -1.0 if out.time_to_collision is None \
            else float(out.time_to_collision)
        m.estop, m.paused = self.gate.mux.estop, self.gate.mux.paused
        m.requested.linear.x, m.requested.angular.z = out.requested
        m.output.linear.x, m.output.angular.z = out.cmd
        self.state_pub.publish(m)

    def _publish_zones(self) -> None:
        if self.gate is None or not self.active:
            return
        z = self.gate.zones
        for name, poly in (("footprint", z.footprint), ("stop", z.stop),
                           ("slowdown", z.slowdown)):
            m = PolygonStamped()
            m.header.stamp = self.get_clock().now().to_msg()
            m.header.frame_id = self.p["base_frame"]
            m.polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in poly]
            self.zone_pubs[name].publish(m)


def main(args=None):
    return lifecycle.run(CollisionMonitorNode, args=args)


if __name__ == "__main__":
    main()
