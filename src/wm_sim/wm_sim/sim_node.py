"""Simulator node: N differential-drive robots in a warehouse, as their drivers would appear.

Per robot, under /<robot_id>/: points (sensor_msgs/PointCloud2, Ouster OS1 48-byte layout,
organized, SensorDataQoS), odom (nav_msgs/Odometry from wheel encoders: it drifts when wheels
slip), localization_pose (PoseWithCovarianceStamped in map, an AMCL stand-in), ground_truth
(nav_msgs/Odometry in map: for evaluation and training labels only, never for the robot's
nodes), payload (std_msgs/Float32 kg, transient local, on start and on every change), and
cmd_vel in (Twist, or TwistStamped by parameter). TF (REP-105, Nav2's multi-robot convention:
namespaced tf topics, unprefixed frames) where tf2_msgs is installed and publish_tf is true:
/<robot>/tf carries odom->base_link from the wheel odometry every physics step and map->odom
from the localization (as AMCL does: map->base * inverse(odom->base) at each update, then
republished every step), /<robot>/tf_static base_link->lidar_link from lidar_mount.
Global: /map (OccupancyGrid, transient local), /clock (lockstep mode) and /sim/cycle
(std_msgs/String, JSON per control cycle: simulated time, wall-clock latency from each robot's
scan to its command, contacts).

Lockstep (default): the simulator owns /clock. Each control cycle it simulates one period,
publishes the scans, then waits until every robot has answered with a command (or a wall
timeout), so a slow machine slows simulated time instead of starving the planners, and the
run goes faster than real time when the nodes keep up. The physics sits behind
wm_sim.engine.Engine (MuJoCo, or the kinematic model).
"""
from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped, Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Float32, String

from wm_common.geometry import Pose2D, compose, inverse
from wm_common.point_layouts import OUSTER, pack_points
from wm_common.ros import lifecycle
from wm_common.ros.convert import pose2d_to_pose, sec_to_stamp, transform_stamped
from wm_common.ros.params import declare_params
from wm_common.ros.qos import (CMD_VEL_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS, TF_QOS,
                               TF_STATIC_QOS)
from wm_sim.dynamics import DiffDriveParams
from wm_sim.engine import KinematicEngine
from wm_sim.lidar import LIDAR_FAULTS, LidarSpec, lidar_fault
from wm_sim.localization import Localization
from wm_sim.odometry import WheelOdometry
from wm_sim.params import SIM_PARAMS
from wm_sim.scenario import RobotSpec, Scenario, load_scenario, load_world

try:  # tf2_msgs: on a full ROS 2 install; not on PyPI
    from tf2_msgs.msg import TFMessage
    HAVE_TF_MSGS = True
except ImportError:  # pragma: no cover - depends on the install
    HAVE_TF_MSGS = False

# Simulated time starts here rather than at 0: a zero stamp means "unset" to many ROS tools.
T0 = 1.0


def make_engine(kind: str, world, spawns, lidar: LidarSpec, payloads, seed: int,
                friction: float):
    if kind == "kinematic":
        return KinematicEngine(world, spawns, lidar=lidar, payloads=payloads, seed=seed)
    if kind == "mujoco":
        from wm_sim.mujoco_engine import MujocoEngine  # MuJoCo is imported only when used
        return MujocoEngine(world, spawns, lidar=lidar, payloads=payloads, seed=seed,
                            floor_friction=friction)
    raise ValueError("unknown engine %r (mujoco or kinematic)" % kind)


class SimRobot:
    """One robot's sensors (odometry, localization) and ROS endpoints."""

    def __init__(self, node, rid: str, p: dict, seed: int, sigma_xy: float, sigma_yaw: float,
                 correlation_time: float):
        self.id = rid
        dp = DiffDriveParams()
        self.odometry = WheelOdometry(dp.wheel_radius, dp.track)
        self.localization = Localization(rate_hz=p["localization_rate"], sigma_xy=sigma_xy,
                                         sigma_yaw=sigma_yaw, seed=seed + 1,
                                         correlation_time=correlation_time)
        self.cmd = (0.0, 0.0)
        self.cmd_t = -1e9          # simulated time of the last command
        self.answered = threading.Event()
        self.answer_wall = 0.0
        self.contact = False
        ns = "/" + rid
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.node = node
        self.sub = node.create_subscription(cmd_type, ns + "/cmd_vel", self._on_cmd, CMD_VEL_QOS)
        self.points_pub = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
        self.odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
        self.loc_pub = node.create_publisher(PoseWithCovarianceStamped,
                                             ns + "/localization_pose", STATUS_QOS)
        self.truth_pub = node.create_publisher(Odometry, ns + "/ground_truth", SENSOR_QOS)
        # What the robot carries [kg], latched: a fleet's task system knows it on a real robot;
        # the planner's world model uses it (topic `payload`).
        self.payload_pub = node.create_publisher(Float32, ns + "/payload", MAP_QOS)
        self.map_to_odom = None   # Pose2D, from the last localization update
        self.tf_pub = self.tf_static_pub = None
        if p["publish_tf"] and HAVE_TF_MSGS:
            self.tf_pub = node.create_publisher(TFMessage, ns + "/tf", TF_QOS)
            self.tf_static_pub = node.create_publisher(TFMessage, ns + "/tf_static",
                                                       TF_STATIC_QOS)
            x, y, z, yaw = p["lidar_mount"]
            self.tf_static_pub.publish(TFMessage(transforms=[transform_stamped(
                p["base_frame"], p["lidar_frame"], Pose2D(x, y, yaw),
                sec_to_stamp(T0), z)]))
        self.rejected = 0
        self.cmd_log = []

    def _on_cmd(self, msg) -> None:
        tw = msg.twist if isinstance(msg, TwistStamped) else msg
        v, w = tw.linear.x, tw.angular.z
        # the base's log of every command it got (in /sim/cycle), at the time it was issued
        # (TwistStamped) or received (Twist): what the fault drills check
        t = self.node.sim_time
        if isinstance(msg, TwistStamped) and (msg.header.stamp.sec or msg.header.stamp.nanosec):
            t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.cmd_log.append((round(t - T0, 4), v, w))
        if not (math.isfinite(v) and math.isfinite(w)):
            self.rejected += 1
            self.node.get_logger().log("%s: non-finite cmd_vel ignored" % self.id,
                                       LoggingSeverity.WARN, throttle_duration_sec=2.0)
            return
        self.cmd = (float(v), float(w))
        self.cmd_t = self.node.sim_time
        if not self.answered.is_set():
            self.answer_wall = time.monotonic()
            self.answered.set()


class SimulatorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("simulator", **kwargs)
        p = self.p = declare_params(self, SIM_PARAMS)
        self.scenario = self._scenario(p)
        self.world = self.scenario.load_world()
        spec = LidarSpec(rings=self.scenario.lidar_rings, columns=self.scenario.lidar_columns,
                         max_range=p["lidar_max_range"], mount=tuple(p["lidar_mount"]),
                         scan_rate_hz=1.0 / p["control_period"])
        spawns = {r.id: r.spawn for r in self.scenario.robots}
        payloads = {r.id: r.payload for r in self.scenario.robots}
        self.engine = make_engine(p["engine"], self.world, spawns, spec, payloads,
                                  self.scenario.seed, p["floor_friction"])
        self.robots = [SimRobot(self, r.id, p, self.scenario.seed + 17 * i,
                                self.scenario.localization_sigma_xy,
                                self.scenario.localization_sigma_yaw,
                                self.scenario.localization_correlation_time)
                       for i, r in enumerate(self.scenario.robots)]
        self.events = list(self.scenario.events)
        if p["publish_tf"] and not HAVE_TF_MSGS:
            self.get_logger().info("publish_tf: tf2_msgs is not installed, no TF published "
                                   "(odom and localization_pose carry the same)")
        self.sim_time = T0
        self.map_pub = self.create_publisher(OccupancyGrid, "/map", MAP_QOS)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if p["lockstep"] else None
        self.cycle_pub = self.create_publisher(String, "/sim/cycle", 50)
        self._publish_map()
        for r in self.robots:
            self._publish_payload(r.id)
        self._stop = threading.Event()
        self.drill_box = None
        self.drill_ops = []
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        self.get_logger().info("simulating %s (%s engine, %s) with %d robots: %s" % (
            self.scenario.world, p["engine"], "lockstep /clock" if p["lockstep"] else
            "wall clock", len(self.robots), ", ".join(r.id for r in self.robots)))

    @staticmethod
    def _scenario(p) -> Scenario:
        if p["scenario"]:
            return load_scenario(p["scenario"])
        world = load_world(p["world"])
        flat = list(p["spawn_poses"])
        n = len(p["robots"])
        if len(flat) >= 3 * n:
            spawns = [Pose2D(*flat[3 * i:3 * i + 3]) for i in range(n)]
        else:
            spawns = list(world.spawns.values())
        if len(spawns) < n:
            raise ValueError("world %s has %d spawn poses for %d robots" % (
                p["world"], len(spawns), n))
        robots = [RobotSpec(rid, spawns[i], p["payload_mass"]) for i, rid in
                  enumerate(p["robots"])]
        return Scenario("params", p["world"], robots, seed=p["seed"],
                        lidar_rings=p["lidar_rings"], lidar_columns=p["lidar_columns"])

    # ---------------------------------------------------------------- loop
    def _stamp(self):
        if self.p["lockstep"]:
            return sec_to_stamp(self.sim_time)
        return self.get_clock().now().to_msg()

    def _loop(self) -> None:
        try:
            self._wait_for_planners(60.0)
            period = self.p["control_period"]
            n_sub = max(1, int(round(period * self.p["physics_rate"])))
            h = period / n_sub
            wall0, sim0 = time.monotonic(), self.sim_time
            while not self._stop.is_set():
                if self.p["fault_pause"]:  # drill: the world and its clock stand still
                    time.sleep(0.01)
                    wall0, sim0 = time.monotonic(), self.sim_time
                    continue
                for r in self.robots:
                    r.contact = False
                for _ in range(n_sub):
                    self._physics_step(h)
                for r in self.robots:
                    r.answered.clear()
                wall_pub = time.monotonic()
                for r in self.robots:
                    self._publish_scan(r, self.engine.scan(r.id))
                latency = {}
                if self.p["lockstep"]:
                    deadline = wall_pub + self.p["lockstep_timeout"]
                    for r in self.robots:
                        if r.answered.wait(max(0.0, deadline - time.monotonic())):
                            latency[r.id] = (r.answer_wall - wall_pub) * 1e3
                self._publish_cycle(latency)
                rtf = self.p["max_real_time_factor"]
                if rtf > 0.0 or not self.p["lockstep"]:
                    rtf = rtf if rtf > 0.0 else 1.0
                    ahead = (self.sim_time - sim0) / rtf - (time.monotonic() - wall0)
                    if ahead > 0:
                        time.sleep(ahead)
        except Exception as e:  # keep the reason in the log: the runner reports it
            if not self._stop.is_set():
                self.get_logger().error("simulation loop failed: %r" % (e,))
                raise

    def _wait_for_planners(self, timeout: float) -> None:
        """Hold time still until every robot's planner publishes cmd_vel and its perception
        listens to the points (so the first cycles do not time out on nodes still starting)."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if not self.p["lockstep"] or (all(
                    r.sub.get_publisher_count() > 0 and r.points_pub.get_subscription_count() > 0
                    for r in self.robots) and (not self.p["wait_for_observer"]
                                               or self.cycle_pub.get_subscription_count() > 0)):
                return
            if self.clock_pub is not None:
                self.clock_pub.publish(Clock(clock=sec_to_stamp(self.sim_time)))
            time.sleep(0.05)
        self.get_logger().log("not every robot has a cmd_vel publisher; simulating anyway",
                              LoggingSeverity.WARN)

    def _physics_step(self, h: float) -> None:
        while self.drill_ops:
            self._drop_box(*self.drill_ops.pop(0))
        for r in self.robots:
            fresh = self.sim_time - r.cmd_t < self.p["cmd_timeout"]
            v, w = r.cmd if fresh else (0.0, 0.0)
            self.engine.set_command(r.id, v, w)
        self.engine.step(h)
        self.sim_time += h
        while self.events and self.events[0].t <= self.sim_time - T0:
            self._apply(self.events.pop(0))
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=sec_to_stamp(self.sim_time)))
        stamp = self._stamp()
        for r in self.robots:
            left, right = self.engine.wheel_angles(r.id)
            r.odometry.update(left, right, h)
            r.contact = r.contact or self.engine.in_contact(r.id)
            self._publish_odom(r, stamp)
            est = r.localization.update(self.sim_time, self.engine.pose(r.id))
            if est is not None:
                self._publish_localization(r, est, stamp)
                r.map_to_odom = compose(est.pose, inverse(r.odometry.pose))
            self._publish_tf(r, stamp)

    def _apply(self, ev) -> None:
        if ev.kind == "move_obstacle":
            self.engine.move_obstacle(ev.name, ev.pose)
        elif ev.kind == "add_obstacle":
            self.engine.add_obstacle(ev.box)
        elif ev.kind == "set_payload":
            self.engine.set_payload(ev.name, ev.mass)
            self._publish_payload(ev.name)
        self.get_logger().info("t=%.1f s: %s %s" % (self.sim_time - T0, ev.kind, ev.name))

    # ---------------------------------------------------------------- outputs
    def _publish_payload(self, robot_id: str) -> None:
        for r in self.robots:
            if r.id == robot_id:
                r.payload_pub.publish(Float32(data=float(self.engine.payload(robot_id))))

    def _publish_odom(self, r: SimRobot, stamp) -> None:
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = self.p["odom_frame"]
        msg.child_frame_id = self.p["base_frame"]
        msg.pose.pose = pose2d_to_pose(r.odometry.pose)
        msg.pose.covariance = r.odometry.pose_covariance
        v, w = r.odometry.twist
        if self.p["fault_odom"] == "nan":
            v, w = math.nan, math.nan
            msg.pose.pose.position.x = math.nan
        elif self.p["fault_odom"] == "absurd":
            v, w = 250.0, -90.0
            msg.pose.pose.position.x += 1e6
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v), float(w)
        msg.twist.covariance = r.odometry.twist_covariance
        r.odom_pub.publish(msg)
        truth = Odometry()
        truth.header.stamp = stamp
        truth.header.frame_id = self.p["map_frame"]
        truth.child_frame_id = self.p["base_frame"]
        truth.pose.pose = pose2d_to_pose(self.engine.pose(r.id))
        tv, tw = self.engine.body_velocity(r.id)
        truth.twist.twist.linear.x, truth.twist.twist.angular.z = float(tv), float(tw)
        r.truth_pub.publish(truth)

    def _publish_tf(self, r: SimRobot, stamp) -> None:
        if r.tf_pub is None:
            return
        p = self.p
        tfs = [transform_stamped(p["odom_frame"], p["base_frame"], r.odometry.pose, stamp)]
        if r.map_to_odom is not None:
            tfs.append(transform_stamped(p["map_frame"], p["odom_frame"], r.map_to_odom,
                                         stamp))
        r.tf_pub.publish(TFMessage(transforms=tfs))

    def _publish_localization(self, r: SimRobot, est, stamp) -> None:
        msg = PoseWithCovarianceStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.p["map_frame"]
        msg.pose.pose = pose2d_to_pose(est.pose)
        msg.pose.covariance = list(est.covariance)
        r.loc_pub.publish(msg)

    def _publish_scan(self, r: SimRobot, scan: dict) -> None:
        scan = lidar_fault(scan, self.p["fault_lidar"])
        rings, cols = scan["x"].shape
        columns = {k: np.ascontiguousarray(v).ravel() for k, v in scan.items()}
        columns["range"] = columns.pop("range_mm")
        msg = PointCloud2()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = self.p["lidar_frame"]
        msg.height, msg.width = rings, cols
        msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype,
                                 count=f.count) for f in OUSTER.fields]
        msg.is_bigendian = False
        msg.point_step = OUSTER.point_step
        msg.row_step = OUSTER.point_step * cols
        msg.data = pack_points(OUSTER, columns)
        msg.is_dense = False
        r.points_pub.publish(msg)

    def _publish_cycle(self, latency: dict) -> None:
        doc = {"t": round(self.sim_time - T0, 4), "wall": time.time(),
               "latency_ms": {k: round(v, 3) for k, v in latency.items()},
               "contact": {r.id: bool(r.contact) for r in self.robots},
               "payload": {r.id: self.engine.payload(r.id) for r in self.robots},
               "rejected_cmd_vel": {r.id: r.rejected for r in self.robots},
               "cmds": {}}
        for r in self.robots:  # the commands since the last cycle (list swap: no lock)
            r.cmd_log, log = [], r.cmd_log
            doc["cmds"][r.id] = log
        self.cycle_pub.publish(String(data=json.dumps(doc)))

    # ---------------------------------------------------------------- fault drills
    def _on_set_parameters(self, params):
        from rcl_interfaces.msg import SetParametersResult
        for prm in params:
            if prm.name == "fault_odom" and prm.value not in ("", "nan", "absurd"):
                return SetParametersResult(successful=False, reason="'', 'nan' or 'absurd'")
            if prm.name == "fault_lidar" and prm.value not in LIDAR_FAULTS:
                return SetParametersResult(successful=False, reason=" or ".join(
                    repr(f) for f in LIDAR_FAULTS))
            if prm.name == "fault_drop_box":
                try:
                    rid, dist = prm.value.split() if prm.value else ("", "0")
                    if rid and rid not in [r.id for r in self.robots]:
                        raise ValueError("no robot %r" % rid)
                    # applied by the simulation thread between steps, like scenario events
                    self.drill_ops.append((rid, float(dist)))
                except ValueError as e:
                    return SetParametersResult(successful=False, reason=str(e))
            if prm.name.startswith("fault_"):
                self.p[prm.name] = prm.value
                self.get_logger().info("drill: %s = %r" % (prm.name, prm.value))
        return SetParametersResult(successful=True)

    def _drop_box(self, robot_id: str, distance: float) -> None:
        """A 0.8 x 1.2 m pallet `distance` metres ahead of the robot's chassis centre
        (no robot: the pallet is taken away)."""
        from wm_sim.world import Box
        if not robot_id:
            if self.drill_box is not None:
                self.engine.move_obstacle(self.drill_box, Pose2D(-100.0, -100.0, 0.0))
                self.get_logger().info("drill: pallet removed")
            return
        pose = self.engine.pose(robot_id)
        cx = pose.x + distance * math.cos(pose.yaw)
        cy = pose.y + distance * math.sin(pose.yaw)
        if self.drill_box is None:
            self.drill_box = "drill_pallet"
            self.engine.add_obstacle(Box(cx, cy, 0.8, 1.2, pose.yaw, 0.15 + 0.6,
                                         name=self.drill_box))
        else:
            self.engine.move_obstacle(self.drill_box, Pose2D(cx, cy, pose.yaw))
        self.get_logger().info("drill: pallet dropped at (%.2f, %.2f)" % (cx, cy))

    def _publish_map(self) -> None:
        res = self.p["map_resolution"]
        occ, origin = self.world.rasterize(res)
        msg = OccupancyGrid()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = self.p["map_frame"]
        msg.info.resolution = float(res)
        msg.info.height, msg.info.width = occ.shape
        msg.info.origin = pose2d_to_pose(origin)
        msg.data = np.where(np.asarray(occ) > 0, 100, 0).astype(np.int8).ravel().tolist()
        self.map_pub.publish(msg)

    def destroy_node(self):
        self._stop.set()
        for r in self.robots:
            r.answered.set()
        self.thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return lifecycle.run(SimulatorNode, args=args)


if __name__ == "__main__":
    main()
